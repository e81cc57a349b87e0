// Package store is the durable home of approval requests and of the Slack messages they still
// owe (the outbox), on embedded SQLite (one replica) or PostgreSQL (several replicas).
//
// Every change to a request is a compare-and-set: read the row, apply a pure transition from
// package approval to a copy, and write the copy only if the row's version is still the one that
// was read. Side effects are not performed by the writer directly: they are queued as outbox rows
// in the same transaction, and a deliverer claims them with a lease, so a crash between the write
// and the Slack call neither loses nor duplicates a message beyond one retry.
//
// # Lock order
//
// A write transaction takes its locks in this order, and never one that comes earlier in the
// list after one that comes later, so two transactions never wait for each other in a circle
// (a PostgreSQL deadlock, which aborts one of them):
//
//  1. the store's advisory locks (request creation, last-admin reservations), first thing;
//  2. request rows: one request by its UPDATE; several (a change with its related requests,
//     Also) together, in id order, before any is written (lockRequests); settleTx's share
//     locks likewise in id order;
//  3. the audit chain's head, by appending an entry: outbox rows, which carry the entries, are
//     queued only after every request row of the transaction is written;
//  4. existing outbox rows (claims, completions, retries), last.
//
// The checkpoint claim's row is taken alone, by a transaction that locks nothing else.
//
// A request created in a transaction is a new row nobody else holds, except a concurrent
// creator of the same id: a scheduled return is created only by a write to its leave, which
// holds the leave's row first. On SQLite every write transaction holds the database's one
// write lock (BEGIN IMMEDIATE), so the order costs nothing there. Should PostgreSQL still abort
// a transaction as a deadlock or a serialization failure, writeTx runs it again (maxTxAttempts).
//
// The package does no logging; it returns errors.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound means no request has the given id.
	ErrNotFound = errors.New("store: request not found")
	// ErrExists means a request with the same ID, or the same non-empty SourceKey, is already
	// stored: a redelivered slash command must not create a second request.
	ErrExists = errors.New("store: request already exists")
	// ErrConflict means the write lost to other writers: an Update lost its compare-and-set
	// maxAttempts times in a row, or an outbox row is no longer claimed by the caller (its lease
	// ran out and another process took it over, or it was already completed).
	ErrConflict = errors.New("store: too many concurrent updates")
	// ErrNotClaimed is the ErrConflict of an outbox row the caller no longer holds: another
	// process took it over once its lease ran out, or it was completed already. Trying the same
	// write again cannot succeed, unlike a lost compare-and-set.
	ErrNotClaimed = fmt.Errorf("%w: the outbox row is not claimed by this owner", ErrConflict)
)

const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"

	// acceptedURLs is quoted in every URL error, so an operator knows how to fix DATABASE_URL.
	acceptedURLs = "DATABASE_URL must be sqlite:PATH, sqlite://PATH, file:PATH (sqlite::memory: for tests) or postgres://user@host:port/db (postgresql:// also accepted)"

	// sqliteBusyTimeout is how long a SQLite writer waits for another connection or process
	// holding the write lock before failing with SQLITE_BUSY. Write transactions are short, so
	// a long wait only happens when something is wrong.
	sqliteBusyTimeout = 10 * time.Second

	// maxAttempts bounds the compare-and-set loop of Update: past it the request is too hot and
	// the caller gets ErrConflict rather than spinning forever.
	maxAttempts = 100

	// maxTxAttempts bounds how many times writeTx runs a transaction PostgreSQL aborted as a
	// deadlock or a serialization failure: with the lock order kept, none should be needed.
	maxTxAttempts = 10

	// postgresMaxConns is the pool size per process: enough for the bot's concurrent handlers,
	// small enough that several replicas stay far below max_connections (100 by default).
	postgresMaxConns = 10
)

