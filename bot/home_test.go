package bot

import (
	"testing"
	"time"
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
