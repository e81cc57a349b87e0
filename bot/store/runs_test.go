package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// rewrite is the one kind the run tests treat as a rewrite (like the core's card update).
const rewrite = "update"

func TestRunsSQLite(t *testing.T) {
	t.Parallel()
	runRunsContract(t, harness{newURL: func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "bot.db")
	}})
}

func TestRunsPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.EnvVar) == "" {
		t.Skip(storetest.EnvVar + " is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the Postgres contract tests")
	}
	runRunsContract(t, harness{newURL: func(t *testing.T) string { return storetest.PostgresURL(t, "store_test_") }})
}

// runRunsContract is the behaviour of delivery in runs every backend must show.
func runRunsContract(t *testing.T, h harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h harness)
	}{
		{"RunsEndAtFirstVisibleMessage", testRunsCut},
		{"RunsStopBeforeBusyRow", testRunsStopAtBusyRow},
		{"SettleReportsLostRows", testSettleLost},
		{"SettleReleases", testSettleRelease},
		{"UpdateAndClaim", testUpdateAndClaim},
		{"UpdateAndClaimWaitsForEarlierRows", testUpdateAndClaimBlocked},
		{"RunsCommits", testRunsCommits},
		{"RaceRuns", testRaceRuns},
		{"RaceSettleAndWrite", testRaceSettleAndWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// runClaim is the claim of the run tests: owner at t0+at, a minute's lease, up to ten requests.
func runClaim(owner string, at time.Duration) Claim {
	return Claim{Owner: owner, Now: t0.Add(at), Lease: time.Minute, Limit: 10, Rewrites: []string{rewrite}}
}

// settle calls CompleteAndClaim and returns the claimed rows and their "request/kind" names.
func settle(t *testing.T, s *Store, done Settle, c Claim) ([]Outbox, []string) {
	t.Helper()
	got, lost, err := s.CompleteAndClaim(t.Context(), done, c)
	if err != nil {
		t.Fatalf("CompleteAndClaim(%s): %v", c.Owner, err)
	}
	if len(lost) > 0 {
		t.Fatalf("CompleteAndClaim(%s) lost %v", c.Owner, lost)
	}
	return got, names(got)
}

func names(rows []Outbox) []string {
	out := []string{}
	for _, o := range rows {
		out = append(out, o.RequestID+"/"+o.Kind)
	}
	return out
}

func rowIDs(rows []Outbox) []int64 {
	out := make([]int64, len(rows))
	for i, o := range rows {
		out[i] = o.ID
	}
	return out
}

func kinds(ks ...string) []Outbox {
	out := make([]Outbox, len(ks))
	for i, k := range ks {
		out[i] = Outbox{Kind: k}
	}
	return out
}

func testRunsCut(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0), kinds(rewrite, rewrite, "thread", rewrite, "audit")...)
	mustCreate(t, s, newRequest("R2", t0), kinds("audit", rewrite)...)

	first, got := settle(t, s, Settle{}, runClaim("d1", 0))
	want := []string{"R1/update", "R1/update", "R1/thread", "R2/audit"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("first claim (-want +got):\n%s", diff)
	}
	// Nobody else gets the rest of either request while those runs are out.
	if _, got := settle(t, s, Settle{}, runClaim("d2", 0)); len(got) != 0 {
		t.Fatalf("a second owner claimed %v behind live runs", got)
	}
	// One transaction records the round and claims what it released.
	_, got = settle(t, s, Settle{Delivered: rowIDs(first)}, runClaim("d1", 0))
	if diff := cmp.Diff([]string{"R1/update", "R1/audit", "R2/update"}, got); diff != "" {
		t.Fatalf("claim after the round (-want +got):\n%s", diff)
	}
	if n := pendingOutbox(t, s); n != 3 {
		t.Errorf("PendingOutbox = %d, want 3", n)
	}
}

func testRunsStopAtBusyRow(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0), kinds(rewrite, rewrite, "thread")...)
	rows := outboxRows(t, s)
	// The second row is held until t0+1m (as by a past owner): the run must not jump over it.
	if _, err := s.db.ExecContext(t.Context(), s.rebind(`UPDATE outbox SET claimed_by = 'old', claimed_until = ? WHERE id = ?`),
		millis(t0.Add(time.Minute)), rows[1].id); err != nil {
		t.Fatal(err)
	}
	_, got := settle(t, s, Settle{}, runClaim("d1", 0))
	if diff := cmp.Diff([]string{"R1/update"}, got); diff != "" {
		t.Fatalf("claim with a busy second row (-want +got):\n%s", diff)
	}
}