// Store is the durable approval store. It is safe for concurrent use, and several Stores (in
// one process or in several) may share one database.
type Store struct {
	db      *sql.DB
	backend string
	// writeSem serialises this process's SQLite write transactions in Go, so they queue on a
	// channel (honouring ctx) instead of sleeping in SQLite's busy handler. Nil on Postgres.
	writeSem chan struct{}
	// now stamps bookkeeping columns (updated_at, delivered_at, outbox created_at); request
	// times always come from the caller's approval.Request.
	now func() time.Time
	// commits counts committed write transactions: each is one durable write (an fsync of the
	// SQLite WAL, a flush of the PostgreSQL WAL), the cost that bounds how fast the bot can go.
	commits atomic.Uint64
	// aborted counts write transactions PostgreSQL aborted as deadlocks or serialization
	// failures (and writeTx ran again): the lock order's tests hold it at zero.
	aborted atomic.Uint64
	// health records the calls the database could not serve (health.go).
	health health
}

// Open connects to the database named by url (the DATABASE_URL) and applies the embedded
// migrations, so a fresh database is usable at once and an upgraded binary upgrades its schema.
//
// Accepted forms: "sqlite:PATH", "sqlite://PATH", "file:PATH" (an embedded SQLite file; its
// directory must exist; "sqlite::memory:" is a private in-memory database for tests) and
// "postgres://..." or "postgresql://..." (any libpq URL parameter pgx accepts; unknown query
// parameters such as search_path are sent as session settings). Two processes opening the same
// database at the same moment both succeed: migrations run under a lock. Errors never contain
// the password from url.
func Open(ctx context.Context, url string) (*Store, error) {
	s, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// connect opens the database named by url (see Open) without touching its schema.
func connect(ctx context.Context, url string) (*Store, error) {
	backend, path, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var s *Store
	switch backend {
	case backendSQLite:
		s, err = openSQLite(ctx, path)
	default:
		s, err = openPostgres(ctx, url)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// CheckURL reports whether Open accepts url's form, without connecting: configuration checks
// use it so the bot refuses at start exactly what the store would refuse. The error never
// contains the password from url.
func CheckURL(url string) error {
	_, _, err := parseURL(url)
	return err
}

// parseURL returns the backend url names and, for SQLite, the file path.
func parseURL(url string) (backend, path string, err error) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return "", "", fmt.Errorf("DATABASE_URL has no scheme: %s", acceptedURLs)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "file":
		path = strings.TrimPrefix(rest, "//")
		if path == "" {
			return "", "", fmt.Errorf("sqlite DATABASE_URL has no path: %s", acceptedURLs)
		}
		return backendSQLite, path, nil
	case "postgres", "postgresql":
		return backendPostgres, "", nil
	}
	// Only the scheme is quoted: the rest may hold a password.
	return "", "", fmt.Errorf("unsupported DATABASE_URL scheme %q: %s", scheme, acceptedURLs)
}

// openSQLite opens path with the settings that make several handles on one file safe: WAL so
// readers never block the writer, a busy timeout so writers wait for each other, foreign keys,
// and BEGIN IMMEDIATE for every write transaction so a transaction that reads then writes never
// fails half-way with SQLITE_BUSY when another writer got in between.
func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("store: sqlite DATABASE_URL has no path: %s", acceptedURLs)
	}
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("store: sqlite DATABASE_URL %q: query parameters are not supported (the store sets its own)", path)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(int(sqliteBusyTimeout.Milliseconds()))+")")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL syncs the WAL at every commit, so a committed write survives power loss, not only a
	// crash of the process (NORMAL may lose the last commits). The delivery path is built to need
	// few commits rather than cheaper ones. https://www.sqlite.org/pragma.html#pragma_synchronous
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite database %q: %w", path, err)
	}
	memory := path == ":memory:"
	if memory {
		// Every connection to ":memory:" is a separate empty database: keep exactly one.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(8)
	}
	db.SetMaxIdleConns(db.Stats().MaxOpenConnections)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite database %q (does its directory exist, and is it writable?): %w", path, err)
	}
	return &Store{db: db, backend: backendSQLite, writeSem: make(chan struct{}, 1), now: time.Now}, nil
}

