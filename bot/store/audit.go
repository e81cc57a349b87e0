package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// GenesisHash is the prev_hash of entry 1: 64 zeros, so every entry, the first included, is
// hashed the same way (docs/audit.md).
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// AuditEntry is one link of the tamper-evident audit log. The store only ever inserts entries:
// it has no API that changes or deletes one.
type AuditEntry struct {
	// Seq numbers the entries 1, 2, 3, ... with no gaps.
	Seq int64
	// At is when the entry was appended, to the millisecond, in UTC. It never goes backwards
	// along the chain: an append on a replica whose clock lags takes its predecessor's time.
	At time.Time
	// Event is the audited event as canonical JSON (CanonicalJSON).
	Event json.RawMessage
	// PrevHash is the previous entry's Hash (GenesisHash for entry 1).
	PrevHash string
	// Hash is AuditHash(PrevHash, Seq, At, Event): 64 lowercase hex digits.
	Hash string
}

// AuditHead is the newest entry of the chain: what a checkpoint message publishes. Seq 0 with
// GenesisHash is the empty chain.
type AuditHead struct {
	Seq  int64
	Hash string
}

// String formats the head as SEQ:HASH, the form `metabase-bot audit verify --checkpoint`
// accepts.
func (h AuditHead) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// AuditHash is the hash of an entry: the lowercase hex SHA-256 of
//
//	prevHash "\n" seq "\n" at "\n" event
//
// where seq and at (unix milliseconds) are in plain decimal and event is the canonical JSON.
// Canonical JSON has no raw newline, and the other fields have none either, so the fields cannot
// run into each other. Anyone can recompute it: printf '%s\n%d\n%d\n%s' ... | sha256sum.
func AuditHash(prevHash string, seq int64, at time.Time, event []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(nil, seq, 10))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(nil, millis(at), 10))
	h.Write([]byte{'\n'})
	h.Write(event)
	return hex.EncodeToString(h.Sum(nil))
}

// AppendAudit appends event (canonical JSON, see CanonicalJSON) to the chain in a transaction of
// its own and returns the new entry. Use it for events that change nothing else in the store;
// an event caused by a request change belongs on the Outbox of that change (Outbox.Audit), so
// the change and its entry commit together.
func (s *Store) AppendAudit(ctx context.Context, event json.RawMessage) (_ AuditEntry, err error) {
	ctx, end := s.op(ctx, "append_audit", true)
	defer end(&err)
	if err := checkCanonical(event); err != nil {
		return AuditEntry{}, err
	}
	var e AuditEntry
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = s.appendAudit(ctx, tx, event)
		return err
	})
	return e, err
}

// appendAudit adds event after the head inside tx. The head row is locked until tx ends (FOR
// UPDATE on Postgres; SQLite's BEGIN IMMEDIATE already holds the only write lock), so appends
// from every replica queue up: each reads the head its predecessor committed, takes the next
// seq, and a rollback releases the seq unused.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, event []byte) (AuditEntry, error) {
	lock := ""
	if s.backend == backendPostgres {
		lock = " FOR UPDATE"
	}
	var (
		head   AuditHead
		headAt int64
	)
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash, at FROM audit_head WHERE id = 1`+lock).
		Scan(&head.Seq, &head.Hash, &headAt); err != nil {
		return AuditEntry{}, fmt.Errorf("store: read audit head: %w", err)
	}
	e := AuditEntry{
		Seq:      head.Seq + 1,
		At:       fromMillis(max(millis(s.now()), headAt)),
		Event:    event,
		PrevHash: head.Hash,
	}
	e.Hash = AuditHash(e.PrevHash, e.Seq, e.At, e.Event)
	if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO audit_log (seq, at, event, prev_hash, hash) VALUES (?, ?, ?, ?, ?)`),
		e.Seq, millis(e.At), string(e.Event), e.PrevHash, e.Hash); err != nil {
		return AuditEntry{}, fmt.Errorf("store: append audit entry %d: %w", e.Seq, err)
	}
	res, err := tx.ExecContext(ctx, s.rebind(`UPDATE audit_head SET seq = ?, hash = ?, at = ? WHERE id = 1 AND seq = ?`),
		e.Seq, e.Hash, millis(e.At), head.Seq)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("store: move audit head to %d: %w", e.Seq, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		// Impossible while the row is locked; refuse rather than fork the chain.
		return AuditEntry{}, fmt.Errorf("store: move audit head to %d: the head moved under its lock (%d rows, %v)", e.Seq, n, err)
	}
	return e, nil
}

