package bot

import (
	"slices"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// TestPublishBudget: a burst of publishes goes at once, then they are spaced under views.publish's
// tier, and the budget refills with time.
func TestPublishBudget(t *testing.T) {
	t.Parallel()
	var b budget
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range publishBurst {
		if w := b.take(t0); w != 0 {
			t.Fatalf("publish %d of the burst waits %s", i+1, w)
		}
	}
	spacing := time.Minute / publishPerMinute
	for i := 1; i <= 3; i++ {
		if w := b.take(t0); w < time.Duration(i)*spacing-time.Millisecond || w > time.Duration(i)*spacing+time.Millisecond {
			t.Fatalf("publish %d past the burst waits %s, want %s", i, w, time.Duration(i)*spacing)
		}
	}
	// A minute later the bucket is full again (the three booked calls are paid for).
	if w := b.take(t0.Add(time.Minute)); w != 0 {
		t.Fatalf("after a minute a publish waits %s", w)
	}
}

// TestPublishBudgetIgnoresTheClockGoingBack: a call at an earlier time than the last (clocks
// read in another order by concurrent callers) spends a token and refills nothing.
func TestPublishBudgetIgnoresTheClockGoingBack(t *testing.T) {
	t.Parallel()
	var b budget
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.take(t0.Add(time.Second))
	for i := 1; i < publishBurst; i++ {
		if w := b.take(t0); w != 0 {
			t.Fatalf("publish %d of the burst waits %s", i+1, w)
		}
	}
	if w := b.take(t0); w == 0 {
		t.Fatal("the burst was exceeded without waiting")
	}
}

// TestHomesConcerned: a change reaches the Homes that show the request, approvers' for what waits
// for them, and its requester's, among those opened in the last 24 hours; older ones are
// forgotten.
func TestHomesConcerned(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	h := newHomes(0)
	h.now = func() time.Time { return now }
	recent := now.Add(-time.Hour)
	h.people = map[string]*home{
		"USHOWN":    {opened: recent, shown: map[string]bool{"MB-1": true}},
		"UAPPROVER": {opened: recent, approver: true, shown: map[string]bool{}},
		"UREQ":      {opened: recent},
		"UOTHER":    {opened: recent, shown: map[string]bool{"MB-2": true}},
		"USTALE":    {opened: now.Add(-25 * time.Hour), approver: true, shown: map[string]bool{"MB-1": true}},
	}
	pending := approval.Request{ID: "MB-1", State: approval.Pending, Requester: "UREQ"}
	if got, want := h.concerned(pending), []string{"UAPPROVER", "UREQ", "USHOWN"}; !slices.Equal(got, want) {
		t.Errorf("pending: %v, want %v", got, want)
	}
	if _, kept := h.people["USTALE"]; kept {
		t.Error("a Home opened 25 hours ago is still kept up to date")
	}
	done := approval.Request{ID: "MB-1", State: approval.Succeeded, Requester: "UREQ"}
	if got, want := h.concerned(done), []string{"UREQ", "USHOWN"}; !slices.Equal(got, want) {
		t.Errorf("succeeded: %v, want %v", got, want)
	}
	ret := approval.Request{ID: "MB-2-R", ParentID: "MB-2", State: approval.Scheduled, Requester: "UNOBODY"}
	if got, want := h.concerned(ret), []string{"UOTHER"}; !slices.Equal(got, want) {
		t.Errorf("a leave's return: %v, want %v", got, want)
	}
	h.off = true
	if got := h.concerned(pending); got != nil {
		t.Errorf("with the Home tab off: %v, want none", got)
	}
}
