package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// maxLastError caps the error text kept on an outbox row; the full error belongs in the log.
const maxLastError = 2000

// Outbox is a Slack side effect waiting to be delivered: a card to post or update, a thread
// reply, an audit message. It is written in the same transaction as the request change that
// caused it, so the change and its message are never separated by a crash; a deliverer then
// claims it (ClaimOutbox), sends it, and completes it. Delivery is at least once: a deliverer
// that dies after sending but before completing lets the row be sent again after its lease.
type Outbox struct {
	// ID orders the rows: the messages of one request are delivered in ID order.
	ID int64
	// RequestID is the request the message is about; empty on Create and Update means the
	// request being written.
	RequestID string
	// Kind tells the deliverer what to do with Payload (e.g. post the card, reply in thread).
	Kind string
	// Payload is opaque to the store; the bot puts JSON in it.
	Payload []byte
	// CreatedAt is when the row was queued; zero on Create and Update means now.
	CreatedAt time.Time
	// Attempts counts claims, including the current one, so a deliverer can give up on a
	// message Slack keeps refusing.
	Attempts int

	// Audit, when not empty, is an audit event (canonical JSON, see CanonicalJSON) that Create
	// and Update append to the audit log in the same transaction as the row. A row with Audit
	// and no Kind queues no message: it only appends the entry (the audit channel is off).
	Audit json.RawMessage
	// AuditSeq and AuditHash identify the entry Audit became (zero and "" for rows without
	// one), as ClaimOutbox returns them, so the audit-channel message can cite the entry.
	AuditSeq  int64
	AuditHash string
}

// ClaimOutbox hands owner up to limit undelivered rows for lease, in ID order, so that only one
// deliverer sends each message while its lease is live. A row is claimable when its claim is
// free or expired (claimed_until <= now; a retried row waits until its retry time) and no
// earlier row of the same request is still undelivered: the card goes out before its thread
// replies, while other requests' messages keep flowing. Each claim counts one attempt.
//
// Racing stores never receive the same row while its lease is live (Postgres: FOR UPDATE SKIP
// LOCKED; SQLite: a BEGIN IMMEDIATE transaction).
func (s *Store) ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) (_ []Outbox, err error) {
	ctx, end := s.op(ctx, "claim_outbox", true)
	defer end(&err)
	if owner == "" {
		return nil, errors.New("store: claim outbox: owner must not be empty")
	}
	if limit <= 0 {
		return nil, fmt.Errorf("store: claim outbox: limit %d must be positive", limit)
	}
	const claimable = `SELECT o.id FROM outbox o
		WHERE o.delivered_at IS NULL AND o.claimed_until <= ?
		  AND NOT EXISTS (SELECT 1 FROM outbox p
		                  WHERE p.request_id = o.request_id AND p.delivered_at IS NULL AND p.id < o.id)
		ORDER BY o.id LIMIT ?`
	lock := ""
	if s.backend == backendPostgres {
		lock = " FOR UPDATE OF o SKIP LOCKED"
	} else {
		// SQLite has one write lock per file: an idle poller must not take it just to find
		// nothing, or it delays the writers that have work. WAL reads never block.
		var id int64
		err := s.db.QueryRowContext(ctx, claimable, millis(now), 1).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("store: claim outbox: %w", err)
		}
	}
	query := s.rebind(`UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1
		WHERE id IN (` + claimable + lock + `)
		RETURNING id, request_id, kind, payload, created_at, attempts, audit_seq, audit_hash`)
	var claimed []Outbox
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		claimed = claimed[:0]
		rows, err := tx.QueryContext(ctx, query, owner, millis(now.Add(lease)), millis(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				o       Outbox
				payload string
				created int64
			)
			if err := rows.Scan(&o.ID, &o.RequestID, &o.Kind, &payload, &created, &o.Attempts, &o.AuditSeq, &o.AuditHash); err != nil {
				return err
			}
			o.Payload = []byte(payload)
			o.CreatedAt = fromMillis(created)
			claimed = append(claimed, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	// RETURNING does not promise an order.
	slices.SortFunc(claimed, func(a, b Outbox) int { return cmp.Compare(a.ID, b.ID) })
	return claimed, nil
}

// CompleteOutbox marks a claimed row delivered, which releases the next message of its request.
// It succeeds only while owner still holds the claim (even past the lease, as long as nobody
// took it over); otherwise it returns ErrNotClaimed (an ErrConflict): another deliverer owns the
// row now, or it was already completed.
func (s *Store) CompleteOutbox(ctx context.Context, id int64, owner string) (err error) {
	ctx, end := s.op(ctx, "complete_outbox", true)
	defer end(&err)
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		return s.markDelivered(ctx, tx, id, owner)
	})
}

