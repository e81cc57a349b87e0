package approval

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// broken returns a break-glass action by UREQ that finished disabling its target, with a 24h
// review window, a final reminder an hour before its end, and reverseRequired as the quorum.
func broken(t *testing.T, reverseRequired int) Request {
	t.Helper()
	r := pending(2)
	if err := r.StartBreakGlass("me", t0, time.Minute, 24*time.Hour, time.Hour, reverseRequired); err != nil {
		t.Fatal(err)
	}
	if err := r.Record("me", 0, Result{Outcome: Done, At: t0}, &Before{Superuser: true, Stamp: "s1"}, t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish("me", t0); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStartBreakGlass(t *testing.T) {
	t.Parallel()
	enable := pending(1)
	enable.Action = Enable
	voted := pending(2)
	if _, err := voted.Approve("UA", t0, Policy{}); err != nil {
		t.Fatal(err)
	}
	decided := pending(1)
	_ = decided.Deny("UA", "no", t0)
	tests := []struct {
		name    string
		from    Request
		window  time.Duration
		wantErr error
	}{
		{"pending disable runs at once", pending(2), time.Hour, nil},
		{"an enable never breaks glass", enable, time.Hour, ErrInvalidTransition},
		{"a request with votes is on the approval path", voted, time.Hour, ErrInvalidTransition},
		{"a decided request", decided, time.Hour, ErrInvalidTransition},
		{"no review window", pending(1), 0, ErrInvalidTransition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.from.Clone()
			err := r.StartBreakGlass("me", t0, time.Minute, tc.window, time.Hour, 1)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if r.State != tc.from.State || r.BreakGlass != nil {
					t.Fatalf("a refused StartBreakGlass changed the request: %+v", r)
				}
				return
			}
			if r.State != Executing || r.LeaseOwner != "me" || r.DecidedBy != "UREQ" || !r.IsBreakGlass() ||
				!r.BreakGlass.ReviewBy.Equal(t0.Add(tc.window)) || len(r.Approvals) != 0 {
				t.Fatalf("after StartBreakGlass: %+v %+v", r, r.BreakGlass)
			}
		})
	}
}

