package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// ids returns the request ids in order, for compact comparisons.
func ids(rs []approval.Request) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testCreateGet(t *testing.T, h harness) {
	s := h.fresh(t)
	ret := t0.Add(14 * 24 * time.Hour)
	login := t0.Add(-48 * time.Hour)
	r := newRequest("R1", t0, 7, 9)
	r.SourceKey = "trigger-1"
	r.ReturnAt = &ret
	r.Targets[0].GroupIDs = []int{1, 4}
	r.Targets[0].Superuser = true
	r.Targets[1].LastLogin = &login
	r.FinalReminder = 2 * time.Hour
	r.DryRun = true
	mustCreate(t, s, r)
	if r.Version != 0 {
		t.Errorf("Create changed the caller's request: Version = %d", r.Version)
	}

	got, err := s.Get(t.Context(), "R1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := r.Clone()
	want.Version = 1
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get mismatch (-want +got):\n%s", diff)
	}

	if _, err := s.Get(t.Context(), "NOPE"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func testCreateExists(t *testing.T, h harness) {
	s := h.fresh(t)
	r := newRequest("R1", t0, 1)
	r.SourceKey = "trigger-1"
	mustCreate(t, s, r)

	sameID := newRequest("R1", t0, 2)
	if err := s.Create(t.Context(), sameID); !errors.Is(err, ErrExists) {
		t.Errorf("Create(same id) error = %v, want ErrExists", err)
	}
	sameKey := newRequest("R2", t0, 2)
	sameKey.SourceKey = "trigger-1"
	if err := s.Create(t.Context(), sameKey); !errors.Is(err, ErrExists) {
		t.Errorf("Create(same source key) error = %v, want ErrExists", err)
	}
	// Requests without a source key never collide on it.
	mustCreate(t, s, newRequest("R3", t0))
	mustCreate(t, s, newRequest("R4", t0))
	if _, err := s.Get(t.Context(), "R2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused request was stored: Get(R2) error = %v", err)
	}
}

func testCreateValidates(t *testing.T, h harness) {
	s := h.fresh(t)
	tests := []struct {
		name string
		r    approval.Request
	}{
		{"no id", newRequest("", t0)},
		{"bad state", func() approval.Request { r := newRequest("R1", t0); r.State = "bogus"; return r }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Create(t.Context(), tt.r); err == nil || errors.Is(err, ErrExists) {
				t.Errorf("Create error = %v, want a validation error", err)
			}
		})
	}
	if err := s.Create(t.Context(), newRequest("R2", t0), Outbox{Payload: []byte("{}")}); err == nil {
		t.Errorf("Create with a kindless outbox row succeeded")
	}
	if n, _ := s.CountByState(t.Context()); len(n) != 0 {
		t.Errorf("refused creates left requests: %v", n)
	}
}

func testUpdate(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0, 1))
	var sawVersion int64
	got, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		sawVersion = r.Version
		return nil, approveErr(r.Approve("UAPP", t0.Add(time.Minute), approval.Policy{}))
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if sawVersion != 1 {
		t.Errorf("fn saw version %d, want 1", sawVersion)
	}
	if got.Version != 2 || got.State != approval.Approved || got.DecidedBy != "UAPP" {
		t.Errorf("Update returned version %d state %s decided by %q, want 2 approved UAPP", got.Version, got.State, got.DecidedBy)
	}
	stored, err := s.Get(t.Context(), "R1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, stored); diff != "" {
		t.Errorf("stored request differs from the returned one (-returned +stored):\n%s", diff)
	}
	if list, _ := s.List(t.Context(), approval.Approved); !slices.Equal(ids(list), []string{"R1"}) {
		t.Errorf("state column not updated: List(approved) = %v", ids(list))
	}
}

func testUpdateFnError(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0, 1))
	before, _ := s.Get(t.Context(), "R1")

	errBoom := errors.New("boom")
	_, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		r.State = approval.Denied
		r.Approvals = append(r.Approvals, approval.Vote{UserID: "UX"})
		return []Outbox{{Kind: "card"}}, errBoom
	})
	if err != errBoom {
		t.Errorf("Update error = %v, want fn's error itself", err)
	}
	// An approval error passes through too, so callers can tell the clicker why.
	_, err = s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		return nil, approveErr(r.Approve("UREQ", t0.Add(time.Minute), approval.Policy{}))
	})
	if !errors.Is(err, approval.ErrSelfApproval) {
		t.Errorf("Update error = %v, want ErrSelfApproval", err)
	}
	// An update that leaves an invalid request is refused.
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		r.State = "bogus"
		return nil, nil
	}); err == nil {
		t.Errorf("Update to an invalid state succeeded")
	}
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		r.ID = "R2"
		return nil, nil
	}); err == nil {
		t.Errorf("Update that changes the id succeeded")
	}

	after, _ := s.Get(t.Context(), "R1")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("failed updates changed the request (-before +after):\n%s", diff)
	}
	if n := pendingOutbox(t, s); n != 0 {
		t.Errorf("failed updates queued %d outbox rows", n)
	}
}