func testSettleLost(t *testing.T, h harness) {
	a, b := h.pair(t)
	mustCreate(t, a, newRequest("R1", t0), kinds(rewrite, "thread")...)
	mine, _ := settle(t, a, Settle{}, runClaim("d1", 0))
	// d1's lease runs out and d2 takes the run over.
	theirs, got := settle(t, b, Settle{}, runClaim("d2", time.Minute))
	if !cmp.Equal(rowIDs(theirs), rowIDs(mine)) || theirs[0].Attempts != 2 {
		t.Fatalf("takeover claimed %v (attempts %d), want the same run at attempt 2", got, theirs[0].Attempts)
	}
	_, lost, err := a.CompleteAndClaim(t.Context(), Settle{Delivered: rowIDs(mine)}, runClaim("d1", time.Minute))
	if err != nil {
		t.Fatalf("CompleteAndClaim by the previous owner: %v", err)
	}
	if !cmp.Equal(lost, rowIDs(mine)) {
		t.Errorf("lost = %v, want %v", lost, rowIDs(mine))
	}
	if n := pendingOutbox(t, a); n != 2 {
		t.Fatalf("the previous owner marked rows it lost: PendingOutbox = %d, want 2", n)
	}
	settle(t, b, Settle{Delivered: rowIDs(theirs)}, runClaim("d2", time.Minute))
	if n := pendingOutbox(t, a); n != 0 {
		t.Errorf("PendingOutbox = %d, want 0", n)
	}
}

func testSettleRelease(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0), kinds(rewrite, "thread")...)
	run, _ := settle(t, s, Settle{}, runClaim("d1", 0))
	// The update failed and waits for a retry; the thread reply behind it was never sent.
	if err := s.RetryOutbox(t.Context(), run[0].ID, "d1", t0.Add(10*time.Second), "slack: ratelimited"); err != nil {
		t.Fatal(err)
	}
	if _, got := settle(t, s, Settle{Released: []int64{run[1].ID}}, runClaim("d1", 0)); len(got) != 0 {
		t.Fatalf("claimed %v before the retry time", got)
	}
	rows := outboxRows(t, s)
	if rows[1].claimedBy != "" || rows[1].attempts != 0 {
		t.Fatalf("released row = %+v, want unclaimed with no attempt counted", rows[1])
	}
	// At the retry time anyone may take the whole run again.
	again, got := settle(t, s, Settle{}, runClaim("d2", 10*time.Second))
	if diff := cmp.Diff([]string{"R1/update", "R1/thread"}, got); diff != "" {
		t.Fatalf("claim at the retry time (-want +got):\n%s", diff)
	}
	if again[0].Attempts != 2 || again[1].Attempts != 1 {
		t.Errorf("attempts = %d, %d; want 2, 1", again[0].Attempts, again[1].Attempts)
	}
}

