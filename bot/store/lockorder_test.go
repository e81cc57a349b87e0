package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

func TestLockOrderSQLite(t *testing.T) {
	t.Parallel()
	runLockOrderContract(t, harness{newURL: func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "bot.db")
	}})
}

func TestLockOrderPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.EnvVar) == "" {
		t.Skip(storetest.EnvVar + " is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the Postgres lock-order tests")
	}
	// Commits that do not wait for the WAL flush change no lock and no visibility, only what a
	// crash of the server would lose: the 500 runs take half the time.
	runLockOrderContract(t, harness{newURL: func(t *testing.T) string {
		return storetest.PostgresURL(t, "store_lock_") + "&synchronous_commit=off"
	}})
}

// runLockOrderContract is how writes that lock several rows behave on every backend.
func runLockOrderContract(t *testing.T, h harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h harness)
	}{
		{"SupersedeRacesReturn", testSupersedeRacesReturn},
		{"DeadlockRetried", testDeadlockRetried},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// testSupersedeRacesReturn: an approval that supersedes a scheduled return (the request, its
// audit entry, the return and the return's entry in one transaction) and the return's own
// timer (the return and its entry), started at the same moment on two replicas, both succeed,
// every time, without the database having to abort either as a deadlock.
func testSupersedeRacesReturn(t *testing.T, h harness) {
	a, b := h.pair(t)
	runs, batch := 500, 10
	if a.Backend() == backendSQLite {
		// SQLite runs one write transaction at a time, so nothing can deadlock: a few runs show
		// the same calls succeed there.
		runs = 20
	}
	ctx := t.Context()
	reqID := func(i int) string { return fmt.Sprintf("R-%03d", i) }
	retID := func(i int) string { return fmt.Sprintf("R-%03d-RET", i) }

	// One transaction creates every pair: a thousand commits would take longer than the races.
	setupBegan := time.Now()
	if err := a.writeTx(ctx, func(tx *sql.Tx) error {
		for i := range runs {
			ret := newRequest(retID(i), t0, 1000+i)
			ret.Action, ret.State, ret.NotBefore = approval.Enable, approval.Scheduled, t0
			r := newRequest(reqID(i), t0, 1000+i)
			r.Supersedes = []approval.Superseded{{ID: ret.ID, At: t0}}
			for _, r := range []approval.Request{ret, r} {
				r.Version = 1
				data, err := json.Marshal(r)
				if err != nil {
					return err
				}
				if err := a.createTx(ctx, tx, r, data, nil); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("setup: %v", time.Since(setupBegan))

	claim := Claim{Owner: "replica", Now: t0, Lease: time.Minute, Limit: 1}
	click := func(i int) error {
		_, _, err := a.UpdateAndClaim(ctx, reqID(i), claim, func(r *approval.Request) ([]Outbox, []Also, error) {
			r.Reason = "approved"
			return []Outbox{{Kind: "card", Audit: auditEvent(r.ID, "approved", i)}},
				[]Also{{ID: retID(i), Update: func(ret *approval.Request) ([]Outbox, error) {
					ret.Reason += " superseded"
					return []Outbox{{Kind: "thread", Audit: auditEvent(ret.ID, "return_cancelled", i)}}, nil
				}}}, nil
		})
		if err != nil {
			return fmt.Errorf("click on %s: %w", reqID(i), err)
		}
		return nil
	}
	timer := func(i int) error {
		_, _, err := b.UpdateAndClaim(ctx, retID(i), claim, func(ret *approval.Request) ([]Outbox, []Also, error) {
			ret.Reason += " ran"
			return []Outbox{{Kind: "thread", Audit: auditEvent(ret.ID, "return_started", i)}}, nil, nil
		})
		if err != nil {
			return fmt.Errorf("timer of %s: %w", retID(i), err)
		}
		return nil
	}

	began := time.Now()
	for first := 0; first < runs; first += batch {
		start := make(chan struct{})
		var g errgroup.Group
		for i := first; i < min(first+batch, runs); i++ {
			for _, fn := range []func(int) error{click, timer} {
				g.Go(func() error {
					<-start
					return fn(i)
				})
			}
		}
		close(start)
		if err := g.Wait(); err != nil {
			t.Fatalf("runs %d to %d: %v", first, min(first+batch, runs)-1, err)
		}
	}
	t.Logf("%d approvals racing their return's timer on 2 %s handles: %v", runs, a.Backend(), time.Since(began))
	if n := a.aborted.Load() + b.aborted.Load(); n > 0 {
		t.Errorf("the database aborted %d transactions as deadlocks or serialization failures; want none, with the lock order kept", n)
	}

	returns, err := a.List(ctx, approval.Scheduled)
	if err != nil || len(returns) != runs {
		t.Fatalf("%d scheduled returns (%v), want %d", len(returns), err, runs)
	}
	for _, ret := range returns {
		if !strings.Contains(ret.Reason, "superseded") || !strings.Contains(ret.Reason, "ran") {
			t.Fatalf("%s: reason %q, want both the approval's and the timer's change", ret.ID, ret.Reason)
		}
	}
	v, err := a.VerifyAudit(ctx, VerifyAuditOptions{})
	if err != nil || v.Break != nil || v.Count != int64(3*runs) {
		t.Fatalf("audit after the races = %+v, %v; want %d intact entries", v, err, 3*runs)
	}
}

// testDeadlockRetried: two transactions that lock two rows in opposite orders deadlock on
// PostgreSQL, which aborts one of them; writeTx runs that one again and both succeed. SQLite
// runs one write transaction at a time, so there both simply succeed.
func testDeadlockRetried(t *testing.T, h harness) {
	u := h.newURL(t)
	if strings.HasPrefix(u, "postgres") {
		// Detect the deadlock at once rather than after the default second.
		u += "&deadlock_timeout=20ms"
	}
	a, b := h.open(t, u), h.open(t, u)
	ctx := t.Context()
	mustCreate(t, a, newRequest("X", t0, 1))
	mustCreate(t, a, newRequest("Y", t0, 2))
	touch := func(tx *sql.Tx, id string) error {
		_, err := tx.ExecContext(ctx, a.rebind(`UPDATE requests SET updated_at = updated_at + 1 WHERE id = ?`), id)
		return err
	}
	// Each first attempt holds its first row until the other holds its own, so they deadlock.
	held := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var g errgroup.Group
	for i, c := range []struct {
		s           *Store
		first, then string
	}{{a, "X", "Y"}, {b, "Y", "X"}} {
		g.Go(func() error {
			attempt := 0
			return c.s.writeTx(ctx, func(tx *sql.Tx) error {
				attempt++
				if err := touch(tx, c.first); err != nil {
					return err
				}
				if attempt == 1 && a.Backend() == backendPostgres {
					close(held[i])
					select {
					case <-held[1-i]:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return touch(tx, c.then)
			})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("a transaction aborted as a deadlock failed: %v", err)
	}
	// PostgreSQL aborts one of the two; on a loaded machine both backends' deadlock checks can
	// run before either has given up, and then both are aborted and run again: what matters is
	// that each abort was retried and both transactions succeeded.
	n := a.aborted.Load() + b.aborted.Load()
	switch {
	case a.Backend() == backendPostgres && (n < 1 || n > 2):
		t.Errorf("%d transactions aborted and run again, want 1 (2 when both deadlock checks ran at once)", n)
	case a.Backend() != backendPostgres && n != 0:
		t.Errorf("%d transactions aborted and run again on SQLite, want 0", n)
	}
}

// TestWriteTxRetriesOnlyAborts: writeTx runs a transaction again on a deadlock or a
// serialization failure, decided by SQLSTATE, at most maxTxAttempts times, and returns every
// other error at once.
func TestWriteTxRetriesOnlyAborts(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		name     string
		err      error
		failures int
		want     int
	}{
		{"deadlock twice", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}, 2, 3},
		{"serialization failure once", fmt.Errorf("store: wrapped: %w", &pgconn.PgError{Code: "40001"}), 1, 2},
		{"deadlock for ever", &pgconn.PgError{Code: "40P01"}, 1000, maxTxAttempts},
		{"unique violation", &pgconn.PgError{Code: "23505", Message: "deadlock detected"}, 1, 1},
		{"other error", errors.New("deadlock"), 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := s.writeTx(t.Context(), func(tx *sql.Tx) error {
				calls++
				if calls <= tt.failures {
					return tt.err
				}
				return nil
			})
			if calls != tt.want {
				t.Errorf("%d attempts, want %d", calls, tt.want)
			}
			if wantErr := tt.failures >= tt.want; (err != nil) != wantErr {
				t.Errorf("writeTx = %v, want an error: %v", err, wantErr)
			}
		})
	}
}
