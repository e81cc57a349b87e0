package approval

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func pending(required int) Request {
	return Request{
		ID: "R1", Action: Disable, State: Pending, Requester: "UREQ",
		Targets:           []Target{{UserID: 5, Email: "jane@example.com"}},
		RequiredApprovals: required, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour),
		FinalReminder: time.Hour,
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	approved := pending(1)
	if _, err := approved.Approve("UA", t0.Add(time.Minute), Policy{}); err != nil {
		t.Fatal(err)
	}
	executing := approved.Clone()
	if err := executing.Start("me", t0.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	scheduled := Request{ID: "R2", Action: Enable, State: Scheduled, NotBefore: t0.Add(time.Hour),
		Targets: []Target{{UserID: 5}}}
	failed := executing.Clone()
	failed.Targets[0].Result = Result{Outcome: TargetFailed, Message: "boom"}
	_ = failed.Finish("me", t0.Add(3*time.Minute))

	tests := []struct {
		name      string
		from      Request
		event     func(r *Request) error
		wantState State
		wantErr   error
	}{
		{"approve reaches quorum of one", pending(1), func(r *Request) error { return approveErr(r.Approve("UA", t0, Policy{})) }, Approved, nil},
		{"first of two approvals stays pending", pending(2), func(r *Request) error { return approveErr(r.Approve("UA", t0, Policy{})) }, Pending, nil},
		{"self approval refused", pending(1), func(r *Request) error { return approveErr(r.Approve("UREQ", t0, Policy{})) }, Pending, ErrSelfApproval},
		{"self approval allowed by policy", pending(1), func(r *Request) error { return approveErr(r.Approve("UREQ", t0, Policy{AllowSelfApproval: true})) }, Approved, nil},
		{"approve after expiry", pending(1), func(r *Request) error { return approveErr(r.Approve("UA", t0.Add(24*time.Hour), Policy{})) }, Pending, ErrExpired},
		{"approve an approved request", approved, func(r *Request) error { return approveErr(r.Approve("UB", t0, Policy{})) }, Approved, ErrNotPending},
		{"deny pending", pending(2), func(r *Request) error { return r.Deny("UA", "no", t0) }, Denied, nil},
		{"deny approved", approved, func(r *Request) error { return r.Deny("UA", "", t0) }, Approved, ErrNotPending},
		{"deny after expiry", pending(1), func(r *Request) error { return r.Deny("UA", "", t0.Add(25*time.Hour)) }, Pending, ErrExpired},
		{"requester cancels", pending(1), func(r *Request) error { return r.Cancel("UREQ", t0) }, Cancelled, nil},
		{"someone else cannot cancel a pending request", pending(1), func(r *Request) error { return r.Cancel("UA", t0) }, Pending, ErrNotRequester},
		{"cancel scheduled return", scheduled, func(r *Request) error { return r.CancelReturn("UA", t0) }, Cancelled, nil},
		{"requester cancel of a scheduled return refused", scheduled, func(r *Request) error { return r.Cancel("UREQ", t0) }, Scheduled, ErrNotPending},
		{"cancel return of a pending request refused", pending(1), func(r *Request) error { return r.CancelReturn("UA", t0) }, Pending, ErrNotScheduled},
		{"cancel executing refused", executing, func(r *Request) error { return r.Cancel("UREQ", t0) }, Executing, ErrNotPending},
		{"withdraw pending", pending(1), func(r *Request) error { return r.Withdraw(t0) }, Cancelled, nil},
		{"withdraw approved refused", approved, func(r *Request) error { return r.Withdraw(t0) }, Approved, ErrNotPending},
		{"renew own lease", executing, func(r *Request) error { return r.RenewLease("me", t0, time.Minute) }, Executing, nil},
		{"renew someone else's lease refused", executing, func(r *Request) error { return r.RenewLease("other", t0, time.Minute) }, Executing, ErrLeaseLost},
		{"expire before deadline", pending(1), func(r *Request) error { return r.Expire(t0.Add(time.Hour)) }, Pending, ErrNotDue},
		{"expire at deadline", pending(1), func(r *Request) error { return r.Expire(t0.Add(24 * time.Hour)) }, Expired, nil},
		{"expire approved refused", approved, func(r *Request) error { return r.Expire(t0.Add(48 * time.Hour)) }, Approved, ErrNotPending},
		{"start approved", approved, func(r *Request) error { return r.Start("me", t0, time.Minute) }, Executing, nil},
		{"start pending refused", pending(1), func(r *Request) error { return r.Start("me", t0, time.Minute) }, Pending, ErrInvalidTransition},
		{"start scheduled early", scheduled, func(r *Request) error { return r.Start("me", t0, time.Minute) }, Scheduled, ErrNotDue},
		{"start scheduled on time", scheduled, func(r *Request) error { return r.Start("me", t0.Add(time.Hour), time.Minute) }, Executing, nil},
		{"take over live lease refused", executing, func(r *Request) error { return r.Start("other", t0.Add(2*time.Minute), time.Minute) }, Executing, ErrLeaseHeld},
		{"take over expired lease", executing, func(r *Request) error { return r.Start("other", t0.Add(4*time.Minute), time.Minute) }, Executing, nil},
		{"finish without outcomes fails", executing, func(r *Request) error { return r.Finish("me", t0) }, Failed, nil},
		{"finish by another executor refused", executing, func(r *Request) error { return r.Finish("other", t0) }, Executing, ErrLeaseLost},
		{"finish approved refused", approved, func(r *Request) error { return r.Finish("me", t0) }, Approved, ErrLeaseLost},
		{"retry failed", failed, func(r *Request) error { return r.Retry("UA", t0) }, Approved, nil},
		{"retry succeeded refused", approved, func(r *Request) error { return r.Retry("UA", t0) }, Approved, ErrInvalidTransition},
		{"record outside execution refused", approved, func(r *Request) error { return r.Record("me", 0, Result{Outcome: Done}, nil, t0, time.Minute) }, Approved, ErrLeaseLost},
		{"record by another executor refused", executing, func(r *Request) error { return r.Record("other", 0, Result{Outcome: Done}, nil, t0, time.Minute) }, Executing, ErrLeaseLost},
		{"record out of range refused", executing, func(r *Request) error { return r.Record("me", 3, Result{Outcome: Done}, nil, t0, time.Minute) }, Executing, ErrInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.from.Clone()
			before := r.Clone()
			err := tt.event(&r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if r.State != tt.wantState {
				t.Errorf("state = %s, want %s", r.State, tt.wantState)
			}
			if err != nil && r.State != before.State {
				t.Errorf("a refused transition changed the state from %s to %s", before.State, r.State)
			}
		})
	}
}

func TestQuorumCountsEachApproverOnce(t *testing.T) {
	t.Parallel()
	r := pending(2)
	if reached, err := r.Approve("UA", t0, Policy{}); err != nil || reached {
		t.Fatalf("first of two approvals: reached %v, err %v; want false, nil", reached, err)
	}
	if _, err := r.Approve("UA", t0, Policy{}); !errors.Is(err, ErrAlreadyVoted) {
		t.Fatalf("second vote by the same approver: err = %v, want ErrAlreadyVoted", err)
	}
	if r.State != Pending || len(r.Approvals) != 1 {
		t.Fatalf("after a repeated vote: state %s with %d approvals, want pending with 1", r.State, len(r.Approvals))
	}
	if reached, err := r.Approve("UB", t0.Add(time.Second), Policy{}); err != nil || !reached {
		t.Fatalf("second approval: reached %v, err %v; want true, nil", reached, err)
	}
	if r.State != Approved || r.DecidedBy != "UB" {
		t.Fatalf("state %s decided by %q, want approved by UB", r.State, r.DecidedBy)
	}
	if got := r.Approvers(); len(got) != 2 || got[0] != "UA" || got[1] != "UB" {
		t.Fatalf("approvers = %v", got)
	}
}

func TestFinishReportsPartialFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		outcomes []Outcome
		want     State
	}{
		{"all done", []Outcome{Done, Done}, Succeeded},
		{"done and skipped", []Outcome{Done, Skipped}, Succeeded},
		{"all failed", []Outcome{TargetFailed, TargetFailed}, Failed},
		{"mixed", []Outcome{Done, TargetFailed, Skipped}, Partial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pending(1)
			r.Targets = nil
			for i := range tt.outcomes {
				r.Targets = append(r.Targets, Target{UserID: i + 1})
			}
			if _, err := r.Approve("UA", t0, Policy{}); err != nil {
				t.Fatal(err)
			}
			if err := r.Start("me", t0, time.Minute); err != nil {
				t.Fatal(err)
			}
			for i, o := range tt.outcomes {
				if err := r.Record("me", i, Result{Outcome: o}, nil, t0, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Finish("me", t0); err != nil {
				t.Fatal(err)
			}
			if r.State != tt.want {
				t.Fatalf("state = %s, want %s", r.State, tt.want)
			}
			if r.LeaseOwner != "" {
				t.Errorf("lease kept after finish: %q", r.LeaseOwner)
			}
		})
	}
}