func testUpdateAndClaim(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0, 1))
	mustCreate(t, s, newRequest("R2", t0), kinds("audit")...)
	approve := func(r *approval.Request) ([]Outbox, error) {
		if err := approveErr(r.Approve("UAPP", t0, approval.Policy{})); err != nil {
			return nil, err
		}
		return append(kinds(rewrite, "audit"), Outbox{RequestID: "R2", Kind: "audit"}), nil
	}
	// A failed write claims nothing.
	errBoom := errors.New("boom")
	if _, claimed, err := s.updateAndClaimOwn(t.Context(), "R1", runClaim("d1", 0), func(r *approval.Request) ([]Outbox, error) {
		return kinds(rewrite), errBoom
	}); !errors.Is(err, errBoom) || claimed != nil {
		t.Fatalf("UpdateAndClaim with a failing fn = %v, %v", claimed, err)
	}
	r, claimed, err := s.updateAndClaimOwn(t.Context(), "R1", runClaim("d1", 0), approve)
	if err != nil {
		t.Fatalf("UpdateAndClaim: %v", err)
	}
	if r.State != approval.Approved || r.Version != 2 {
		t.Errorf("stored request state %s version %d", r.State, r.Version)
	}
	// Its own request's run only: the row it queued for R2 is left to the deliverers.
	if diff := cmp.Diff([]string{"R1/update", "R1/audit"}, names(claimed)); diff != "" {
		t.Fatalf("claimed (-want +got):\n%s", diff)
	}
	if claimed[0].Attempts != 1 || len(claimed[0].Payload) != 0 {
		t.Errorf("claimed row = %+v", claimed[0])
	}
	_, got := settle(t, s, Settle{}, runClaim("d2", 0))
	if diff := cmp.Diff([]string{"R2/audit"}, got); diff != "" {
		t.Fatalf("another owner's claim (-want +got):\n%s", diff)
	}
	// A write that queues nothing claims nothing, whatever is free.
	mustCreate(t, s, newRequest("R3", t0), kinds("audit")...)
	if _, claimed, err := s.updateAndClaimOwn(t.Context(), "R3", runClaim("d1", 0), func(r *approval.Request) ([]Outbox, error) {
		r.Reason = "edited"
		return nil, nil
	}); err != nil || len(claimed) != 0 {
		t.Fatalf("UpdateAndClaim queueing nothing = %v, %v; want no claim", names(claimed), err)
	}
}

func testUpdateAndClaimBlocked(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0, 1), kinds("audit")...)
	earlier, _ := settle(t, s, Settle{}, runClaim("d1", 0))
	_, claimed, err := s.updateAndClaimOwn(t.Context(), "R1", runClaim("d1", 0), func(r *approval.Request) ([]Outbox, error) {
		return kinds(rewrite, "thread"), approveErr(r.Approve("UAPP", t0, approval.Policy{}))
	})
	if err != nil || len(claimed) != 0 {
		t.Fatalf("UpdateAndClaim behind an undelivered row = %v, %v; want no claim", names(claimed), err)
	}
	// Recording the earlier row and claiming what follows it is one transaction.
	_, got := settle(t, s, Settle{Delivered: rowIDs(earlier)}, runClaim("d1", 0))
	if diff := cmp.Diff([]string{"R1/update", "R1/thread"}, got); diff != "" {
		t.Fatalf("claim after the earlier row (-want +got):\n%s", diff)
	}
}

func testRunsCommits(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0, 1))
	before := s.Commits()
	if _, got := settle(t, s, Settle{}, runClaim("d1", 0)); len(got) != 0 {
		t.Fatalf("claimed %v from an empty outbox", got)
	}
	if n := s.Commits() - before; n != 0 {
		t.Fatalf("an empty claim committed %d transactions, want 0", n)
	}
	_, claimed, err := s.updateAndClaimOwn(t.Context(), "R1", runClaim("d1", 0), func(r *approval.Request) ([]Outbox, error) {
		return kinds(rewrite, "audit", rewrite, "thread"), approveErr(r.Approve("UAPP", t0, approval.Policy{}))
	})
	if err != nil {
		t.Fatal(err)
	}
	next, _ := settle(t, s, Settle{Delivered: rowIDs(claimed)}, runClaim("d1", 0))
	settle(t, s, Settle{Delivered: rowIDs(next)}, runClaim("d1", 0))
	if n := s.Commits() - before; n != 3 {
		t.Errorf("a write and two rounds committed %d transactions, want 3", n)
	}
	if n := pendingOutbox(t, s); n != 0 {
		t.Errorf("PendingOutbox = %d, want 0", n)
	}
}

