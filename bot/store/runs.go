package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Delivery in runs. ClaimOutbox hands out one row per request and CompleteOutbox records one row,
// so every message costs two commits of its own. The functions here cut that to the durable
// writes the guarantees need:
//
//   - a claim takes a request's run: its undelivered rows from the earliest, in ID order, up to and
//     including the first row whose kind is not a rewrite (see Claim.Rewrites);
//   - CompleteAndClaim records a whole round of deliveries and claims the next runs in one
//     transaction;
//   - UpdateAndClaim claims the run a write queued in the write itself, when nothing of that
//     request is still waiting ahead of it, so the writer's process sends it without a claim.
//
// A run holds at most one row whose repetition a person could see, and it is the run's last, so
// a crash after sending a run and before recording it repeats at most that one visible message per
// request, as a crash between one row's send and its completion always could. The rows before it
// are rewrites, which send nothing new when repeated.

// Claim says which outbox rows a claim may take, for whom and for how long.
type Claim struct {
	// Owner names the claiming process; rows are completed or released under the same name.
	Owner string
	// Now is the time of the claim: a row is free when its lease (or its retry time) is not after it.
	Now time.Time
	// Lease is how long the claimed rows stay the owner's before another process may take them.
	Lease time.Duration
	// Limit bounds how many requests' runs one claim takes.
	Limit int
	// Rewrites are the kinds whose repeated delivery sends nothing new (the card re-rendered from
	// the request as it stands, say): a run goes on past them. Any other kind ends its run.
	Rewrites []string
}

func (c Claim) check() error {
	if c.Owner == "" {
		return errors.New("owner must not be empty")
	}
	if c.Limit <= 0 {
		return fmt.Errorf("limit %d must be positive", c.Limit)
	}
	if c.Lease <= 0 {
		return fmt.Errorf("lease %s must be positive", c.Lease)
	}
	return nil
}

// Settle is what a deliverer reports about the rows it held after a round of deliveries.
type Settle struct {
	// Delivered rows were sent (or dropped for good): they are marked delivered, which releases
	// the next rows of their requests.
	Delivered []int64
	// Released rows were claimed but not sent (their run stopped at an earlier row that failed):
	// they go back unclaimed, their claim not counted as an attempt.
	Released []int64
}

func (st Settle) empty() bool { return len(st.Delivered) == 0 && len(st.Released) == 0 }