func TestReviewTransitions(t *testing.T) {
	t.Parallel()
	running := pending(1)
	if err := running.StartBreakGlass("me", t0, time.Minute, time.Hour, 0, 1); err != nil {
		t.Fatal(err)
	}
	ordinary := pending(1)
	_, _ = ordinary.Approve("UA", t0, Policy{})
	_ = ordinary.Start("me", t0, time.Minute)
	_ = ordinary.Finish("me", t0)
	confirmed := broken(t, 2)
	_ = confirmed.Confirm("UA", t0.Add(time.Hour))
	oneReverse := broken(t, 2)
	if reached, err := oneReverse.VoteReverse("UA", t0.Add(time.Hour), 0); reached || err != nil {
		t.Fatal(reached, err)
	}
	flagged := broken(t, 1)
	if err := flagged.FlagUnreviewed(t0.Add(24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	late := t0.Add(48 * time.Hour)

	tests := []struct {
		name       string
		from       Request
		event      func(r *Request) error
		wantErr    error
		wantReview Review
	}{
		{"an approver confirms", broken(t, 2), func(r *Request) error { return r.Confirm("UA", t0.Add(time.Hour)) }, nil, ReviewConfirmed},
		{"the responder cannot confirm", broken(t, 2), func(r *Request) error { return r.Confirm("UREQ", t0.Add(time.Hour)) }, ErrSelfReview, ReviewOpen},
		{"the responder cannot reverse", broken(t, 1), func(r *Request) error { _, err := r.VoteReverse("UREQ", t0, 0); return err }, ErrSelfReview, ReviewOpen},
		{"nothing to review while running", running, func(r *Request) error { return r.Confirm("UA", t0) }, ErrStillRunning, ReviewOpen},
		{"an ordinary request has no review", ordinary, func(r *Request) error { return r.Confirm("UB", t0) }, ErrNotBreakGlass, ReviewOpen},
		{"confirm after confirm", confirmed, func(r *Request) error { return r.Confirm("UB", t0.Add(2*time.Hour)) }, ErrReviewed, ReviewConfirmed},
		{"reverse after confirm", confirmed, func(r *Request) error { _, err := r.VoteReverse("UB", t0, 0); return err }, ErrReviewed, ReviewConfirmed},
		{"one reverse vote of two", broken(t, 2), func(r *Request) error { _, err := r.VoteReverse("UA", t0, 0); return err }, nil, ReviewOpen},
		{"the second reverse vote reverses", oneReverse, func(r *Request) error {
			reached, err := r.VoteReverse("UB", t0.Add(2*time.Hour), 0)
			if err == nil && !reached {
				return errors.New("quorum not reached")
			}
			return err
		}, nil, ReviewReversed},
		{"restoring admin raises the reverse quorum", broken(t, 1), func(r *Request) error {
			if reached, err := r.VoteReverse("UA", t0, 2); reached || err != nil {
				return fmt.Errorf("one vote of an admin quorum of two: reached %v, %v", reached, err)
			}
			return nil
		}, nil, ReviewOpen},
		{"a reverse vote counts once", oneReverse, func(r *Request) error { _, err := r.VoteReverse("UA", t0, 0); return err }, ErrAlreadyVoted, ReviewOpen},
		{"confirm wins over a reverse under way", oneReverse, func(r *Request) error { return r.Confirm("UB", t0) }, nil, ReviewConfirmed},
		{"reverse after confirm is refused", confirmed, func(r *Request) error { _, err := r.VoteReverse("UA", t0, 0); return err }, ErrReviewed, ReviewConfirmed},
		{"confirm still works after the window was flagged", flagged, func(r *Request) error { return r.Confirm("UA", late) }, nil, ReviewConfirmed},
		{"reverse still works after the window was flagged", flagged, func(r *Request) error { _, err := r.VoteReverse("UA", late, 0); return err }, nil, ReviewReversed},
		{"flagged before the window ends", broken(t, 1), func(r *Request) error { return r.FlagUnreviewed(t0.Add(23 * time.Hour)) }, ErrNotDue, ReviewOpen},
		{"flagged once", flagged, func(r *Request) error { return r.FlagUnreviewed(late) }, ErrNotDue, ReviewOpen},
		{"a reviewed action is never flagged", confirmed, func(r *Request) error { return r.FlagUnreviewed(late) }, ErrReviewed, ReviewConfirmed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.from.Clone()
			err := tc.event(&r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got := ReviewOpen
			if r.BreakGlass != nil {
				got = r.BreakGlass.Review
			}
			if got != tc.wantReview {
				t.Fatalf("review = %q, want %q", got, tc.wantReview)
			}
			if err != nil && r.BreakGlass != nil && tc.from.BreakGlass != nil &&
				(len(r.BreakGlass.ReverseVotes) != len(tc.from.BreakGlass.ReverseVotes) || r.BreakGlass.Flagged != tc.from.BreakGlass.Flagged) {
				t.Fatal("a refused review transition changed the request")
			}
			if r.State != tc.from.State {
				t.Fatalf("a review changed the request's state from %s to %s", tc.from.State, r.State)
			}
		})
	}
}

func TestReviewDue(t *testing.T) {
	t.Parallel()
	r := broken(t, 1)
	due := func() time.Time {
		t.Helper()
		at, ok := r.NextDue()
		if !ok {
			t.Fatal("an open review is not due")
		}
		return at
	}
	if got := due(); !got.Equal(t0.Add(12 * time.Hour)) {
		t.Fatalf("first due = %v, want half the window", got)
	}
	if err := r.RemindReview(t0.Add(11 * time.Hour)); !errors.Is(err, ErrNotDue) {
		t.Fatalf("early reminder: %v", err)
	}
	if err := r.RemindReview(t0.Add(12 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := due(); !got.Equal(t0.Add(23 * time.Hour)) {
		t.Fatalf("second due = %v, want an hour before the end", got)
	}
	if err := r.RemindReview(t0.Add(23 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := due(); !got.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("third due = %v, want the window's end", got)
	}
	if err := r.RemindReview(t0.Add(24 * time.Hour)); !errors.Is(err, ErrNotDue) {
		t.Fatalf("a third reminder: %v", err)
	}
	if err := r.FlagUnreviewed(t0.Add(24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if at, ok := r.NextDue(); ok {
		t.Fatalf("a flagged review is still due at %v: the timer would flag it again", at)
	}
	late := broken(t, 1)
	if err := late.RemindReview(t0.Add(23*time.Hour + time.Minute)); err != nil || late.BreakGlass.RemindersSent != 2 {
		t.Fatalf("a late reminder counts the missed one: %v, sent %d", err, late.BreakGlass.RemindersSent)
	}
	clone := late.Clone()
	clone.BreakGlass.ReverseVotes = append(clone.BreakGlass.ReverseVotes, Vote{UserID: "X"})
	clone.BreakGlass.Flagged = true
	if late.BreakGlass.Flagged || len(late.BreakGlass.ReverseVotes) != 0 {
		t.Fatal("Clone shares the break-glass review")
	}
}

// TestHandoverWaitsForConfirm: StartBreakGlass sets the hand-over aside, so the execution does not
// run it; HandoverOnConfirm is it, for the users actually disabled, approved by the confirmer.
func TestHandoverWaitsForConfirm(t *testing.T) {
	t.Parallel()
	r := pending(1)
	r.Targets = append(r.Targets, Target{UserID: 6, Email: "joe@example.com"})
	r.Handover = &Handover{SuccessorID: 9, SuccessorEmail: "bob@example.com"}
	if err := r.StartBreakGlass("me", t0, time.Minute, time.Hour, 0, 1); err != nil {
		t.Fatal(err)
	}
	if r.Handover != nil || r.BreakGlass.Handover == nil || r.BreakGlass.Handover.SuccessorID != 9 {
		t.Fatalf("hand-over not set aside: %+v / %+v", r.Handover, r.BreakGlass.Handover)
	}
	_ = r.Record("me", 0, Result{Outcome: Done}, &Before{}, t0, time.Minute)
	_ = r.Record("me", 1, Result{Outcome: TargetFailed}, nil, t0, time.Minute)
	_ = r.Finish("me", t0)
	h, ok := HandoverOnConfirm(r, "UA", t0.Add(time.Hour))
	if !ok || h.ID != HandoverID(r.ID) || h.Action != HandOver || h.State != Approved || len(h.Targets) != 1 || h.Targets[0].UserID != 5 ||
		h.Handover.SuccessorID != 9 || h.DecidedBy != "UA" {
		t.Fatalf("HandoverOnConfirm = %+v, %v", h, ok)
	}
	plain := broken(t, 1)
	if _, ok := HandoverOnConfirm(plain, "UA", t0); ok {
		t.Fatal("a hand-over for an action that asked for none")
	}
}
