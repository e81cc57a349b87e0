package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// requestColumns are read by every query that returns requests: data is the source of truth,
// version is the compare-and-set counter (kept in its column, authoritative over the JSON copy).
const requestColumns = `r.data, r.version`

// querier is what *sql.DB and *sql.Tx have in common, so reads run inside or outside a write.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Create stores r as a new request with Version 1, its target index rows and the outbox rows out
// (the first card to post, typically), all in one transaction: either the request exists and its
// messages are queued, or neither. An outbox row with an empty RequestID belongs to r.
//
// Returns ErrExists when a request with r.ID, or with r's non-empty SourceKey, is already stored.
func (s *Store) Create(ctx context.Context, r approval.Request, out ...Outbox) (err error) {
	ctx, end := s.op(ctx, "create", true)
	defer end(&err)
	r, data, err := newRow(r)
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error { return s.createTx(ctx, tx, r, data, out) })
}

// CreateExclusive is Create that also refuses, in the same transaction and under a lock every
// creating replica takes, a request naming a user another open request (pending, approved or
// executing) already names: *OpenRequestError. Requests people make go through it, so two
// made at the same moment on two replicas cannot both be created.
func (s *Store) CreateExclusive(ctx context.Context, r approval.Request, out ...Outbox) (err error) {
	ctx, end := s.op(ctx, "create", true)
	defer end(&err)
	r, data, err := newRow(r)
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := s.noOtherOpenRequest(ctx, tx, r); err != nil {
			return err
		}
		return s.createTx(ctx, tx, r, data, out)
	})
}

// newRow is r as a new request is stored (version 1), checked and encoded.
func newRow(r approval.Request) (approval.Request, []byte, error) {
	r = r.Clone()
	r.Version = 1
	if err := validate(r); err != nil {
		return r, nil, err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return r, nil, fmt.Errorf("store: encode request %s: %w", r.ID, err)
	}
	return r, data, nil
}

// redelivered reports ErrExists when a request with r's source key exists: the same command
// delivered again, which is to be ignored, not refused as a second request.
func (s *Store) redelivered(ctx context.Context, tx *sql.Tx, r approval.Request) error {
	if r.SourceKey == "" {
		return nil
	}
	var id string
	err := tx.QueryRowContext(ctx, s.rebind(`SELECT id FROM requests WHERE source_key = ?`), r.SourceKey).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("store: check source key of %s: %w", r.ID, err)
	}
	return fmt.Errorf("%w: source key %q (request %s)", ErrExists, r.SourceKey, id)
}

// createLockKey serialises request creation across replicas on PostgreSQL; SQLite's BEGIN
// IMMEDIATE already serialises every writer.
const createLockKey = "metabase-bot/store/create"

// OpenRequestError refuses a new request naming a user another request is still open for: two
// requests validated at the same moment on two replicas (or two handlers) each saw no other.
type OpenRequestError struct {
	User      approval.UserKey
	RequestID string
}

func (e *OpenRequestError) Error() string {
	return fmt.Sprintf("store: user %s already has the open request %s", e.User, e.RequestID)
}

// noOtherOpenRequest checks, under a lock every creating replica takes, that no open request
// (pending, approved, executing, or a scheduled return r does not supersede) names one of r's
// targets. The core checks the same before it
// creates; this closes the moment between that check and the insert.
func (s *Store) noOtherOpenRequest(ctx context.Context, tx *sql.Tx, r approval.Request) error {
	if err := s.lockCreate(ctx, tx); err != nil {
		return err
	}
	if err := s.redelivered(ctx, tx, r); err != nil {
		return err
	}
	return s.openRequestFor(ctx, tx, r, targetIDs(r))
}