// AuditHead returns the newest entry's seq and hash (seq 0 and GenesisHash for an empty chain),
// for the checkpoint message posted at shutdown.
func (s *Store) AuditHead(ctx context.Context) (_ AuditHead, err error) {
	ctx, end := s.op(ctx, "audit_head", true)
	defer end(&err)
	var h AuditHead
	if err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash); err != nil {
		return AuditHead{}, fmt.Errorf("store: read audit head: %w", err)
	}
	return h, nil
}

// ClaimCheckpoint decides which replica posts the periodic checkpoint: it returns the head and
// true when no claim was made in the every before now, recording now as the last claim, and
// false otherwise. The claim is one compare-and-set UPDATE, so however many replicas call it
// together, one wins per period. The first call on a new database wins.
//
// A winner that then fails to post loses that period's checkpoint; the next one follows every
// later, which is the "at most once" half of the promise.
func (s *Store) ClaimCheckpoint(ctx context.Context, now time.Time, every time.Duration) (_ AuditHead, _ bool, err error) {
	ctx, end := s.op(ctx, "claim_checkpoint", true)
	defer end(&err)
	if every <= 0 {
		return AuditHead{}, false, fmt.Errorf("store: claim checkpoint: period %s must be positive", every)
	}
	var (
		head    AuditHead
		claimed bool
	)
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind(`UPDATE audit_checkpoint SET claimed_at = ? WHERE id = 1 AND claimed_at <= ?`),
			millis(now), millis(now.Add(-every)))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if claimed = n == 1; !claimed {
			return nil
		}
		return tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.Seq, &head.Hash)
	})
	if err != nil {
		return AuditHead{}, false, fmt.Errorf("store: claim checkpoint: %w", err)
	}
	return head, claimed, nil
}

// ExportAudit calls fn with the entries appended in [since, until), in seq order, streaming: one
// entry is in memory at a time, however long the chain. A zero until means no upper bound. fn
// runs while the query is open, so it must not call the store; an error from fn stops the export
// and is returned as is.
//
// Since appends never move at backwards, the range is the seqs from the first entry at or after
// since to the last one before until, and every entry between them is exported: an entry whose
// time was edited out of the range still shows up, in place, for verify to flag.
func (s *Store) ExportAudit(ctx context.Context, since, until time.Time, fn func(AuditEntry) error) (err error) {
	ctx, end := s.op(ctx, "export_audit", false)
	defer end(&err)
	if !until.IsZero() && !until.After(since) {
		return fmt.Errorf("store: export audit: until %s is not after since %s",
			until.UTC().Format(time.RFC3339Nano), since.UTC().Format(time.RFC3339Nano))
	}
	var first, last int64
	err = s.db.QueryRowContext(ctx, s.rebind(`SELECT seq FROM audit_log WHERE at >= ? ORDER BY at, seq LIMIT 1`),
		millis(since)).Scan(&first)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: export audit: %w", err)
	}
	if until.IsZero() {
		err = s.db.QueryRowContext(ctx, `SELECT MAX(seq) FROM audit_log`).Scan(&last)
	} else {
		err = s.db.QueryRowContext(ctx, s.rebind(`SELECT seq FROM audit_log WHERE at < ? ORDER BY at DESC, seq DESC LIMIT 1`),
			millis(until)).Scan(&last)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: export audit: %w", err)
	}
	// A primary-key range scan: rows arrive in seq order without a sort.
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT seq, at, event, prev_hash, hash FROM audit_log
		WHERE seq >= ? AND seq <= ? ORDER BY seq`), first, last)
	if err != nil {
		return fmt.Errorf("store: export audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAuditEntry(rows)
		if err != nil {
			return fmt.Errorf("store: export audit: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: export audit: %w", err)
	}
	return nil
}

// scanAuditEntry reads the columns seq, at, event, prev_hash, hash.
func scanAuditEntry(row interface{ Scan(...any) error }) (AuditEntry, error) {
	var (
		e     AuditEntry
		at    int64
		event string
	)
	if err := row.Scan(&e.Seq, &at, &event, &e.PrevHash, &e.Hash); err != nil {
		return AuditEntry{}, err
	}
	e.At = fromMillis(at)
	e.Event = json.RawMessage(event)
	return e, nil
}