// openPostgres connects through pgx's database/sql driver.
func openPostgres(ctx context.Context, rawURL string) (*Store, error) {
	secrets := urlSecrets(rawURL)
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: invalid postgres DATABASE_URL: %w", redact(err, secrets...))
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(postgresMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to postgres %s: %w", redactedURL(rawURL), redact(err, secrets...))
	}
	return &Store{db: db, backend: backendPostgres, now: time.Now}, nil
}

// secretParams are the URL query parameters through which pgx takes a secret: the password
// itself and the passphrase of an encrypted client key (pgconn's ParseConfig reads both).
var secretParams = []string{"password", "sslpassword"}

// urlSecrets returns every secret rawURL carries: the userinfo password and the values of the
// secret query parameters. A URL that does not parse yields none (and is never shown).
func urlSecrets(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	q := u.Query()
	for _, k := range secretParams {
		for _, v := range q[k] {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// redactedURL returns rawURL without its secrets, for error messages. A URL that does not
// parse is not shown at all.
func redactedURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	q := u.Query()
	for _, k := range secretParams {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// redact returns err unchanged when its text cannot contain password, and otherwise a plain
// error with every occurrence replaced: a driver error must never carry a secret into a log.
// The replacement does not wrap err, since unwrapping would bring the password back.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	leaked := false
	for _, secret := range secrets {
		for _, p := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			if p != "" && strings.Contains(msg, p) {
				msg = strings.ReplaceAll(msg, p, "xxxxx")
				leaked = true
			}
		}
	}
	if !leaked {
		return err
	}
	return errors.New(msg)
}

// Close releases the database connections. The Store must not be used afterwards.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers, for a readiness probe.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.backend, err)
	}
	return nil
}

// Backend names the database in use, "sqlite" or "postgres", for logs and metrics labels.
func (s *Store) Backend() string { return s.backend }

// rebind turns the store's '?' placeholders into Postgres's $1, $2, ..., so both backends share
// one SQL text. The store's SQL has no '?' inside literals.
func (s *Store) rebind(query string) string {
	if s.backend != backendPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// errRetry is returned by a transaction body that lost a compare-and-set: writeTx rolls back
// and the caller runs the body again on fresh data.
var errRetry = errors.New("store: lost compare-and-set")

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE on SQLite) and commits when fn returns
// nil. Any error, including errRetry, rolls back and is returned as is, except that a
// transaction PostgreSQL aborted as a deadlock or a serialization failure is run again, up to
// maxTxAttempts times in all: fn must therefore set, not accumulate, what it captures.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeTxOnce(ctx, fn)
		if !isAborted(err) || attempt == maxTxAttempts {
			return err
		}
		s.aborted.Add(1)
		t := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond))))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// writeTxOnce is one attempt of writeTx.
func (s *Store) writeTxOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.writeSem != nil {
		select {
		case s.writeSem <- struct{}{}:
			defer func() { <-s.writeSem }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	s.commits.Add(1)
	s.recovered()
	return nil
}

// isAborted reports whether PostgreSQL aborted the transaction to break a deadlock (SQLSTATE
// 40P01) or as a serialization failure (40001), after which running it again may succeed:
// https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html. The code
// decides, never the message, which the server translates.
func isAborted(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// Commits returns how many write transactions this Store has committed since Open (the
// migration check at Open included). Every write goes through one, so the difference between
// two readings is the number of durable writes in between: the instrumentation behind the
// benchmark's commits per approval and the test that holds that number down.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// casLoop runs the body of a compare-and-set transaction until it does not lose its race, at
// most maxAttempts times, with a short random pause between tries so racing replicas spread out.
func (s *Store) casLoop(ctx context.Context, body func(tx *sql.Tx) error) error {
	return s.retryLoop(ctx, func() error { return s.writeTx(ctx, body) })
}

// retryLoop runs attempt until it returns something other than errRetry.
func (s *Store) retryLoop(ctx context.Context, attempt func() error) error {
	for n := range maxAttempts {
		err := attempt()
		if !errors.Is(err, errRetry) {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(min(n+1, 10)) * int64(time.Millisecond)))
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return ErrConflict
}

// isUniqueViolation reports whether err is a unique or primary-key constraint violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

// millis converts t to the stored form, unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis converts a stored time back, in UTC.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
