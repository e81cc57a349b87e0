package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Call budgets. Every store call is bounded, so a database that stops answering (a PostgreSQL
// failover, a pool exhausted by slow queries, a SQLite file locked by another process) makes
// callers fail with ErrUnavailable instead of hanging.
const (
	// ReplyTimeout bounds each store call made before the bot answers a person in Slack: the
	// answer must go out before Slack's 3 s deadline, and a failed call still leaves time to
	// say that nothing was done.
	ReplyTimeout = time.Second
	// CallTimeout bounds every other store call (timers, the outbox, executions).
	CallTimeout = 10 * time.Second
)

// ErrUnavailable marks a failure of the database itself (it is down or unreachable, did not
// answer within the call's budget, its disk is full, it is read-only), as opposed to an answer
// about the data (ErrNotFound, ErrExists, ErrConflict). Nothing the call would have written was
// written; the same call may succeed once the database is back. Errors wrapping it are
// *UnavailableError.
var ErrUnavailable = errors.New("the database is unavailable")

// UnavailableError is a store call the database could not serve: Op names the call, Cause says
// why in words an operator can act on.
type UnavailableError struct {
	Op    string
	Cause string
	Err   error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("store: %s: %s (%s): %v", e.Op, ErrUnavailable, e.Cause, e.Err)
}

// Unwrap returns both ErrUnavailable and the driver's error, so errors.Is finds either.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// budgetKey carries a per-call budget chosen by the caller (WithCallTimeout).
type budgetKey struct{}

// WithCallTimeout returns ctx whose store calls each give up after d instead of CallTimeout:
// the core uses ReplyTimeout for the calls a person's answer waits for.
func WithCallTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, budgetKey{}, d)
}

// Health is what the store knows of its database from the calls it served: Failing from the
// first call the database could not serve until a write succeeds again.
type Health struct {
	Failing bool
	// Op and Cause describe the first failure of the current outage; Since is when it happened.
	Op    string
	Cause string
	Since time.Time
}

// health is the Store's record of failures, shared by its calls.
type health struct {
	mu      sync.Mutex
	cur     Health
	counts  map[string]uint64
	onFault func(Health, error)
}

// OnFault sets f to be called (outside any lock, at most once per outage) when a call first
// fails because of the database, with the failure and its error: the process logs the cause
// at the first failure rather than at every call. Set it before using the Store.
func (s *Store) OnFault(f func(h Health, err error)) { s.health.onFault = f }

// Health reports whether the database is failing, since when, and why.
func (s *Store) Health() Health {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.cur
}

// Errors returns how many calls of each operation failed because of the database since Open.
func (s *Store) Errors() map[string]uint64 {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	out := make(map[string]uint64, len(s.health.counts))
	for k, v := range s.health.counts {
		out[k] = v
	}
	return out
}

// Operations lists the operation names Errors may report, so a metric can show each at zero.
func Operations() []string {
	ops := []string{"append_audit", "audit_head", "by_target", "claim_checkpoint", "claim_outbox",
		"complete_and_claim", "complete_outbox", "count_by_state", "create", "due", "export_audit",
		"get", "list", "mark_admin_list", "pending_outbox", "probe", "reserve_admin_disable",
		"retry_outbox", "update", "update_and_claim", "verify_audit"}
	sort.Strings(ops)
	return ops
}

// op starts store call name: it bounds ctx by the call's budget (unless bounded is false: the
// audit's export and verification read the whole log) and returns the function the call defers
// with its error, which turns a database failure into an *UnavailableError and records it.
func (s *Store) op(ctx context.Context, name string, bounded bool) (context.Context, func(*error)) {
	parent := ctx
	cancel := func() {}
	budget := CallTimeout
	if d, ok := ctx.Value(budgetKey{}).(time.Duration); ok && d > 0 {
		budget = d
	}
	if bounded {
		ctx, cancel = context.WithTimeout(ctx, budget)
	}
	return ctx, func(errp *error) {
		defer cancel()
		err := *errp
		if err == nil {
			return
		}
		if parent.Err() != nil {
			// The caller gave up (shutdown, its own deadline): not the database's fault.
			return
		}
		cause, ok := faultCause(err, ctx, budget)
		if !ok {
			return
		}
		ue := &UnavailableError{Op: name, Cause: cause, Err: err}
		*errp = ue
		s.fault(ue)
	}
}