// lockCreate takes, until tx ends, the lock under which requests become open for their users:
// created (CreateExclusive) or re-opened (a retry, see updateTx). Whoever holds it sees every
// request opened before it, so two of them for one user can never both proceed. It is taken
// before the request's own row is written, and so before the audit head that write may lock.
func (s *Store) lockCreate(ctx context.Context, tx *sql.Tx) error {
	if s.backend != backendPostgres {
		return nil // SQLite's BEGIN IMMEDIATE already holds the only write lock
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1 || coalesce(current_schema(), '')))`, createLockKey); err != nil {
		return fmt.Errorf("store: lock for create: %w", err)
	}
	return nil
}

// reopened returns the users a write re-opens a finished request for (a retry of a failed or
// partial one): its targets still to be acted on, whose id is known. None for any other write.
func reopened(cur, next approval.Request) []approval.UserKey {
	if cur.State.Open() || !next.State.Open() {
		return nil
	}
	var keys []approval.UserKey
	for _, i := range next.PendingTargets() {
		if k := next.Targets[i].Key(); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// openRequestFor refuses, with *OpenRequestError, when a request other than r that is open
// (pending, approved, executing, or a scheduled return r does not supersede) names one of users.
func (s *Store) openRequestFor(ctx context.Context, tx *sql.Tx, r approval.Request, users []approval.UserKey) error {
	for _, k := range users {
		if k.ID == 0 {
			continue // not known yet (its instance did not answer); checked when it is found
		}
		rows, err := tx.QueryContext(ctx, s.rebind(`SELECT r.id FROM request_targets t JOIN requests r ON r.id = t.request_id
			WHERE t.instance = ? AND t.metabase_user_id = ? AND r.state IN (?, ?, ?, ?) AND r.id <> ?`),
			k.Instance, k.ID, string(approval.Pending), string(approval.Approved), string(approval.Executing), string(approval.Scheduled), r.ID)
		if err != nil {
			return fmt.Errorf("store: check open requests of %s: %w", k, err)
		}
		others, err := scanStrings(rows)
		if err != nil {
			return fmt.Errorf("store: check open requests of %s: %w", k, err)
		}
		for _, other := range others {
			// A scheduled return the request already knows it replaces is no conflict; one that
			// appeared since it was validated is, so a new request sees and supersedes it.
			if slices.ContainsFunc(r.Supersedes, func(x approval.Superseded) bool { return x.ID == other }) {
				continue
			}
			return &OpenRequestError{User: k, RequestID: other}
		}
	}
	return nil
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// createTx inserts r (already validated and encoded as data) with its targets and outbox rows.
func (s *Store) createTx(ctx context.Context, tx *sql.Tx, r approval.Request, data []byte, out []Outbox) error {
	if err := s.insertRequest(ctx, tx, r, data); err != nil {
		return err
	}
	return s.insertOutbox(ctx, tx, r.ID, out)
}

// insertRequest inserts r (already validated and encoded as data) with its targets.
func (s *Store) insertRequest(ctx context.Context, tx *sql.Tx, r approval.Request, data []byte) error {
	_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO requests
		(id, source_key, state, action, requester, data, version, next_due_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, nullString(r.SourceKey), string(r.State), string(r.Action), r.Requester, string(data),
		r.Version, nextDue(r), millis(r.CreatedAt), millis(s.now()))
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: id %q or source key %q", ErrExists, r.ID, r.SourceKey)
	}
	if err != nil {
		return fmt.Errorf("store: create request %s: %w", r.ID, err)
	}
	return s.insertTargets(ctx, tx, r)
}

// Get returns the stored request. Returns ErrNotFound when there is none with that id.
func (s *Store) Get(ctx context.Context, id string) (_ approval.Request, err error) {
	ctx, end := s.op(ctx, "get", true)
	defer end(&err)
	return s.get(ctx, s.db, id)
}

func (s *Store) get(ctx context.Context, q querier, id string) (approval.Request, error) {
	row := q.QueryRowContext(ctx, s.rebind(`SELECT `+requestColumns+` FROM requests r WHERE r.id = ?`), id)
	r, err := scanRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return approval.Request{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return approval.Request{}, fmt.Errorf("store: get request %s: %w", id, err)
	}
	return r, nil
}

// Update changes a request by compare-and-set, the only way a request changes after Create.
//
// It reads the request, calls fn on a copy, and writes the copy back (with the outbox rows fn
// returned, in the same transaction) only if nobody else wrote the request in between; otherwise
// it re-reads and calls fn again, up to maxAttempts times, then returns ErrConflict. fn may
// therefore run several times and must be pure: apply approval transitions, decide which
// messages to queue, and do nothing else. Only the returned request (the one that was stored)
// tells the caller what happened; a side effect belongs in the returned outbox rows.
//
// When fn returns an error nothing is written and that error is returned as is, so errors.Is
// works on the approval package's errors. Returns ErrNotFound when the request does not exist.
func (s *Store) Update(ctx context.Context, id string, fn func(r *approval.Request) ([]Outbox, error)) (_ approval.Request, err error) {
	ctx, end := s.op(ctx, "update", true)
	defer end(&err)
	var stored approval.Request
	err = s.casLoop(ctx, func(tx *sql.Tx) error {
		var (
			out []Outbox
			err error
		)
		if stored, out, err = s.updateTx(ctx, tx, id, fn); err != nil {
			return err
		}
		return s.insertOutbox(ctx, tx, id, out)
	})
	if err != nil {
		return approval.Request{}, err
	}
	return stored, nil
}

// change is a compare-and-set decided (fn applied to a copy of the stored request) and not yet
// written.
type change struct {
	cur, next approval.Request
	out       []Outbox
}

// updateTx is one compare-and-set attempt inside tx: decide, then write. It returns the outbox
// rows fn asked for without queueing them: the caller queues them once every request row of
// the transaction is locked, since queueing appends to the audit chain, whose head comes after
// the requests in the lock order (see the package doc). It returns errRetry when the request
// changed since it was read.
func (s *Store) updateTx(ctx context.Context, tx *sql.Tx, id string, fn func(r *approval.Request) ([]Outbox, error)) (approval.Request, []Outbox, error) {
	c, err := s.decide(ctx, tx, id, fn)
	if err != nil {
		return approval.Request{}, nil, err
	}
	if err := s.write(ctx, tx, c); err != nil {
		return approval.Request{}, nil, err
	}
	return c.next, c.out, nil
}

// decide reads request id and applies fn to a copy, without writing.
func (s *Store) decide(ctx context.Context, tx *sql.Tx, id string, fn func(r *approval.Request) ([]Outbox, error)) (change, error) {
	cur, err := s.get(ctx, tx, id)
	if err != nil {
		return change{}, err
	}
	next := cur.Clone()
	out, err := fn(&next)
	if err != nil {
		return change{}, err
	}
	if next.ID != cur.ID {
		return change{}, fmt.Errorf("store: update request %s: the update changed its id to %q", id, next.ID)
	}
	next.Version = cur.Version + 1
	if err := validate(next); err != nil {
		return change{}, err
	}
	if users := reopened(cur, next); len(users) > 0 {
		// A retry opens the request again for its users, as a new request would: under the
		// same lock and with the same check, so it and a new request for one of them can never
		// both proceed (each validated without seeing the other). The lock is advisory, taken
		// before any request row is locked, as the lock order requires (see the package doc).
		if err := s.lockCreate(ctx, tx); err != nil {
			return change{}, err
		}
		if err := s.openRequestFor(ctx, tx, next, users); err != nil {
			return change{}, err
		}
	}
	return change{cur: cur, next: next, out: out}, nil
}

// write stores c.next if the request is still at the version c was decided on, and returns
// errRetry otherwise.
func (s *Store) write(ctx context.Context, tx *sql.Tx, c change) error {
	id, cur, next := c.cur.ID, c.cur, c.next
	data, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("store: encode request %s: %w", id, err)
	}
	res, err := tx.ExecContext(ctx, s.rebind(`UPDATE requests
		SET data = ?, state = ?, action = ?, requester = ?, source_key = ?, next_due_at = ?, updated_at = ?,
		    version = version + 1
		WHERE id = ? AND version = ?`),
		string(data), string(next.State), string(next.Action), next.Requester, nullString(next.SourceKey),
		nextDue(next), millis(s.now()), id, cur.Version)
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: source key %q", ErrExists, next.SourceKey)
	}
	if err != nil {
		return fmt.Errorf("store: update request %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: update request %s: %w", id, err)
	}
	if n == 0 {
		return errRetry
	}
	if !slices.Equal(targetIDs(cur), targetIDs(next)) {
		if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM request_targets WHERE request_id = ?`), id); err != nil {
			return fmt.Errorf("store: update targets of %s: %w", id, err)
		}
		if err := s.insertTargets(ctx, tx, next); err != nil {
			return err
		}
	}
	return nil
}

