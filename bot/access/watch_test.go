package access

import (
	"slices"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
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