func testUpdateNotFound(t *testing.T, h harness) {
	s := h.fresh(t)
	called := false
	_, err := s.Update(t.Context(), "NOPE", func(r *approval.Request) ([]Outbox, error) {
		called = true
		return nil, nil
	})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Update(missing) error = %v, want ErrNotFound", err)
	}
	if called {
		t.Errorf("fn was called for a missing request")
	}
}

// lifecycle creates one request in each interesting state, with known due times:
//
//	P1 pending            created t0      due t0+24h (expiry)
//	P2 pending, reminders created t0+1m   due t0+12h1m (first reminder)
//	A1 approved           created t0+2m   due t0+1h (decided)
//	S1 scheduled          created t0+3m   due t0+48h (not before)
//	E1 executing          created t0+4m   due t0+2h10m (lease end)
//	F1 succeeded          created t0+5m   never due
func lifecycle(t *testing.T, s *Store) {
	t.Helper()
	pol := approval.Policy{}
	mustCreate(t, s, newRequest("P1", t0, 1))

	p2 := newRequest("P2", t0.Add(time.Minute), 2)
	p2.FinalReminder = 2 * time.Hour
	mustCreate(t, s, p2)

	a1 := newRequest("A1", t0.Add(2*time.Minute), 3)
	mustDo(t, approveErr(a1.Approve("UAPP", t0.Add(time.Hour), pol)))
	mustCreate(t, s, a1)

	s1 := newRequest("S1", t0.Add(3*time.Minute), 4)
	s1.Action = approval.Enable
	s1.State = approval.Scheduled
	s1.NotBefore = t0.Add(48 * time.Hour)
	mustCreate(t, s, s1)

	e1 := newRequest("E1", t0.Add(4*time.Minute), 5)
	mustDo(t, approveErr(e1.Approve("UAPP", t0.Add(2*time.Hour), pol)))
	mustCreate(t, s, e1)
	if _, err := s.Update(t.Context(), "E1", func(r *approval.Request) ([]Outbox, error) {
		return nil, r.Start("worker-1", t0.Add(2*time.Hour), 10*time.Minute)
	}); err != nil {
		t.Fatalf("Start E1: %v", err)
	}

	f1 := newRequest("F1", t0.Add(5*time.Minute), 6)
	mustDo(t, approveErr(f1.Approve("UAPP", t0.Add(time.Hour), pol)))
	mustDo(t, f1.Start("worker-1", t0.Add(time.Hour), time.Minute))
	mustDo(t, f1.Record("worker-1", 0, approval.Result{Outcome: approval.Done, At: t0.Add(time.Hour)}, nil, t0.Add(time.Hour), time.Minute))
	mustDo(t, f1.Finish("worker-1", t0.Add(time.Hour)))
	mustCreate(t, s, f1)
}

