package access

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// TestApproveReachesQuorumOnce: with a quorum of two, the first approval records a vote and calls
// nothing; the second executes exactly once; a third is refused as already decided.
func TestApproveReachesQuorumOnce(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	s, st, n := testCore(t, mb, "A", nil)
	pendingRequest(t, st, "MB-Q", 2, 5)

	r, err := s.Approve(t.Context(), "MB-Q", "UAPP")
	if err != nil || r.State != approval.Pending || mb.disables.Load() != 0 {
		t.Fatalf("first approval: state %s, err %v, %d disables; want pending, nil, 0", r.State, err, mb.disables.Load())
	}
	if _, err := s.Approve(t.Context(), "MB-Q", "UAPP"); !isRefusal(err, AlreadyVoted) {
		t.Fatalf("repeated vote: err %v, want AlreadyVoted", err)
	}
	r, err = s.Approve(t.Context(), "MB-Q", "UAPP2")
	if err != nil || r.State != approval.Succeeded {
		t.Fatalf("second approval: state %s, err %v; want succeeded", r.State, err)
	}
	if mb.disables.Load() != 1 || mb.active(5) {
		t.Fatalf("%d disables, user still active %v; want 1 and inactive", mb.disables.Load(), mb.active(5))
	}
	_, err = s.Approve(t.Context(), "MB-Q", "UAPP")
	var rf *Refusal
	if !errors.As(err, &rf) || rf.Code != AlreadyDecided || rf.Request.State != approval.Succeeded {
		t.Fatalf("approval after the decision: err %v, want AlreadyDecided describing a succeeded request", err)
	}
	s.Drain(t.Context())
	want := []string{"card_update:voted", "audit:voted", "card_update:approved", "audit:approved", "card_update:finished", "thread:finished", "audit:finished"}
	if got := n.events(); !slices.Equal(got, want) {
		t.Fatalf("notices = %v\nwant %v", got, want)
	}
}

// TestDecisionsNeedAnApprover: nobody outside the directory's approvers decides, and a requester
// never approves their own request.
func TestDecisionsNeedAnApprover(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	s, st, _ := testCore(t, mb, "A", nil)
	pendingRequest(t, st, "MB-D", 1, 5)
	for name, call := range map[string]func() error{
		"approve":       func() error { _, err := s.Approve(t.Context(), "MB-D", "UOUT"); return err },
		"deny":          func() error { _, err := s.Deny(t.Context(), "MB-D", "UOUT", ""); return err },
		"retry":         func() error { _, err := s.Retry(t.Context(), "MB-D", "UOUT"); return err },
		"cancel return": func() error { _, err := s.CancelReturn(t.Context(), "MB-D", "UOUT"); return err },
	} {
		if err := call(); !isRefusal(err, NotApprover) {
			t.Errorf("%s by an outsider: err %v, want NotApprover", name, err)
		}
	}
	if _, err := s.Cancel(t.Context(), "MB-D", "UAPP"); !isRefusal(err, NotRequester) {
		t.Errorf("cancel by an approver who did not request: err %v, want NotRequester", err)
	}
	r, err := st.Get(t.Context(), "MB-D")
	if err != nil || r.State != approval.Pending || mb.disables.Load() != 0 {
		t.Fatalf("after refused decisions: state %s, err %v, %d disables; want pending and untouched", r.State, err, mb.disables.Load())
	}
}

