package access

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestExpectedDisabled: who the watch expects disabled, from the requests that ran.
func TestExpectedDisabled(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	done := func(id int, at time.Time) approval.Target {
		return approval.Target{UserID: id, Result: approval.Result{Outcome: approval.Done, At: at}}
	}
	disable := func(id string, ts ...approval.Target) approval.Request {
		return approval.Request{ID: id, Action: approval.Disable, State: approval.Succeeded, Targets: ts}
	}
	enable := func(id string, st approval.State, ts ...approval.Target) approval.Request {
		return approval.Request{ID: id, Action: approval.Enable, State: st, Targets: ts}
	}
	dry := disable("MB-DRY", done(6, t0))
	dry.DryRun = true
	other := disable("MB-EU", done(7, t0))
	other.Targets[0].Instance = "eu"
	dueReturn := enable("MB-RET", approval.Scheduled, approval.Target{UserID: 5})
	dueReturn.NotBefore = t0.Add(time.Hour)
	laterReturn := enable("MB-RET2", approval.Scheduled, approval.Target{UserID: 1})
	laterReturn.NotBefore = t0.Add(48 * time.Hour)
	reqs := []approval.Request{
		disable("MB-A", done(1, t0), done(2, t0), done(3, t0), done(4, t0), done(5, t0),
			approval.Target{UserID: 8, Result: approval.Result{Outcome: approval.Skipped, At: t0}}),
		dry, other, laterReturn, dueReturn,
		enable("MB-B", approval.Succeeded, done(2, t0.Add(time.Minute))), // brought back
		enable("MB-C", approval.Executing, approval.Target{UserID: 3}),   // being brought back
		enable("MB-D", approval.Succeeded, done(4, t0.Add(-time.Minute))),
	}
	got := expectedDisabled(reqs, approval.DefaultInstance, t0.Add(2*time.Hour))
	var ids []int
	for id := range got {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// 1: disabled, its return not due yet; 4: enabled before the disable. Not 2 (brought back),
	// 3 (enable running), 5 (return due), 6 (dry run), 7 (another instance), 8 (skipped).
	if want := []int{1, 4}; !slices.Equal(ids, want) {
		t.Fatalf("expected disabled = %v, want %v", ids, want)
	}
	if got[1].basis == "" || got[1].req.ID != "MB-A" {
		t.Fatalf("user 1's expectation = %+v, want basis on MB-A", got[1])
	}
}

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