func testDue(t *testing.T, h harness) {
	s := h.fresh(t)
	lifecycle(t, s)
	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []string
	}{
		{"nothing due yet", t0, 10, []string{}},
		{"exactly at the deadline", t0.Add(time.Hour), 10, []string{"A1"}},
		{"a millisecond before", t0.Add(time.Hour - time.Millisecond), 10, []string{}},
		{"after a day", t0.Add(30 * time.Hour), 0, []string{"A1", "E1", "P2", "P1"}},
		{"limited", t0.Add(30 * time.Hour), 2, []string{"A1", "E1"}},
		{"everything", t0.Add(100 * time.Hour), 0, []string{"A1", "E1", "P2", "P1", "S1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Due(t.Context(), tt.now, tt.limit)
			if err != nil {
				t.Fatalf("Due: %v", err)
			}
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("Due(%v) (-want +got):\n%s", tt.now.Sub(t0), diff)
			}
		})
	}

	// next_due_at follows every write: A1 starts (due at its lease end), E1 finishes (never due).
	if _, err := s.Update(t.Context(), "A1", func(r *approval.Request) ([]Outbox, error) {
		return nil, r.Start("worker-2", t0.Add(5*time.Hour), 10*time.Minute)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(t.Context(), "E1", func(r *approval.Request) ([]Outbox, error) {
		return nil, r.Finish("worker-1", t0.Add(3*time.Hour))
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Due(t.Context(), t0.Add(6*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"A1"}, ids(got)); diff != "" {
		t.Errorf("Due after updates (-want +got):\n%s", diff)
	}
}

func testByTarget(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0, 1, 2))
	mustCreate(t, s, newRequest("R2", t0.Add(time.Hour), 2, 3))
	mustCreate(t, s, newRequest("R3", t0.Add(2*time.Hour), 2, 2)) // a duplicate target is indexed once
	tests := []struct {
		user int
		want []string
	}{
		{2, []string{"R3", "R2", "R1"}},
		{1, []string{"R1"}},
		{3, []string{"R2"}},
		{99, []string{}},
	}
	for _, tt := range tests {
		got, err := s.ByTarget(t.Context(), approval.UserKey{ID: tt.user})
		if err != nil {
			t.Fatalf("ByTarget(%d): %v", tt.user, err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("ByTarget(%d) (-want +got):\n%s", tt.user, diff)
		}
	}
	// The index follows the targets when an update changes them.
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		r.Targets = []approval.Target{{UserID: 4}}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[int][]string{1: {}, 4: {"R1"}, 2: {"R3", "R2"}} {
		got, err := s.ByTarget(t.Context(), approval.UserKey{Instance: approval.DefaultInstance, ID: user})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, ids(got)); diff != "" {
			t.Errorf("after retargeting, ByTarget(%d) (-want +got):\n%s", user, diff)
		}
	}
}

// testByTargetInstances: the same user id in two Metabase instances is two people, and a target
// stored without an instance is the default instance's.
func testByTargetInstances(t *testing.T, h harness) {
	s := h.fresh(t)
	prod := newRequest("P1", t0, 7)
	prod.Targets[0].Instance = "prod"
	eu := newRequest("E1", t0.Add(time.Hour), 7)
	eu.Targets[0].Instance = "eu"
	both := newRequest("B1", t0.Add(2*time.Hour), 7, 7)
	both.Targets[0].Instance, both.Targets[1].Instance = "prod", "eu"
	for _, r := range []approval.Request{prod, eu, both, newRequest("D1", t0.Add(3*time.Hour), 7)} {
		mustCreate(t, s, r)
	}
	for key, want := range map[approval.UserKey][]string{
		{Instance: "prod", ID: 7}:                   {"B1", "P1"},
		{Instance: "eu", ID: 7}:                     {"B1", "E1"},
		{Instance: approval.DefaultInstance, ID: 7}: {"D1"},
		{ID: 7}:                      {"D1"},
		{Instance: "staging", ID: 7}: {},
	} {
		got, err := s.ByTarget(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, ids(got)); diff != "" {
			t.Errorf("ByTarget(%v) (-want +got):\n%s", key, diff)
		}
	}
}

func testListAndCount(t *testing.T, h harness) {
	s := h.fresh(t)
	empty, err := s.CountByState(t.Context())
	if err != nil || len(empty) != 0 {
		t.Fatalf("CountByState on an empty store = %v, %v", empty, err)
	}
	lifecycle(t, s)
	tests := []struct {
		name   string
		states []approval.State
		want   []string
	}{
		{"all", nil, []string{"P1", "P2", "A1", "S1", "E1", "F1"}},
		{"pending", []approval.State{approval.Pending}, []string{"P1", "P2"}},
		{"several", []approval.State{approval.Executing, approval.Approved}, []string{"A1", "E1"}},
		{"none in state", []approval.State{approval.Denied}, []string{}},
	}
	for _, tt := range tests {
		got, err := s.List(t.Context(), tt.states...)
		if err != nil {
			t.Fatalf("List(%v): %v", tt.states, err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("List %s (-want +got):\n%s", tt.name, diff)
		}
	}
	counts, err := s.CountByState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[approval.State]int{approval.Pending: 2, approval.Approved: 1, approval.Scheduled: 1, approval.Executing: 1, approval.Succeeded: 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("CountByState (-want +got):\n%s", diff)
	}
}

// race runs n goroutines released together by a start barrier and returns how long they took.
func race(t *testing.T, n int, fn func(i int) error) time.Duration {
	t.Helper()
	start := make(chan struct{})
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			<-start
			return fn(i)
		})
	}
	began := time.Now()
	close(start)
	err := g.Wait()
	elapsed := time.Since(began)
	if err != nil {
		t.Fatalf("racing goroutine: %v", err)
	}
	return elapsed
}