func TestRetryOnlyRerunsFailedTargets(t *testing.T) {
	t.Parallel()
	r := pending(1)
	r.Targets = []Target{{UserID: 1}, {UserID: 2}}
	_, _ = r.Approve("UA", t0, Policy{})
	_ = r.Start("me", t0, time.Minute)
	_ = r.Record("me", 0, Result{Outcome: Done}, nil, t0, time.Minute)
	_ = r.Record("me", 1, Result{Outcome: TargetFailed, Message: "timeout"}, nil, t0, time.Minute)
	_ = r.Finish("me", t0)
	if err := r.Retry("UA", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := r.PendingTargets(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("pending targets after retry = %v, want [1]", got)
	}
	if r.Targets[0].Result.Outcome != Done {
		t.Fatalf("the done target lost its outcome: %+v", r.Targets[0].Result)
	}
}

func TestRemindersAndNextDue(t *testing.T) {
	t.Parallel()
	r := pending(1)
	half := t0.Add(12 * time.Hour)
	final := t0.Add(23 * time.Hour)
	if due, _ := r.NextDue(); !due.Equal(half) {
		t.Fatalf("first due = %v, want the half-life reminder %v", due, half)
	}
	if err := r.Remind(half.Add(-time.Second)); !errors.Is(err, ErrNotDue) {
		t.Fatalf("early reminder: err = %v", err)
	}
	if err := r.Remind(half); err != nil {
		t.Fatal(err)
	}
	if due, _ := r.NextDue(); !due.Equal(final) {
		t.Fatalf("second due = %v, want the final reminder %v", due, final)
	}
	if err := r.Remind(final); err != nil {
		t.Fatal(err)
	}
	if err := r.Remind(final.Add(time.Minute)); !errors.Is(err, ErrNotDue) {
		t.Fatalf("third reminder: err = %v, want ErrNotDue", err)
	}
	if due, _ := r.NextDue(); !due.Equal(r.ExpiresAt) {
		t.Fatalf("after reminders due = %v, want expiry %v", due, r.ExpiresAt)
	}
	r.FinalReminder = 0
	r.RemindersSent = 0
	if _, ok := r.NextReminder(); ok {
		t.Fatal("reminders off, yet one is due")
	}
	done := pending(1)
	done.State = Denied
	if _, ok := done.NextDue(); ok {
		t.Fatal("a denied request still has due work")
	}
}

// TestLateReminders: after downtime, a pending request never reminded and past its deadline is
// expired without a reminder, and one past both reminder times gets one reminder, not two in a
// row; a final reminder a tick late still goes out.
func TestLateReminders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sent     int
		at       time.Time
		wantErr  error
		wantSent int
	}{
		{"never reminded, past the deadline", 0, t0.Add(25 * time.Hour), ErrNotDue, 0},
		{"never reminded, at the deadline", 0, t0.Add(24 * time.Hour), ErrNotDue, 0},
		{"past both reminder times", 0, t0.Add(23*time.Hour + time.Minute), nil, 2},
		{"between the reminders", 0, t0.Add(13 * time.Hour), nil, 1},
		{"final reminder a tick past the deadline", 1, t0.Add(24*time.Hour + time.Second), nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pending(1)
			r.RemindersSent = tt.sent
			if err := r.Remind(tt.at); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Remind: err = %v, want %v", err, tt.wantErr)
			}
			if r.RemindersSent != tt.wantSent {
				t.Fatalf("RemindersSent = %d, want %d", r.RemindersSent, tt.wantSent)
			}
			if tt.wantErr != nil {
				if err := r.Expire(tt.at); err != nil {
					t.Fatalf("Expire: %v", err)
				}
			}
		})
	}
}