// TestRetryRefusalNamesTheState: a retry of a request with nothing to retry says where the request
// stands (it once described the empty request a failed update returned).
func TestRetryRefusalNamesTheState(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	s, st, _ := testCore(t, mb, "A", nil)
	pendingRequest(t, st, "MB-R", 1, 5)
	if _, err := s.Approve(t.Context(), "MB-R", "UAPP"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Retry(t.Context(), "MB-R", "UAPP")
	var rf *Refusal
	if !errors.As(err, &rf) || rf.Code != NothingToRetry || rf.Request.State != approval.Succeeded {
		t.Fatalf("retry of a succeeded request: %v, want NothingToRetry naming the succeeded request", err)
	}
}

// TestRetryOfAnOldRequestIsRefused: a retry more than a request's lifetime after the last
// execution ended acts on an approval given for another moment: it is refused.
func TestRetryOfAnOldRequestIsRefused(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	clock := time.Now()
	s, st, _ := testCore(t, mb, "A", func(c *Config) { c.Now = func() time.Time { return clock } })
	pendingRequest(t, st, "MB-OLD", 1, 5)
	disable := mb.DisableFn
	mb.DisableFn = func(context.Context, int) error { return errors.New("boom") }
	if r, err := s.Approve(t.Context(), "MB-OLD", "UAPP"); err != nil || r.State != approval.Failed {
		t.Fatalf("approval: %s, %v; want failed", r.State, err)
	}
	mb.DisableFn = disable
	clock = clock.Add(time.Hour + time.Minute) // the policy's RequestTTL is an hour
	if _, err := s.Retry(t.Context(), "MB-OLD", "UAPP"); !isRefusal(err, RetryTooLate) {
		t.Fatalf("retry after the request's lifetime: %v, want RetryTooLate", err)
	}
	if mb.disables.Load() != 0 || !mb.active(5) {
		t.Fatal("a refused retry wrote to Metabase")
	}
}

// racingStore is a Store that runs race once, right before the first write of request id that
// follows arm: what another replica does between a check and the write that acts on it.
type racingStore struct {
	Store
	id    string
	armed atomic.Bool
	race  func()
}

var _ Store = (*racingStore)(nil)

func (s *racingStore) UpdateAndClaim(ctx context.Context, id string, c store.Claim, fn func(r *approval.Request) ([]store.Outbox, []store.Also, error)) (approval.Request, []store.Outbox, error) {
	if id == s.id && s.armed.CompareAndSwap(true, false) {
		s.race()
	}
	return s.Store.UpdateAndClaim(ctx, id, c, fn)
}

// TestRetryRacingANewRequestIsRefused: a new request for a user whose request failed is made on
// another replica after the retry checked that user and before it re-opened the request. The
// retry is refused naming the new request, and nothing is written to Metabase; the new request
// stands alone.
func TestRetryRacingANewRequestIsRefused(t *testing.T) {
	t.Parallel()
	mb := newUsersMetabase(activeUsers(5)...)
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	racing := &racingStore{Store: st, id: "MB-F"}
	a := testCoreOn(t, racing, mb, &recordingNotifier{}, "A", nil)
	b := testCoreOn(t, st, mb, &recordingNotifier{}, "B", nil)
	pendingRequest(t, st, "MB-F", 1, 5)
	disable := mb.DisableFn
	mb.DisableFn = func(context.Context, int) error { return errors.New("boom") }
	if r, err := a.Approve(t.Context(), "MB-F", "UAPP"); err != nil || r.State != approval.Failed {
		t.Fatalf("approval: %s, %v; want failed", r.State, err)
	}
	mb.DisableFn = disable

	var newer approval.Request
	var newerErr error
	racing.race = func() {
		newer, newerErr = b.Submit(t.Context(), ChangeRequest{Action: approval.Disable, Reason: "Left the company",
			Targets:   []TargetRef{{Kind: ByEmail, Email: "u5@example.com", Raw: "u5@example.com"}},
			Requester: "UREQ2", Channel: "COPS"})
	}
	racing.armed.Store(true)
	_, err = a.Retry(t.Context(), "MB-F", "UAPP")
	if newerErr != nil {
		t.Fatalf("the new request on the other replica: %v", newerErr)
	}
	var rs *Refusals
	if !errors.As(err, &rs) || !rs.Retry || len(rs.Items) != 1 || rs.Items[0].Code != OpenRequest ||
		rs.Items[0].Other != newer.ID || rs.Items[0].Subject != "u5@example.com" {
		t.Fatalf("the retry = %v, want refused: u5@example.com has the open request %s", err, newer.ID)
	}
	if r, err := st.Get(t.Context(), "MB-F"); err != nil || r.State != approval.Failed {
		t.Errorf("the refused retry left its request %s (%v), want failed", r.State, err)
	}
	if r, err := st.Get(t.Context(), newer.ID); err != nil || r.State != approval.Pending {
		t.Errorf("the new request is %s (%v), want pending", r.State, err)
	}
	if n := mb.disables.Load(); n != 0 || !mb.active(5) {
		t.Errorf("the refused retry wrote to Metabase: %d disables", n)
	}
}