func testRaceApprove(t *testing.T, h harness) {
	a, b := h.pair(t)
	stores := []*Store{a, b}
	mustCreate(t, a, newRequest("R1", t0, 1))

	const n = 50
	var won atomic.Int32
	elapsed := race(t, n, func(i int) error {
		approver := fmt.Sprintf("UAPP%02d", i)
		got, err := stores[i%2].Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
			was := r.State
			if err := approveErr(r.Approve(approver, t0.Add(time.Minute), approval.Policy{})); err != nil {
				return nil, err
			}
			if was == approval.Pending && r.State == approval.Approved {
				return []Outbox{{Kind: "approved", Payload: []byte(approver)}}, nil
			}
			return nil, nil
		})
		if errors.Is(err, approval.ErrNotPending) {
			return nil // somebody else decided first
		}
		if err != nil {
			return fmt.Errorf("%s: %w", approver, err)
		}
		if got.State != approval.Approved || got.DecidedBy != approver {
			return fmt.Errorf("%s: stored %s decided by %q", approver, got.State, got.DecidedBy)
		}
		won.Add(1)
		return nil
	})
	t.Logf("%d approvals racing over 2 %s handles: %v", n, a.Backend(), elapsed)

	if won.Load() != 1 {
		t.Errorf("%d callers saw their approval decide the request, want exactly 1", won.Load())
	}
	r, err := b.Get(t.Context(), "R1")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != approval.Approved || len(r.Approvals) != 1 || r.Version != 2 {
		t.Errorf("stored request: state %s, %d approvals, version %d; want approved, 1, 2", r.State, len(r.Approvals), r.Version)
	}
	rows := outboxRows(t, a)
	if len(rows) != 1 || rows[0].kind != "approved" || rows[0].payload != r.DecidedBy {
		t.Errorf("outbox = %+v, want one 'approved' row by %s", rows, r.DecidedBy)
	}
}

func testRaceStart(t *testing.T, h harness) {
	a, b := h.pair(t)
	stores := []*Store{a, b}
	r := newRequest("R1", t0, 1)
	mustDo(t, approveErr(r.Approve("UAPP", t0.Add(time.Minute), approval.Policy{})))
	mustCreate(t, a, r)

	const n = 50
	var (
		won    atomic.Int32
		winner atomic.Value
	)
	elapsed := race(t, n, func(i int) error {
		owner := fmt.Sprintf("worker-%02d", i)
		_, err := stores[i%2].Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
			return nil, r.Start(owner, t0.Add(time.Hour), 5*time.Minute)
		})
		if errors.Is(err, approval.ErrLeaseHeld) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", owner, err)
		}
		won.Add(1)
		winner.Store(owner)
		return nil
	})
	t.Logf("%d executors racing to start over 2 %s handles: %v", n, a.Backend(), elapsed)

	if won.Load() != 1 {
		t.Fatalf("%d executors started the request, want exactly 1", won.Load())
	}
	got, err := b.Get(t.Context(), "R1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != approval.Executing || got.Attempts != 1 || got.LeaseOwner != winner.Load() {
		t.Errorf("stored: state %s, attempts %d, lease owner %q; want executing, 1, %q", got.State, got.Attempts, got.LeaseOwner, winner.Load())
	}
}

func testUpdateLostRace(t *testing.T, h harness) {
	a, b := h.pair(t)
	if a.Backend() == backendSQLite {
		t.Skip("SQLite reads and writes under one BEGIN IMMEDIATE lock, so an Update cannot lose its race there")
	}
	mustCreate(t, a, newRequest("R1", t0, 1))
	calls := 0
	got, err := a.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		calls++
		if calls == 1 {
			// Another replica writes between this attempt's read and its write.
			if _, err := b.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
				return nil, approveErr(r.Approve("UOTHER", t0.Add(time.Minute), approval.Policy{}))
			}); err != nil {
				t.Errorf("interfering Update: %v", err)
			}
		}
		if err := approveErr(r.Approve("UAPP", t0.Add(time.Minute), approval.Policy{})); err != nil {
			return nil, err
		}
		return []Outbox{{Kind: "approved"}}, nil
	})
	if !errors.Is(err, approval.ErrNotPending) {
		t.Errorf("Update after losing the race = %+v, %v; want ErrNotPending from the re-applied fn", got, err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times, want 2 (once per read)", calls)
	}
	stored, _ := a.Get(t.Context(), "R1")
	if stored.DecidedBy != "UOTHER" || stored.Version != 2 || len(stored.Approvals) != 1 {
		t.Errorf("stored: decided by %q, version %d, %d approvals; want UOTHER, 2, 1", stored.DecidedBy, stored.Version, len(stored.Approvals))
	}
	if n := pendingOutbox(t, a); n != 0 {
		t.Errorf("the losing attempt queued %d outbox rows", n)
	}
}

