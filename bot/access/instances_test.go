package access

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// twoInstanceCore is a core over prod and eu, each an in-memory Metabase.
func twoInstanceCore(t *testing.T, prod, eu *usersMetabase, tune func(*Policy)) *Service {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := Policy{RequiredApprovals: 1, AdminRequiredApprovals: 2, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour}
	if tune != nil {
		tune(&p)
	}
	s, err := New(Config{Policy: p, Execution: Execution{InstanceID: "t", BulkConcurrency: 4, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second}},
		Deps{Store: st, Instances: []Instance{
			{Name: "prod", Metabase: prod, BotUserID: func() int { return 1 }},
			{Name: "eu", Metabase: eu, BotUserID: func() int { return 2 }},
		}, Directory: stubDirectory{}, Notifier: &recordingNotifier{}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func refusalCodes(err error) []Code {
	var rs *Refusals
	var rf *Refusal
	switch {
	case errors.As(err, &rs):
		var out []Code
		for _, r := range rs.Items {
			out = append(out, r.Code)
		}
		return out
	case errors.As(err, &rf):
		return []Code{rf.Code}
	}
	return nil
}

func TestPrepareAcrossInstances(t *testing.T) {
	t.Parallel()
	jane := metabase.User{ID: 7, Email: "jane@example.com", IsActive: true}
	adminJane := jane
	adminJane.ID, adminJane.IsSuperuser = 9, true
	other := metabase.User{ID: 3, Email: "other@example.com", IsActive: true, IsSuperuser: true}
	disable := func(refs ...TargetRef) ChangeRequest {
		return ChangeRequest{Action: approval.Disable, Reason: "bye", Requester: "UREQ", Channel: "C", Targets: refs}
	}
	byEmail := TargetRef{Kind: ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}

	t.Run("a user in both instances is a target in each; admin in one brings the admin quorum", func(t *testing.T) {
		t.Parallel()
		s := twoInstanceCore(t, newUsersMetabase(jane, other), newUsersMetabase(adminJane, other), nil)
		r, err := s.Prepare(t.Context(), disable(byEmail))
		if err != nil {
			t.Fatal(err)
		}
		got := []approval.UserKey{r.Targets[0].Key(), r.Targets[1].Key()}
		if want := []approval.UserKey{{Instance: "prod", ID: 7}, {Instance: "eu", ID: 9}}; !slices.Equal(got, want) {
			t.Errorf("targets = %v, want %v", got, want)
		}
		if r.RequiredApprovals != 2 {
			t.Errorf("RequiredApprovals = %d, want the admin quorum 2", r.RequiredApprovals)
		}
		if !slices.Equal(r.Instances, []string{"prod", "eu"}) {
			t.Errorf("Instances = %v", r.Instances)
		}
	})
	t.Run("not found in one instance is a note; --instance limits the lookup", func(t *testing.T) {
		t.Parallel()
		eu := newUsersMetabase(other)
		s := twoInstanceCore(t, newUsersMetabase(jane, other), eu, nil)
		r, err := s.Prepare(t.Context(), disable(byEmail))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Targets) != 1 || r.Targets[0].Instance != "prod" || len(r.Notes) != 1 || r.Notes[0] != (approval.InstanceNote{Instance: "eu", Email: "jane@example.com", Note: "not found"}) {
			t.Errorf("targets %+v, notes %+v: want jane in prod and a not-found note for eu", r.Targets, r.Notes)
		}
		only := byEmail
		only.Instance = "eu"
		if _, err := s.Prepare(t.Context(), disable(only)); !slices.Equal(refusalCodes(err), []Code{UnknownEmail}) {
			t.Errorf("jane only in eu: %v, want UnknownEmail", err)
		}
	})
	t.Run("a bare id is refused, a qualified one names its instance", func(t *testing.T) {
		t.Parallel()
		s := twoInstanceCore(t, newUsersMetabase(jane, other), newUsersMetabase(other), nil)
		if _, err := s.Prepare(t.Context(), disable(TargetRef{Kind: ByID, ID: 7, Raw: "7"})); !slices.Equal(refusalCodes(err), []Code{IDNeedsInstance}) {
			t.Errorf("bare id: %v, want IDNeedsInstance", err)
		}
		r, err := s.Prepare(t.Context(), disable(TargetRef{Kind: ByID, ID: 7, Instance: "prod", Raw: "prod:7"}))
		if err != nil || len(r.Targets) != 1 || r.Targets[0].Key() != (approval.UserKey{Instance: "prod", ID: 7}) {
			t.Errorf("prod:7 = %+v, %v", r.Targets, err)
		}
	})
	t.Run("protected ids are per instance, and so is the bot's own account", func(t *testing.T) {
		t.Parallel()
		bot := metabase.User{ID: 2, Email: "bot@example.com", IsActive: true, IsSuperuser: true}
		s := twoInstanceCore(t, newUsersMetabase(jane, other, bot), newUsersMetabase(jane, other, bot), func(p *Policy) { p.ProtectedUsers = []string{"eu:7"} })
		if _, err := s.Prepare(t.Context(), disable(byEmail)); !slices.Equal(refusalCodes(err), []Code{Protected}) {
			t.Errorf("jane protected in eu: %v, want Protected", err)
		}
		if _, err := s.Prepare(t.Context(), disable(TargetRef{Kind: ByID, ID: 2, Instance: "prod", Raw: "prod:2"})); err != nil {
			t.Errorf("user 2 of prod is not the bot there (the bot is 1): %v", err)
		}
		if _, err := s.Prepare(t.Context(), disable(TargetRef{Kind: ByID, ID: 2, Instance: "eu", Raw: "eu:2"})); !slices.Equal(refusalCodes(err), []Code{Protected}) {
			t.Errorf("the bot's own account in eu: %v, want Protected", err)
		}
	})
	t.Run("already inactive in one instance is a note; everywhere, a refusal", func(t *testing.T) {
		t.Parallel()
		gone := jane
		gone.IsActive = false
		s := twoInstanceCore(t, newUsersMetabase(jane, other), newUsersMetabase(gone, other), nil)
		r, err := s.Prepare(t.Context(), disable(byEmail))
		if err != nil || len(r.Targets) != 1 || len(r.Notes) != 1 || r.Notes[0].Note != "already inactive" {
			t.Errorf("targets %+v notes %+v err %v: want prod's jane and an already-inactive note for eu", r.Targets, r.Notes, err)
		}
		s = twoInstanceCore(t, newUsersMetabase(gone, other), newUsersMetabase(gone, other), nil)
		if _, err := s.Prepare(t.Context(), disable(byEmail)); !slices.Contains(refusalCodes(err), AlreadyInactive) {
			t.Errorf("inactive everywhere: %v, want AlreadyInactive", err)
		}
	})
	t.Run("an instance that does not answer gives an unresolved target", func(t *testing.T) {
		t.Parallel()
		down := newUsersMetabase()
		down.UserByEmailFn = func(ctx context.Context, email string) (*metabase.User, error) {
			return nil, errors.New("connection refused")
		}
		s := twoInstanceCore(t, newUsersMetabase(jane, other), down, nil)
		r, err := s.Prepare(t.Context(), disable(byEmail))
		if err != nil || len(r.Targets) != 2 || !r.Targets[1].Unresolved || r.Targets[1].Instance != "eu" || r.Targets[1].Email != "jane@example.com" {
			t.Errorf("targets %+v, err %v: want eu's jane unresolved", r.Targets, err)
		}
	})
}

func TestUnboundInstances(t *testing.T) {
	t.Parallel()
	open := []approval.Request{
		{ID: "A", State: approval.Pending, Targets: []approval.Target{{UserID: 1}}},
		{ID: "B", State: approval.Scheduled, Targets: []approval.Target{{Instance: "eu", UserID: 1}, {Instance: "staging", UserID: 2}}},
		{ID: "C", State: approval.Succeeded, Targets: []approval.Target{{Instance: "staging", UserID: 3}}},
	}
	got := UnboundInstances(open, []string{"prod", "eu"})
	if len(got) != 2 || !slices.Equal(got["default"], []string{"A"}) || !slices.Equal(got["staging"], []string{"B"}) {
		t.Errorf("UnboundInstances = %v, want default: [A], staging: [B] (finished requests do not count)", got)
	}
	if got := UnboundInstances(open[:1], []string{approval.DefaultInstance}); len(got) != 0 {
		t.Errorf("with the single instance configured: %v, want none", got)
	}
}

func TestStatusAcrossInstances(t *testing.T) {
	t.Parallel()
	jane := metabase.User{ID: 7, Email: "jane@example.com", IsActive: true}
	down := newUsersMetabase()
	down.UserByEmailFn = func(context.Context, string) (*metabase.User, error) { return nil, errors.New("connection refused") }
	ref := TargetRef{Kind: ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}

	s := twoInstanceCore(t, newUsersMetabase(jane), down, nil)
	st, err := s.Status(t.Context(), "UREQ", "C", ref)
	if err != nil || st.Instance != "prod" || len(st.Also) != 0 || len(st.Notes) != 1 || st.Notes[0].Instance != "eu" {
		t.Errorf("status = %+v, %v; want jane in prod and a note that eu did not answer", st, err)
	}
	s = twoInstanceCore(t, newUsersMetabase(), down, nil)
	if _, err := s.Status(t.Context(), "UREQ", "C", ref); err == nil || IsRefusal(err) {
		t.Errorf("not in prod, eu down: %v, want eu's error rather than a claim that jane does not exist", err)
	}
	s = twoInstanceCore(t, newUsersMetabase(jane), newUsersMetabase(jane), nil)
	if st, err := s.Status(t.Context(), "UREQ", "C", ref); err != nil || len(st.Also) != 1 || st.Also[0].Instance != "eu" {
		t.Errorf("status = %+v, %v; want jane in prod and in eu", st, err)
	}
}