// CompleteOutboxAndUpdate marks a claimed row delivered and applies fn to request requestID by
// compare-and-set (as Update does), in one transaction. It records what the delivery produced
// together with the delivery itself, e.g. the ts of a posted card with the "post card" row, so a
// crash can neither post the card twice nor lose its ts.
//
// fn may run several times and must be pure. When fn fails nothing is written (the row stays
// claimed) and fn's error is returned as is. Returns ErrNotClaimed (an ErrConflict) when owner no
// longer holds the claim, ErrNotFound when the request does not exist.
func (s *Store) CompleteOutboxAndUpdate(ctx context.Context, id int64, owner string, requestID string, fn func(r *approval.Request) error) (_ approval.Request, err error) {
	ctx, end := s.op(ctx, "complete_outbox", true)
	defer end(&err)
	var stored approval.Request
	err = s.casLoop(ctx, func(tx *sql.Tx) error {
		// The request before the outbox row: the store's lock order (see the package doc).
		var err error
		stored, _, err = s.updateTx(ctx, tx, requestID, func(r *approval.Request) ([]Outbox, error) {
			return nil, fn(r)
		})
		if err != nil {
			return err
		}
		return s.markDelivered(ctx, tx, id, owner)
	})
	if err != nil {
		return approval.Request{}, err
	}
	return stored, nil
}

// markDelivered completes row id inside tx if owner holds it.
func (s *Store) markDelivered(ctx context.Context, tx *sql.Tx, id int64, owner string) error {
	if owner == "" {
		return errors.New("store: complete outbox: owner must not be empty")
	}
	res, err := tx.ExecContext(ctx, s.rebind(`UPDATE outbox SET delivered_at = ?
		WHERE id = ? AND claimed_by = ? AND delivered_at IS NULL`), millis(s.now()), id, owner)
	if err != nil {
		return fmt.Errorf("store: complete outbox %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: complete outbox %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("%w (row %d, owner %q)", ErrNotClaimed, id, owner)
	}
	return nil
}

// RetryOutbox gives up owner's claim after a failed delivery and makes the row claimable again
// at at (a backoff chosen by the caller), recording lastErr for operators. Later messages of the
// same request keep waiting, so order survives failures. Returns ErrConflict when owner no
// longer holds the claim.
func (s *Store) RetryOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) (err error) {
	ctx, end := s.op(ctx, "retry_outbox", true)
	defer end(&err)
	return s.retryOutbox(ctx, id, owner, at, lastErr, 0)
}

// DeferOutbox is RetryOutbox for a row that was not really attempted: the chat service asked the
// deliverer to wait (rate limiting), so the claim does not count towards the attempts after which
// a message is given up.
func (s *Store) DeferOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) (err error) {
	ctx, end := s.op(ctx, "retry_outbox", true)
	defer end(&err)
	return s.retryOutbox(ctx, id, owner, at, lastErr, 1)
}

func (s *Store) retryOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string, uncount int) error {
	if owner == "" {
		return errors.New("store: retry outbox: owner must not be empty")
	}
	if len(lastErr) > maxLastError {
		lastErr = lastErr[:maxLastError]
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind(`UPDATE outbox SET claimed_by = '', claimed_until = ?, last_error = ?,
			attempts = CASE WHEN attempts >= ? THEN attempts - ? ELSE attempts END
			WHERE id = ? AND claimed_by = ? AND delivered_at IS NULL`), millis(at), lastErr, uncount, uncount, id, owner)
		if err != nil {
			return fmt.Errorf("store: retry outbox %d: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: retry outbox %d: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("%w (row %d, owner %q)", ErrNotClaimed, id, owner)
		}
		return nil
	})
}

// PendingOutbox counts undelivered rows, claimed or not: a metrics gauge, and how tests wait
// for the outbox to drain.
func (s *Store) PendingOutbox(ctx context.Context) (_ int, err error) {
	ctx, end := s.op(ctx, "pending_outbox", true)
	defer end(&err)
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count pending outbox: %w", err)
	}
	return n, nil
}

// insertOutbox queues out inside tx; rows without a RequestID belong to requestID. A row's
// audit event is appended to the chain first, so the row can name its entry.
func (s *Store) insertOutbox(ctx context.Context, tx *sql.Tx, requestID string, out []Outbox) error {
	for _, o := range out {
		if o.RequestID == "" {
			o.RequestID = requestID
		}
		if o.Kind == "" && (len(o.Audit) == 0 || len(o.Payload) > 0) {
			return fmt.Errorf("store: outbox row for %s has no kind", o.RequestID)
		}
		if len(o.Audit) > 0 {
			if err := checkCanonical(o.Audit); err != nil {
				return fmt.Errorf("%w (the audit event of a %q row for %s)", err, o.Kind, o.RequestID)
			}
			e, err := s.appendAudit(ctx, tx, o.Audit)
			if err != nil {
				return err
			}
			o.AuditSeq, o.AuditHash = e.Seq, e.Hash
		}
		if o.Kind == "" {
			continue
		}
		if o.CreatedAt.IsZero() {
			o.CreatedAt = s.now()
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO outbox (request_id, kind, payload, created_at, audit_seq, audit_hash)
			VALUES (?, ?, ?, ?, ?, ?)`),
			o.RequestID, o.Kind, string(o.Payload), millis(o.CreatedAt), o.AuditSeq, o.AuditHash); err != nil {
			return fmt.Errorf("store: queue %s message for %s: %w", o.Kind, o.RequestID, err)
		}
	}
	return nil
}