// testRaceRuns: deliverers on two handles claim and record runs concurrently. Every row is
// claimed once, each request's rows in order, and no run holds a visible message before its end.
func testRaceRuns(t *testing.T, h harness) {
	a, b := h.pair(t)
	stores := []*Store{a, b}
	const (
		requests = 30
		workers  = 12
	)
	perRequest := []string{rewrite, "audit", rewrite, "thread", "audit"}
	for i := range requests {
		mustCreate(t, a, newRequest(fmt.Sprintf("R%02d", i), t0), kinds(perRequest...)...)
	}
	var (
		mu      sync.Mutex
		claims  = map[int64]int{}
		byOrder = map[string][]string{}
		badRuns []string
	)
	elapsed := race(t, workers, func(i int) error {
		s := stores[i%2]
		c := Claim{Owner: fmt.Sprintf("worker-%02d", i), Now: t0, Lease: time.Hour, Limit: 3, Rewrites: []string{rewrite}}
		var done Settle
		for {
			got, lost, err := s.CompleteAndClaim(t.Context(), done, c)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Owner, err)
			}
			if len(lost) > 0 {
				return fmt.Errorf("%s lost %v", c.Owner, lost)
			}
			done = Settle{Delivered: rowIDs(got)}
			mu.Lock()
			runs := map[string][]string{}
			for _, o := range got {
				claims[o.ID]++
				byOrder[o.RequestID] = append(byOrder[o.RequestID], o.Kind)
				runs[o.RequestID] = append(runs[o.RequestID], o.Kind)
			}
			for req, run := range runs {
				if slices.ContainsFunc(run[:len(run)-1], func(k string) bool { return k != rewrite }) {
					badRuns = append(badRuns, fmt.Sprint(req, run))
				}
			}
			mu.Unlock()
			if len(got) > 0 {
				continue
			}
			n, err := s.PendingOutbox(t.Context())
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			runtime.Gosched()
		}
	})
	t.Logf("%d workers over 2 %s handles delivered %d rows in runs: %v", workers, a.Backend(), requests*len(perRequest), elapsed)
	if len(claims) != requests*len(perRequest) {
		t.Errorf("%d distinct rows claimed, want %d", len(claims), requests*len(perRequest))
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("row %d claimed %d times", id, n)
		}
	}
	for req, ks := range byOrder {
		if !slices.Equal(ks, perRequest) {
			t.Errorf("request %s delivered out of order: %v", req, ks)
		}
	}
	if len(badRuns) > 0 {
		t.Errorf("runs with a visible message before their end: %v", badRuns)
	}
}

// testRaceSettleAndWrite: the transaction recording a request's delivered rows and a write
// queueing the request's next messages run at the same moment. One of them must claim the new
// run: if each missed the other's change, the run would wait for a claim of its own, a commit
// more on the approval path.
func testRaceSettleAndWrite(t *testing.T, h harness) {
	a, b := h.pair(t)
	for i := range 30 {
		id := fmt.Sprintf("R%02d", i)
		mustCreate(t, a, newRequest(id, t0, 1), kinds("audit")...)
		earlier, _ := settle(t, a, Settle{}, runClaim("d1", 0))
		var (
			g                 sync.WaitGroup
			byWrite, bySettle []Outbox
			werr, serr        error
		)
		g.Go(func() {
			_, byWrite, werr = b.updateAndClaimOwn(t.Context(), id, runClaim("d1", 0), func(r *approval.Request) ([]Outbox, error) {
				return kinds(rewrite, "thread"), approveErr(r.Approve("UAPP", t0, approval.Policy{}))
			})
		})
		g.Go(func() {
			bySettle, _, serr = a.CompleteAndClaim(t.Context(), Settle{Delivered: rowIDs(earlier)}, runClaim("d1", 0))
		})
		g.Wait()
		if werr != nil || serr != nil {
			t.Fatalf("UpdateAndClaim: %v; CompleteAndClaim: %v", werr, serr)
		}
		if got := append(names(byWrite), names(bySettle)...); !cmp.Equal(got, []string{id + "/update", id + "/thread"}) {
			t.Fatalf("round %d: the write claimed %v and the settle %v; want the new run claimed once, by either", i, names(byWrite), names(bySettle))
		}
		settle(t, a, Settle{Delivered: rowIDs(append(byWrite, bySettle...))}, runClaim("d1", 0))
	}
}

// TestSQLiteSyncsEveryCommit: the store's SQLite connections sync the WAL at every commit, so a
// committed write survives power loss.
func TestSQLiteSyncsEveryCommit(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode int
	if err := s.db.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	const full = 2
	if mode != full {
		t.Fatalf("PRAGMA synchronous = %d, want %d (FULL)", mode, full)
	}
}

// updateAndClaimOwn is UpdateAndClaim for changes that touch only their own request.
func (s *Store) updateAndClaimOwn(ctx context.Context, id string, c Claim, fn func(r *approval.Request) ([]Outbox, error)) (approval.Request, []Outbox, error) {
	return s.UpdateAndClaim(ctx, id, c, func(r *approval.Request) ([]Outbox, []Also, error) {
		out, err := fn(r)
		return out, nil, err
	})
}