// CompleteAndClaim records done for done's owner, c.Owner, and claims up to c.Limit runs for it, in
// one transaction: one commit per round of deliveries, however many rows and requests the round
// covered. A delivered row that the owner no longer holds (its lease ran out and another process
// took it, or it was already completed) is left alone and returned in lost; the rest of done is
// recorded all the same. With nothing to record and nothing claimable it writes nothing.
//
// Racing stores never receive the same row while its lease is live, and a request's rows are
// claimed only in ID order behind its delivered ones, as with ClaimOutbox.
func (s *Store) CompleteAndClaim(ctx context.Context, done Settle, c Claim) (claimed []Outbox, lost []int64, err error) {
	ctx, end := s.op(ctx, "complete_and_claim", true)
	defer end(&err)
	if err := c.check(); err != nil {
		return nil, nil, fmt.Errorf("store: complete and claim outbox: %w", err)
	}
	if done.empty() {
		// Idle pollers must not take the write lock (SQLite) or commit an empty transaction just
		// to find nothing; a plain read says whether a claim would find anything.
		var id int64
		err := s.db.QueryRowContext(ctx, s.rebind(claimableHeads("")+` LIMIT 1`), millis(c.Now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("store: claim outbox: %w", err)
		}
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		if lost, err = s.settleTx(ctx, tx, c.Owner, done); err != nil {
			return err
		}
		claimed, err = s.claimRunsTx(ctx, tx, c, "")
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: complete and claim outbox: %w", err)
	}
	return claimed, lost, nil
}

// UpdateAndClaim is Update that, when fn queued outbox rows, also claims for c.Owner the run of
// request id that is free now, in the same transaction: the writer's process can send what it
// has just queued without a claim of its own. Nothing is claimed while an earlier row of the
// request is undelivered (being sent by someone, or waiting for a retry), so order holds; those
// rows are claimed later by CompleteAndClaim. The claimed rows come back with the stored request.
//
// If the writer's process dies before sending them, they are claimable again when c.Lease runs
// out, exactly like rows it had claimed on their own.
//
// fn may also ask for changes to other requests (see Also): they commit in the same transaction,
// and their messages are delivered by later claims.
func (s *Store) UpdateAndClaim(ctx context.Context, id string, c Claim, fn func(r *approval.Request) ([]Outbox, []Also, error)) (_ approval.Request, _ []Outbox, err error) {
	ctx, end := s.op(ctx, "update_and_claim", true)
	defer end(&err)
	if err := c.check(); err != nil {
		return approval.Request{}, nil, fmt.Errorf("store: update %s and claim: %w", id, err)
	}
	c.Limit = 1
	var (
		stored  approval.Request
		claimed []Outbox
	)
	err = s.casLoop(ctx, func(tx *sql.Tx) error {
		claimed = nil
		var (
			n   int
			err error
		)
		if stored, n, err = s.updateLinkedTx(ctx, tx, id, fn); err != nil || n == 0 {
			return err
		}
		claimed, err = s.claimRunsTx(ctx, tx, c, id)
		return err
	})
	if err != nil {
		return approval.Request{}, nil, err
	}
	return stored, claimed, nil
}

// claimableHeads selects the ids of the rows a claim may start a run with: undelivered, free at
// the first parameter, and first among their request's undelivered rows. With requestFilter set,
// only that request's (the second parameter).
func claimableHeads(requestFilter string) string {
	return `SELECT o.id FROM outbox o
		WHERE o.delivered_at IS NULL AND o.claimed_until <= ?` + requestFilter + `
		  AND NOT EXISTS (SELECT 1 FROM outbox p
		                  WHERE p.request_id = o.request_id AND p.delivered_at IS NULL AND p.id < o.id)
		ORDER BY o.id`
}

// settleTx marks done.Delivered delivered and gives done.Released back, for rows owner holds.
// It returns the delivered rows owner no longer held.
func (s *Store) settleTx(ctx context.Context, tx *sql.Tx, owner string, done Settle) ([]int64, error) {
	var lost []int64
	if s.backend == backendPostgres && len(done.Delivered) > 0 {
		// A write queueing messages behind these rows (UpdateAndClaim) must see them delivered, or
		// this transaction must see its messages: under READ COMMITTED each could miss the other
		// and neither claim the new run, which would then wait for a claim of its own. A share lock
		// on the requests waits for such a write in flight to commit (later statements here then
		// see its rows) and makes one that starts now wait for this commit (it then sees these
		// rows delivered). SQLite runs write transactions one at a time, so it needs none.
		if _, err := tx.ExecContext(ctx, s.rebind(`SELECT id FROM requests
			WHERE id IN (SELECT request_id FROM outbox WHERE id IN (`+placeholders(len(done.Delivered))+`))
			ORDER BY id FOR SHARE`), idArgs(done.Delivered)...); err != nil {
			return nil, fmt.Errorf("lock requests of delivered outbox rows: %w", err)
		}
	}
	if len(done.Delivered) > 0 {
		rows, err := tx.QueryContext(ctx, s.rebind(`UPDATE outbox SET delivered_at = ?
			WHERE id IN (`+placeholders(len(done.Delivered))+`) AND claimed_by = ? AND delivered_at IS NULL
			RETURNING id`), append(append([]any{millis(s.now())}, idArgs(done.Delivered)...), owner)...)
		if err != nil {
			return nil, fmt.Errorf("complete outbox rows: %w", err)
		}
		marked, err := scanIDs(rows)
		if err != nil {
			return nil, fmt.Errorf("complete outbox rows: %w", err)
		}
		for _, id := range done.Delivered {
			if !slices.Contains(marked, id) {
				lost = append(lost, id)
			}
		}
	}
	if len(done.Released) > 0 {
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE outbox
			SET claimed_by = '', claimed_until = 0, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
			WHERE id IN (`+placeholders(len(done.Released))+`) AND claimed_by = ? AND delivered_at IS NULL`),
			append(idArgs(done.Released), owner)...); err != nil {
			return nil, fmt.Errorf("release outbox rows: %w", err)
		}
	}
	return lost, nil
}

// runRow is what claimRunsTx reads to cut runs.
type runRow struct {
	id           int64
	requestID    string
	kind         string
	claimedUntil int64
}

// claimRunsTx claims up to c.Limit runs inside tx (only request requestID's when it is not
// empty) and returns their rows in ID order.
func (s *Store) claimRunsTx(ctx context.Context, tx *sql.Tx, c Claim, requestID string) ([]Outbox, error) {
	now := millis(c.Now)
	args := []any{now}
	filter := ""
	if requestID != "" {
		filter = ` AND o.request_id = ?`
		args = append(args, requestID)
	}
	lock := ""
	if s.backend == backendPostgres {
		// Racing claimers skip each other's heads; a request whose head another claimer holds is
		// theirs this time.
		lock = ` FOR UPDATE OF o SKIP LOCKED`
	}
	rows, err := tx.QueryContext(ctx, s.rebind(claimableHeads(filter)+` LIMIT ?`+lock), append(args, c.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	heads, err := scanIDs(rows)
	if err != nil || len(heads) == 0 {
		return nil, err
	}

	// The undelivered rows of the heads' requests, to cut each run.
	rows, err = tx.QueryContext(ctx, s.rebind(`SELECT id, request_id, kind, claimed_until FROM outbox
		WHERE delivered_at IS NULL AND request_id IN (SELECT request_id FROM outbox WHERE id IN (`+placeholders(len(heads))+`))
		ORDER BY request_id, id`), idArgs(heads)...)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	var pending []runRow
	for rows.Next() {
		var r runRow
		if err := rows.Scan(&r.id, &r.requestID, &r.kind, &r.claimedUntil); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim outbox: %w", err)
		}
		pending = append(pending, r)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	runs := cutRuns(pending, heads, now, c.Rewrites)

	if s.backend == backendPostgres {
		// The heads are locked; lock the rest of each run too, skipping rows someone else is
		// writing (a past owner completing a row whose lease ran out): a run stops before such a
		// row, so it never jumps over it.
		var rest []int64
		for _, run := range runs {
			rest = append(rest, run[1:]...)
		}
		if len(rest) > 0 {
			rows, err := tx.QueryContext(ctx, s.rebind(`SELECT id FROM outbox
				WHERE id IN (`+placeholders(len(rest))+`) AND delivered_at IS NULL AND claimed_until <= ?
				FOR UPDATE SKIP LOCKED`), append(idArgs(rest), now)...)
			if err != nil {
				return nil, fmt.Errorf("claim outbox: %w", err)
			}
			locked, err := scanIDs(rows)
			if err != nil {
				return nil, fmt.Errorf("claim outbox: %w", err)
			}
			for i, run := range runs {
				for k := 1; k < len(run); k++ {
					if !slices.Contains(locked, run[k]) {
						runs[i] = run[:k]
						break
					}
				}
			}
		}
	}

	var take []int64
	for _, run := range runs {
		take = append(take, run...)
	}
	rows, err = tx.QueryContext(ctx, s.rebind(`UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
		WHERE id IN (`+placeholders(len(take))+`)
		RETURNING id, request_id, kind, payload, created_at, attempts, audit_seq, audit_hash`),
		append([]any{c.Owner, millis(c.Now.Add(c.Lease))}, idArgs(take)...)...)
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	defer rows.Close()
	var claimed []Outbox
	for rows.Next() {
		var (
			o       Outbox
			payload string
			created int64
		)
		if err := rows.Scan(&o.ID, &o.RequestID, &o.Kind, &payload, &created, &o.Attempts, &o.AuditSeq, &o.AuditHash); err != nil {
			return nil, fmt.Errorf("claim outbox: %w", err)
		}
		o.Payload = []byte(payload)
		o.CreatedAt = fromMillis(created)
		claimed = append(claimed, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	// RETURNING does not promise an order.
	slices.SortFunc(claimed, func(a, b Outbox) int { return cmp.Compare(a.ID, b.ID) })
	return claimed, nil
}

// cutRuns returns, for each head, the run it starts: the head, then the rows of its request that
// follow it in ID order while the previous row's kind is a rewrite and the row is free at now.
// pending is sorted by request, then ID. A head that is no longer its request's first undelivered
// row starts no run.
func cutRuns(pending []runRow, heads []int64, now int64, rewrites []string) [][]int64 {
	var runs [][]int64
	for i := 0; i < len(pending); {
		j := i
		for j < len(pending) && pending[j].requestID == pending[i].requestID {
			j++
		}
		req := pending[i:j]
		i = j
		if !slices.Contains(heads, req[0].id) {
			continue
		}
		run := []int64{req[0].id}
		for k := 1; k < len(req); k++ {
			if !slices.Contains(rewrites, req[k-1].kind) || req[k].claimedUntil > now {
				break
			}
			run = append(run, req[k].id)
		}
		runs = append(runs, run)
	}
	return runs
}

// placeholders returns "?, ?, ..." for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// idArgs turns row ids into query arguments.
func idArgs(v []int64) []any {
	out := make([]any, len(v))
	for i, id := range v {
		out[i] = id
	}
	return out
}

// scanIDs reads a single column of ids and closes rows.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