// lockRequests locks the rows of the requests ids (those that exist) for the rest of tx, in id
// order, before a transaction writes several requests: two transactions that write overlapping
// sets then wait for each other in one direction only (see the lock order in the package doc).
// The lock is the one an UPDATE takes (NO KEY UPDATE), so it waits for nothing more than the
// writes would. SQLite's BEGIN IMMEDIATE already holds the only write lock.
func (s *Store) lockRequests(ctx context.Context, tx *sql.Tx, ids []string) error {
	if s.backend != backendPostgres || len(ids) < 2 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT id FROM requests WHERE id IN (`+placeholders(len(ids))+`) ORDER BY id FOR NO KEY UPDATE`), args...)
	if err != nil {
		return fmt.Errorf("store: lock requests %s: %w", strings.Join(ids, ", "), err)
	}
	if _, err := scanStrings(rows); err != nil {
		return fmt.Errorf("store: lock requests %s: %w", strings.Join(ids, ", "), err)
	}
	return nil
}

// Due returns up to limit requests whose next deadline (approval.Request.NextDue: expiry,
// reminder, scheduled start, lease end) is at or before now, the most overdue first, so every
// replica finds timer work with one indexed query. A limit of zero or less means no limit.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) (_ []approval.Request, err error) {
	ctx, end := s.op(ctx, "due", true)
	defer end(&err)
	if limit <= 0 {
		limit = math.MaxInt32
	}
	return s.queryRequests(ctx, "due requests", `SELECT `+requestColumns+` FROM requests r
		WHERE r.next_due_at IS NOT NULL AND r.next_due_at <= ?
		ORDER BY r.next_due_at, r.id LIMIT ?`, millis(now), limit)
}

// ByTarget returns every request naming the Metabase user (an instance and an id in it) in its
// Targets, newest first: the bot's history of a user, and the check for an open request on the
// same person. An empty instance is approval.DefaultInstance.
func (s *Store) ByTarget(ctx context.Context, user approval.UserKey) (_ []approval.Request, err error) {
	ctx, end := s.op(ctx, "by_target", true)
	defer end(&err)
	if user.Instance == "" {
		user.Instance = approval.DefaultInstance
	}
	return s.queryRequests(ctx, "requests by target", `SELECT `+requestColumns+` FROM requests r
		JOIN request_targets t ON t.request_id = r.id
		WHERE t.instance = ? AND t.metabase_user_id = ?
		ORDER BY r.created_at DESC, r.id DESC`, user.Instance, user.ID)
}

// List returns the requests in any of states, oldest first; every request when states is empty.
func (s *Store) List(ctx context.Context, states ...approval.State) (_ []approval.Request, err error) {
	ctx, end := s.op(ctx, "list", true)
	defer end(&err)
	query := `SELECT ` + requestColumns + ` FROM requests r`
	args := make([]any, len(states))
	if len(states) > 0 {
		query += ` WHERE r.state IN (?` + strings.Repeat(`, ?`, len(states)-1) + `)`
		for i, st := range states {
			args[i] = string(st)
		}
	}
	return s.queryRequests(ctx, "list requests", query+` ORDER BY r.created_at, r.id`, args...)
}

// CountByState returns how many requests are in each state (states with none are absent), for a
// metrics gauge.
func (s *Store) CountByState(ctx context.Context) (_ map[approval.State]int, err error) {
	ctx, end := s.op(ctx, "count_by_state", true)
	defer end(&err)
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM requests GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("store: count requests: %w", err)
	}
	defer rows.Close()
	counts := map[approval.State]int{}
	for rows.Next() {
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: count requests: %w", err)
		}
		counts[approval.State(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count requests: %w", err)
	}
	return counts, nil
}

func (s *Store) queryRequests(ctx context.Context, what, query string, args ...any) ([]approval.Request, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var rs []approval.Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return rs, nil
}

// scanRequest decodes requestColumns.
func scanRequest(row interface{ Scan(...any) error }) (approval.Request, error) {
	var (
		data    string
		version int64
		r       approval.Request
	)
	if err := row.Scan(&data, &version); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return r, fmt.Errorf("decode stored request: %w", err)
	}
	r.Version = version
	return r, nil
}

// insertTargets indexes r's Metabase users for ByTarget.
func (s *Store) insertTargets(ctx context.Context, tx *sql.Tx, r approval.Request) error {
	for _, k := range targetIDs(r) {
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO request_targets (request_id, instance, metabase_user_id) VALUES (?, ?, ?)`),
			r.ID, k.Instance, k.ID); err != nil {
			return fmt.Errorf("store: index target %s of %s: %w", k, r.ID, err)
		}
	}
	return nil
}

// targetIDs returns r's distinct target users, sorted.
func targetIDs(r approval.Request) []approval.UserKey {
	ids := make([]approval.UserKey, len(r.Targets))
	for i, t := range r.Targets {
		ids[i] = t.Key()
	}
	slices.SortFunc(ids, func(a, b approval.UserKey) int {
		if c := strings.Compare(a.Instance, b.Instance); c != 0 {
			return c
		}
		return a.ID - b.ID
	})
	return slices.Compact(ids)
}

// validate refuses requests the rest of the system could not interpret.
func validate(r approval.Request) error {
	if r.ID == "" {
		return errors.New("store: request has no id")
	}
	if !r.State.Valid() {
		return fmt.Errorf("store: request %s has invalid state %q", r.ID, r.State)
	}
	return nil
}

// nextDue is the next_due_at column: r.NextDue in unix milliseconds, NULL when nothing is due.
func nextDue(r approval.Request) sql.NullInt64 {
	t, ok := r.NextDue()
	if !ok {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(t), Valid: true}
}

// nullString stores "" as NULL, so requests without a source key do not collide on its unique
// index.
func nullString(v string) sql.NullString {
	return sql.NullString{String: v, Valid: v != ""}
}
