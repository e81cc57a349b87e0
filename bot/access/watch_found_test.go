package access

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestWatchChecksRacingDisableAgainOnce: two replicas checking the same instance at the same
// moment (as when a check outlasts its interval) find the same reactivated user; the row's
// compare-and-set lets one of them disable the user again and report it.
func TestWatchChecksRacingDisableAgainOnce(t *testing.T) {
	t.Parallel()
	fake := metabasetest.New(t)
	jane := fake.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", Active: false})
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	if err := st.Create(t.Context(), approval.Request{ID: "MB-RACE0001", Action: approval.Disable, State: approval.Succeeded,
		Requester: "UREQ", ChannelID: "COPS", MessageTS: "1.1", RequiredApprovals: 1, CreatedAt: at, ExpiresAt: at.Add(time.Hour),
		Targets: []approval.Target{{UserID: jane.ID, Email: jane.Email, Result: approval.Result{Outcome: approval.Done, At: at}}}}); err != nil {
		t.Fatal(err)
	}
	fake.ReactivateBySSO(jane.ID)
	replica := func(name string) watcher {
		client, err := metabase.New(fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{
			Policy:    Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour},
			Execution: Execution{InstanceID: name, BulkConcurrency: 1, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second},
			Watch:     Watch{Interval: time.Minute, Policy: ReactivationDisable},
		}, Deps{Store: st, Metabase: client, Directory: stubDirectory{}, Notifier: &recordingNotifier{}})
		if err != nil {
			t.Fatal(err)
		}
		return watcher{s}
	}
	a, b := replica("a"), replica("b")
	var g errgroup.Group
	for _, w := range []watcher{a, b, a, b} {
		g.Go(func() error { return w.Check(t.Context(), approval.DefaultInstance) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := fake.Count("DELETE", "/api/user/"); n != 1 {
		t.Fatalf("%d DELETEs, want one re-disable", n)
	}
	if u, _ := fake.UserByID(jane.ID); u.Active {
		t.Fatal("jane is active after the re-disable")
	}
	ws, err := a.WatchStatusOf(t.Context(), approval.UserKey{ID: jane.ID})
	if err != nil || ws.Finding == nil || ws.Finding.DisabledAgain == nil || ws.Finding.Count != 1 {
		t.Fatalf("status = %+v, %v; want one finding, disabled again", ws, err)
	}
	n, err := st.PendingOutbox(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("%d messages queued (%v), want one report: thread and audit", n, err)
	}
}
