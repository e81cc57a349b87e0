package access

import (
	"slices"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// TestExpiryAndReminders: a pending request is reminded at half its life and once more near its
// end, then expires at its deadline, each exactly once, with no Metabase call.
func TestExpiryAndReminders(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	t0 := time.Now()
	clock := t0
	s, st, n := testCore(t, mb, "A", func(c *Config) { c.Now = func() time.Time { return clock } })
	pendingRequest(t, st, "MB-EXP", 1, 5)
	r, _ := st.Get(t.Context(), "MB-EXP")
	r.FinalReminder = 10 * time.Minute
	if _, err := st.Update(t.Context(), r.ID, updateTo(r)); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{10 * time.Minute, 31 * time.Minute, 32 * time.Minute, 51 * time.Minute, 59 * time.Minute, 61 * time.Minute, 90 * time.Minute} {
		clock = t0.Add(at)
		timers{s}.runDue(t.Context())
	}
	s.Drain(t.Context())
	want := []string{"thread:reminded", "thread:reminded", "card_update:expired", "thread:expired", "audit:expired"}
	if got := n.events(); !slices.Equal(got, want) {
		t.Fatalf("notices = %v\nwant %v", got, want)
	}
	r, err := st.Get(t.Context(), "MB-EXP")
	if err != nil || r.State != approval.Expired || mb.disables.Load() != 0 {
		t.Fatalf("state %s (err %v), %d disables; want expired and no Metabase call", r.State, err, mb.disables.Load())
	}
}

// TestLeaveCreatesItsReturnWithItsOutcome: the scheduled return of a leave exists as soon as the
// leave's outcome is stored, before any message is delivered; it was once created by delivering
// an outbox row, so a termination approved while Slack was slow could miss it.
func TestLeaveCreatesItsReturnWithItsOutcome(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	s, st, n := testCore(t, mb, "A", nil)
	pendingRequest(t, st, "MB-LEAVE", 1, 5)
	r, _ := st.Get(t.Context(), "MB-LEAVE")
	back := time.Now().Add(48 * time.Hour)
	r.ReturnAt = &back
	if _, err := st.Update(t.Context(), r.ID, updateTo(r)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(t.Context(), "MB-LEAVE", "UAPP"); err != nil {
		t.Fatal(err)
	}
	if len(n.events()) != 0 {
		t.Fatalf("notices were delivered already: %v", n.events())
	}
	ret, err := st.Get(t.Context(), approval.ReturnID("MB-LEAVE"))
	if err != nil || ret.State != approval.Scheduled || !ret.NotBefore.Equal(back.Truncate(time.Millisecond)) && !ret.NotBefore.Equal(back) {
		t.Fatalf("return = %s at %v (err %v), want scheduled at %v before any delivery", ret.State, ret.NotBefore, err, back)
	}
}
