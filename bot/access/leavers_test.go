package access

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// closedDirectory refuses every person: the requester rules, which a request the bot opens by
// itself does not follow.
type closedDirectory struct{ stubDirectory }

func (closedDirectory) MayRequest(context.Context, string, string) error {
	return &Refusal{Code: ChannelNotAllowed}
}

// leaverCore is a core whose directory refuses everyone, with protected users.
func leaverCore(t *testing.T, mb Metabase, protected ...string) *Service {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{
		Policy: Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequireReason: true, RequestTTL: time.Hour,
			ReturnLocation: time.UTC, MaxReturnAhead: 24 * time.Hour, ProtectedUsers: protected},
		Execution: Execution{InstanceID: "a", BulkConcurrency: 2, ExecLease: time.Minute, OutboxLease: 30 * time.Second, Tick: time.Second},
	}, Deps{Store: st, Metabase: mb, Directory: closedDirectory{}, Notifier: &recordingNotifier{}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// DisableLeaver opens a request for an active account whatever the requester rules say, once per
// deactivation, and nothing for an account it would not disable.
func TestDisableLeaver(t *testing.T) {
	t.Parallel()
	mb := newUsersMetabase(
		metabase.User{ID: 1, Email: "jane@example.com", IsActive: true},
		metabase.User{ID: 2, Email: "gone@example.com", IsActive: false},
		metabase.User{ID: 3, Email: "boss@example.com", IsActive: true},
	)
	s := leaverCore(t, mb, "boss@example.com")
	ctx := t.Context()
	jane := Leaver{Team: "T1", User: "UJANE", Email: "Jane@Example.com", Deactivation: 1}
	r, err := s.DisableLeaver(ctx, jane, "COPS", "Slack account deactivated on 2026-12-05")
	if err != nil {
		t.Fatalf("DisableLeaver: %v", err)
	}
	if r.Requester != RequesterChatDeactivation || r.Action != approval.Disable || r.ChannelID != "COPS" ||
		r.SourceKey != "deactivated:T1:UJANE:1" || len(r.Targets) != 1 || r.Targets[0].UserID != 1 {
		t.Errorf("request %+v", r)
	}
	if _, err := s.DisableLeaver(ctx, jane, "COPS", "again"); !errors.Is(err, ErrRedelivered) {
		t.Errorf("the same deactivation again: %v, want ErrRedelivered", err)
	}
	for _, l := range []Leaver{
		{Team: "T1", User: "UGONE", Email: "gone@example.com", Deactivation: 1},
		{Team: "T1", User: "UBOSS", Email: "boss@example.com", Deactivation: 1},
		{Team: "T1", User: "UNONE", Email: "none@example.com", Deactivation: 1},
		{Team: "T1", User: "UJANE", Email: "jane@example.com", Deactivation: 0},
	} {
		if _, err := s.DisableLeaver(ctx, l, "COPS", "r"); !errors.Is(err, ErrNoAccount) {
			t.Errorf("%s: %v, want ErrNoAccount", l.Email, err)
		}
	}
	if _, _, err := s.Leavers(ctx, "UREQ", "COPS", []string{"jane@example.com"}); !IsRefusal(err) {
		t.Errorf("a person's leavers report skipped the requester rules: %v", err)
	}
}

// An instance that does not answer is an error, not "no account": the event must come again.
func TestDisableLeaverUnreachable(t *testing.T) {
	t.Parallel()
	mb := &stubMetabase{UserByEmailFn: func(context.Context, string) (*metabase.User, error) {
		return nil, errors.New("dial tcp: connection refused")
	}}
	s := leaverCore(t, mb)
	_, err := s.DisableLeaver(t.Context(), Leaver{Team: "T1", User: "U1", Email: "a@example.com", Deactivation: 1}, "COPS", "r")
	if err == nil || errors.Is(err, ErrNoAccount) {
		t.Fatalf("err = %v, want a failure to look up", err)
	}
}

// Nobody is told in private about a request nobody made.
func TestTellSkipsTheDeactivationRequester(t *testing.T) {
	t.Parallel()
	s, _, _ := testCore(t, newUsersMetabase(), "a", nil)
	r := approval.Request{ID: "MB-1", Requester: RequesterChatDeactivation}
	if out := s.tell(Event{Type: Withdrawn, Request: r}, ToAudit, ToRequester); len(out) != 1 {
		t.Errorf("%d notices, want the audit one only", len(out))
	}
}