func TestCASLoop(t *testing.T) {
	t.Parallel()
	s := &Store{backend: backendPostgres}
	tests := []struct {
		name      string
		failures  int // attempts that lose before one wins
		wantErr   error
		wantCalls int
	}{
		{"first try", 0, nil, 1},
		{"after lost races", 3, nil, 4},
		{"too hot", maxAttempts, ErrConflict, maxAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := s.retryLoop(t.Context(), func() error {
				calls++
				if calls <= tt.failures {
					return errRetry
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("%d attempts, want %d", calls, tt.wantCalls)
			}
		})
	}
}

// testRetryExclusive: a retry opens a failed request again for the users it still has to act on,
// under the lock and with the check a new request gets (CreateExclusive): a retry and a new
// request for the same user, each validated without seeing the other, never both proceed; a
// user the retry no longer acts on is no conflict.
func testRetryExclusive(t *testing.T, h harness) {
	a, b := h.pair(t)
	now := time.Now()
	request := func(id string, state approval.State, users ...int) approval.Request {
		r := approval.Request{ID: id, Action: approval.Disable, State: state, Requester: "UREQ", ChannelID: "C",
			RequiredApprovals: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		for _, u := range users {
			r.Targets = append(r.Targets, approval.Target{UserID: u, Email: fmt.Sprintf("u%d@x", u)})
		}
		if state == approval.Failed {
			r.DecidedBy, r.DecidedAt, r.FinishedAt = "UAPP", now, now
			for i := range r.Targets {
				r.Targets[i].Result = approval.Result{Outcome: approval.TargetFailed, Message: "boom", At: now}
			}
		}
		return r
	}
	retry := func(r *approval.Request) ([]Outbox, error) { return nil, r.Retry("UAPP2", now) }
	create := func(s *Store, r approval.Request) {
		t.Helper()
		if err := s.Create(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}

	// The new request was created first: the retry is refused and changes nothing.
	create(a, request("F-1", approval.Failed, 42))
	if err := b.CreateExclusive(t.Context(), request("N-1", approval.Pending, 42)); err != nil {
		t.Fatalf("a new request for a user whose request failed: %v", err)
	}
	var oe *OpenRequestError
	if _, err := a.Update(t.Context(), "F-1", retry); !errors.As(err, &oe) || oe.RequestID != "N-1" || oe.User.ID != 42 {
		t.Fatalf("a retry for a user with a newer open request = %v, want refused naming N-1", err)
	}
	if r, err := a.Get(t.Context(), "F-1"); err != nil || r.State != approval.Failed || r.Version != 1 {
		t.Fatalf("after the refused retry: %s v%d (%v), want failed and unchanged", r.State, r.Version, err)
	}

	// The retry went first: the new request is refused.
	create(a, request("F-2", approval.Failed, 43))
	if _, err := a.Update(t.Context(), "F-2", retry); err != nil {
		t.Fatalf("a retry with no other open request: %v", err)
	}
	if err := b.CreateExclusive(t.Context(), request("N-2", approval.Pending, 43)); !errors.As(err, &oe) || oe.RequestID != "F-2" {
		t.Fatalf("a new request for a user being retried = %v, want refused naming F-2", err)
	}

	// A user the retry does not act on again (done the first time) may have another request.
	partial := request("F-3", approval.Failed, 44, 45)
	partial.State = approval.Partial
	partial.Targets[0].Result = approval.Result{Outcome: approval.Done, At: now}
	create(a, partial)
	create(b, request("N-3", approval.Pending, 44))
	if _, err := a.Update(t.Context(), "F-3", retry); err != nil {
		t.Fatalf("a retry of user 45 while user 44, done by it, has another request: %v", err)
	}

	// Both at the same moment, on two replicas: exactly one proceeds, every time.
	for i := range 10 {
		user := 100 + i
		failed, fresh := fmt.Sprintf("F-R%d", i), fmt.Sprintf("N-R%d", i)
		create(a, request(failed, approval.Failed, user))
		var wg sync.WaitGroup
		var retryErr, createErr error
		wg.Go(func() { _, retryErr = a.Update(t.Context(), failed, retry) })
		wg.Go(func() { createErr = b.CreateExclusive(t.Context(), request(fresh, approval.Pending, user)) })
		wg.Wait()
		if (retryErr == nil) == (createErr == nil) {
			t.Fatalf("round %d: retry %v, new request %v; want exactly one to proceed", i, retryErr, createErr)
		}
		for _, err := range []error{retryErr, createErr} {
			if err != nil && !errors.As(err, &oe) {
				t.Fatalf("round %d: refused with %v, want *OpenRequestError", i, err)
			}
		}
	}
}
