package access

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// TestLeaseRenewedWhileMetabaseIsSlow: an executor whose Metabase call outlasts the execution
// lease is still alive, so no replica may take the request over and disable the user a second
// time. The lease must be renewed while the call is in flight, not only when an outcome arrives.
func TestLeaseRenewedWhileMetabaseIsSlow(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	release := make(chan struct{})
	calls := make(chan struct{}, 8)
	disable := mb.DisableFn
	mb.DisableFn = func(ctx context.Context, id int) error {
		calls <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return disable(ctx, id)
	}
	short := func(c *Config) { c.Execution.ExecLease = 300 * time.Millisecond }
	a, st, _ := testCore(t, mb, "A", short)
	replica := testCoreOn(t, st, mb, &recordingNotifier{}, "B", short)
	pendingRequest(t, st, "MB-LEASE", 1, 5)

	ctx, cancel := context.WithCancel(t.Context())
	var loops sync.WaitGroup
	for _, s := range []*Service{a, replica} {
		loops.Go(func() { timers{s}.timerLoop(ctx) })
	}
	approved := make(chan approval.Request, 1)
	go func() {
		r, _ := a.Approve(t.Context(), "MB-LEASE", "UAPP")
		approved <- r
	}()
	<-calls
	// Hold the first DELETE for several lease lengths: a takeover would show as a second call.
	select {
	case <-calls:
		t.Error("a second executor called DisableUser while the first was still in its call")
	case <-time.After(4 * 300 * time.Millisecond):
	}
	close(release)
	r := <-approved
	cancel()
	loops.Wait()
	replica.work.Wait()
	if n := mb.disables.Load(); n != 1 {
		t.Fatalf("DisableUser completed %d times for one approval, want 1", n)
	}
	if r.State != approval.Succeeded || r.Attempts != 1 {
		t.Fatalf("request state %s after %d attempts, want succeeded after 1", r.State, r.Attempts)
	}
}

// TestExecutionStopsAfterLosingLease: once another executor owns the request, the one that lost
// the lease must stop calling Metabase, not work through every remaining target in parallel with
// the new owner.
func TestExecutionStopsAfterLosingLease(t *testing.T) {
	const targets = 40
	ids := make([]int, targets)
	for i := range ids {
		ids[i] = 100 + i
	}
	mb := newUsersMetabase(activeUsers(ids...)...)
	s, st, _ := testCore(t, mb, "A", func(c *Config) { c.Execution.BulkConcurrency = 1 })
	pendingRequest(t, st, "MB-LOST", 1, ids...)
	disable := mb.DisableFn
	var once sync.Once
	mb.DisableFn = func(ctx context.Context, id int) error {
		once.Do(func() {
			// Another replica takes the request over (as if this process had been presumed dead).
			_, err := st.Update(context.Background(), "MB-LOST", func(r *approval.Request) ([]store.Outbox, error) {
				r.LeaseOwner, r.LeaseUntil = "B", time.Now().Add(time.Hour)
				return nil, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
		return disable(ctx, id)
	}
	if _, err := s.Approve(t.Context(), "MB-LOST", "UAPP"); err != nil {
		t.Fatal(err)
	}
	if n := mb.disables.Load(); n > flushEvery+1 {
		t.Fatalf("DisableUser called %d times after the lease was lost at the first call; the executor must stop at its next check (at most %d)", n, flushEvery+1)
	}
	r, err := st.Get(t.Context(), "MB-LOST")
	if err != nil || r.State != approval.Executing || r.LeaseOwner != "B" {
		t.Fatalf("request %s held by %q (err %v); the loser must leave it to its new owner", r.State, r.LeaseOwner, err)
	}
}

// TestTakeoverConfirmsWhatTheDeadProcessDid: a request left executing by a process that died
// after its DELETE is taken over by the timer once the lease ends; the user, found inactive, is
// recorded as done ("confirmed"), never as skipped and never disabled twice.
func TestTakeoverConfirmsWhatTheDeadProcessDid(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	s, st, _ := testCore(t, mb, "B", nil)
	pendingRequest(t, st, "MB-DEAD", 1, 5)
	_, err := st.Update(t.Context(), "MB-DEAD", func(r *approval.Request) ([]store.Outbox, error) {
		if _, err := r.Approve("UAPP", time.Now(), approval.Policy{}); err != nil {
			return nil, err
		}
		return nil, r.Start("A", time.Now().Add(-time.Hour), time.Minute) // A's lease ran out long ago
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.DisableFn(t.Context(), 5); err != nil { // what A did before it died
		t.Fatal(err)
	}
	timers{s}.runDue(t.Context())
	s.work.Wait()
	r, err := st.Get(t.Context(), "MB-DEAD")
	if err != nil {
		t.Fatal(err)
	}
	res := r.Targets[0].Result
	if r.State != approval.Succeeded || res.Outcome != approval.Done || res.Message != "confirmed inactive after a restart" || r.Attempts != 2 {
		t.Fatalf("after takeover: %s, target %+v, %d attempts; want succeeded, done and confirmed, 2 attempts", r.State, res, r.Attempts)
	}
	if n := mb.disables.Load(); n != 1 {
		t.Fatalf("DisableUser called %d times in all, want 1 (the dead process's)", n)
	}
}
