package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// WatchRow is what the reactivation watch recorded about one Metabase user the bot disabled
// and later found active. The store keeps Data opaque (the core puts JSON in it) and guards
// the row by compare-and-set on Version, so one replica records each finding.
type WatchRow struct {
	Instance string
	UserID   int
	// Basis names the disable the row is about; a row about an older disable is stale.
	Basis string
	// State is the core's word for where the finding is (stored, never renamed by the store).
	State string
	Data  []byte
	// Version is the compare-and-set counter: zero for a row not stored yet.
	Version int64
}

// ClaimWatch decides which replica checks instance in this period: it returns true when no
// replica claimed it in the every before now, recording the claim for owner, and false
// otherwise. The claim is one compare-and-set UPDATE (the row is created on first use), so
// however many replicas call it together one wins per period; a period whose winner died is
// claimed again as soon as it has passed, so a missed check is made up at once.
func (s *Store) ClaimWatch(ctx context.Context, instance, owner string, now time.Time, every time.Duration) (bool, error) {
	if every <= 0 {
		return false, fmt.Errorf("store: claim watch: period %s must be positive", every)
	}
	claimed := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO watch_claim (instance, claimed_at, claimed_by) VALUES (?, ?, ?)
			ON CONFLICT (instance) DO NOTHING`), instance, millis(now), owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			claimed = n == 1
			return err
		}
		res, err = tx.ExecContext(ctx, s.rebind(`UPDATE watch_claim SET claimed_at = ?, claimed_by = ?
			WHERE instance = ? AND claimed_at <= ?`), millis(now), owner, instance, millis(now.Add(-every)))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: claim watch of %s: %w", instance, err)
	}
	return claimed, nil
}

// WatchChecked records that a check of instance completed at at, for /metabase status.
func (s *Store) WatchChecked(ctx context.Context, instance string, at time.Time) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.rebind(`UPDATE watch_claim SET checked_at = ? WHERE instance = ? AND checked_at < ?`),
			millis(at), instance, millis(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record the watch check of %s: %w", instance, err)
	}
	return nil
}

// WatchCheckedAt returns when the last check of instance completed, zero for never.
func (s *Store) WatchCheckedAt(ctx context.Context, instance string) (time.Time, error) {
	var at int64
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT checked_at FROM watch_claim WHERE instance = ?`), instance).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && at == 0) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: read the watch check of %s: %w", instance, err)
	}
	return fromMillis(at), nil
}

// WatchRows returns every row of instance.
func (s *Store) WatchRows(ctx context.Context, instance string) ([]WatchRow, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT instance, metabase_user_id, basis, state, data, version
		FROM watch_users WHERE instance = ?`), instance)
	if err != nil {
		return nil, fmt.Errorf("store: watch rows of %s: %w", instance, err)
	}
	defer rows.Close()
	var out []WatchRow
	for rows.Next() {
		w, err := scanWatchRow(rows)
		if err != nil {
			return nil, fmt.Errorf("store: watch rows of %s: %w", instance, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: watch rows of %s: %w", instance, err)
	}
	return out, nil
}

// WatchRow returns the row of user, or ok false when there is none.
func (s *Store) WatchRow(ctx context.Context, user approval.UserKey) (WatchRow, bool, error) {
	if user.Instance == "" {
		user.Instance = approval.DefaultInstance
	}
	row := s.db.QueryRowContext(ctx, s.rebind(`SELECT instance, metabase_user_id, basis, state, data, version
		FROM watch_users WHERE instance = ? AND metabase_user_id = ?`), user.Instance, user.ID)
	w, err := scanWatchRow(row)
	if errors.Is(err, sql.ErrNoRows) {
		return WatchRow{}, false, nil
	}
	if err != nil {
		return WatchRow{}, false, fmt.Errorf("store: watch row of %s: %w", user, err)
	}
	return w, true, nil
}

func scanWatchRow(row interface{ Scan(...any) error }) (WatchRow, error) {
	var (
		w    WatchRow
		data string
	)
	if err := row.Scan(&w.Instance, &w.UserID, &w.Basis, &w.State, &data, &w.Version); err != nil {
		return WatchRow{}, err
	}
	w.Data = []byte(data)
	return w, nil
}

// PutWatchRow stores w if the stored row is still at w.Version (zero: there is none yet),
// together with the outbox rows out (and their audit entries) in the same transaction, and
// reports whether it won. A loser writes nothing: another replica recorded the finding first.
func (s *Store) PutWatchRow(ctx context.Context, w WatchRow, out ...Outbox) (bool, error) {
	if w.Instance == "" {
		w.Instance = approval.DefaultInstance
	}
	won := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if w.Version == 0 {
			res, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO watch_users
				(instance, metabase_user_id, basis, state, data, version, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?)
				ON CONFLICT (instance, metabase_user_id) DO NOTHING`),
				w.Instance, w.UserID, w.Basis, w.State, string(w.Data), millis(s.now()))
		} else {
			res, err = tx.ExecContext(ctx, s.rebind(`UPDATE watch_users SET basis = ?, state = ?, data = ?, version = version + 1,
				updated_at = ? WHERE instance = ? AND metabase_user_id = ? AND version = ?`),
				w.Basis, w.State, string(w.Data), millis(s.now()), w.Instance, w.UserID, w.Version)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return errRetry
		}
		won = true
		return s.insertOutbox(ctx, tx, "", out)
	})
	if errors.Is(err, errRetry) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: record the watch of %s:%d: %w", w.Instance, w.UserID, err)
	}
	return won, nil
}

// WatchCandidates returns the requests the watch derives who is expected disabled from: every
// disable that ran (or is running), and every enable that was approved (scheduled returns
// included), oldest first; and the pending ones, whose cards say when a target was deactivated
// by someone else. Denied, expired and cancelled requests never changed anyone.
func (s *Store) WatchCandidates(ctx context.Context) ([]approval.Request, error) {
	return s.queryRequests(ctx, "watch candidates", `SELECT `+requestColumns+` FROM requests r
		WHERE r.state IN (?, ?, ?, ?, ?, ?, ?) ORDER BY r.created_at, r.id`,
		string(approval.Pending), string(approval.Approved), string(approval.Scheduled), string(approval.Executing),
		string(approval.Succeeded), string(approval.Partial), string(approval.Failed))
}