// fault counts a failure and starts an outage if none is under way.
func (s *Store) fault(ue *UnavailableError) {
	h := &s.health
	h.mu.Lock()
	if h.counts == nil {
		h.counts = map[string]uint64{}
	}
	h.counts[ue.Op]++
	first := !h.cur.Failing
	if first {
		h.cur = Health{Failing: true, Op: ue.Op, Cause: ue.Cause, Since: time.Now()}
	}
	cur, f := h.cur, h.onFault
	h.mu.Unlock()
	if first && f != nil {
		f(cur, ue)
	}
}

// recovered ends an outage: a write transaction committed, so the database takes writes again.
func (s *Store) recovered() {
	h := &s.health
	h.mu.Lock()
	h.cur = Health{}
	h.mu.Unlock()
}

// faultCause says whether err is a failure of the database rather than an answer about the data
// or the caller's own error, and why, from typed errors only (PostgreSQL translates its messages,
// so no decision rests on their wording). ctx is the call's bounded context.
func faultCause(err error, ctx context.Context, budget time.Duration) (string, bool) {
	if errors.Is(err, ErrUnavailable) {
		var ue *UnavailableError
		if errors.As(err, &ue) {
			return ue.Cause, true
		}
		return "unavailable", true
	}
	for _, logical := range []error{ErrNotFound, ErrExists, ErrConflict, ErrUnchanged, errRetry} {
		if errors.Is(err, logical) {
			return "", false
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return postgresCause(pgErr)
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqliteCause(sqErr.Code())
	}
	var retryable interface{ SafeToRetry() bool }
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return fmt.Sprintf("no answer within %s", budget), true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "", false
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection to the database was lost", true
	case errors.As(err, &netErr):
		return "the database cannot be reached", true
	case errors.As(err, &retryable):
		// pgconn's own errors (a failed connect, a closed or broken connection) all have it.
		return "the connection to the database was lost", true
	}
	return "", false
}

// FaultCause says whether err (from any store call, Open included) is a failure of the database
// rather than an answer about the data, and why, for messages to operators (`check`).
func FaultCause(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	return faultCause(err, context.Background(), CallTimeout)
}

// postgresCause classifies a PostgreSQL error by SQLSTATE
// (https://www.postgresql.org/docs/current/errcodes-appendix.html): class 23 (a constraint the
// data broke) and 40 (a transaction to run again) are answers, not failures; the classes of a
// server shutting down, out of resources, or read-only are.
func postgresCause(e *pgconn.PgError) (string, bool) {
	switch {
	case e.Code == "25006":
		return "the database is read-only (a standby, or default_transaction_read_only)", true
	case e.Code == "53100":
		return "the database server's disk is full", true
	case e.Code == "57014":
		return "a statement was cancelled (statement_timeout)", true
	case len(e.Code) < 2:
		return "", false
	}
	switch e.Code[:2] {
	case "08":
		return "the connection to the database was lost", true
	case "53":
		return "the database server is out of resources (SQLSTATE " + e.Code + ")", true
	case "57":
		return "the database server is shutting down or restarting (SQLSTATE " + e.Code + ")", true
	case "58", "XX":
		return "the database server failed (SQLSTATE " + e.Code + ")", true
	}
	return "", false
}

// sqliteCause classifies a SQLite result code (https://www.sqlite.org/rescode.html).
func sqliteCause(code int) (string, bool) {
	switch code & 0xff {
	case sqlite3.SQLITE_FULL:
		return "the disk is full", true
	case sqlite3.SQLITE_READONLY:
		return "the database file is read-only", true
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return "another process holds the database's write lock", true
	case sqlite3.SQLITE_IOERR:
		return "the disk failed a read or write", true
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return "the database file is damaged", true
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		return "the database file cannot be opened", true
	case sqlite3.SQLITE_INTERRUPT:
		return "no answer within the call's budget", true
	}
	return "", false
}

// Probe writes to the database (the audit head is rewritten unchanged) and commits, so it fails
// exactly when the store cannot record anything: read-only, disk full, unreachable. A success
// ends an outage. Readiness calls it while Health is failing.
func (s *Store) Probe(ctx context.Context) (err error) {
	ctx, end := s.op(ctx, "probe", true)
	defer end(&err)
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE audit_head SET hash = hash WHERE id = 1`)
		return err
	})
}

// IntegrityCheck runs SQLite's PRAGMA integrity_check and returns an error naming what it found
// unless the file is intact; on PostgreSQL (which has no equivalent a client can run) it does
// nothing. `check` runs it, and the fault tests run it after every fault.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	if s.backend != backendSQLite {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("store: integrity check: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: the SQLite file is damaged: %v", problems)
	}
	return nil
}