func TestCloneDoesNotAlias(t *testing.T) {
	t.Parallel()
	r := pending(1)
	r.Targets[0].GroupIDs = []int{1, 2}
	login := t0
	r.Targets[0].LastLogin = &login
	c := r.Clone()
	*c.Targets[0].LastLogin = t0.Add(time.Hour)
	if !r.Targets[0].LastLogin.Equal(t0) {
		t.Fatal("clone shares LastLogin with the original")
	}
	c.Targets[0].GroupIDs[0] = 99
	c.Targets[0].Email = "x"
	_, _ = c.Approve("UA", t0, Policy{})
	if r.Targets[0].GroupIDs[0] != 1 || r.Targets[0].Email != "jane@example.com" || len(r.Approvals) != 0 {
		t.Fatalf("clone aliases the original: %+v", r)
	}
}

func TestRecoveringMarksOnlyTakeovers(t *testing.T) {
	t.Parallel()
	r := pending(1)
	_, _ = r.Approve("UA", t0, Policy{})
	if err := r.Start("a", t0, time.Minute); err != nil || r.Recovering {
		t.Fatalf("first start: err %v, recovering %v", err, r.Recovering)
	}
	if err := r.Start("b", t0.Add(2*time.Minute), time.Minute); err != nil || !r.Recovering {
		t.Fatalf("takeover: err %v, recovering %v", err, r.Recovering)
	}
	_ = r.Finish("b", t0.Add(3*time.Minute))
	if r.Recovering {
		t.Fatal("still recovering after finish")
	}
	_ = r.Retry("UA", t0.Add(4*time.Minute))
	if err := r.Start("b", t0.Add(4*time.Minute), time.Minute); err != nil || r.Recovering {
		t.Fatalf("a retry is not a recovery: err %v, recovering %v", err, r.Recovering)
	}
}

// approveErr drops Approve's quorum flag for table rows that only look at the error and state.
func approveErr(_ bool, err error) error { return err }
