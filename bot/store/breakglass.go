package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// BreakGlassLimit bounds the users one responder disables by break-glass (issue 27): at most Max
// targets of break-glass requests by Requester created at or after Since.
type BreakGlassLimit struct {
	Requester string
	Since     time.Time
	Max       int
}

// LimitError refuses a break-glass request that would take its responder past the limit; Used is
// how many users they already disabled by break-glass in the window.
type LimitError struct{ Used, Max int }

func (e *LimitError) Error() string {
	return fmt.Sprintf("store: break-glass limit reached (%d of %d users used)", e.Used, e.Max)
}

// CreateBreakGlass is CreateExclusive for a break-glass request that also counts, in the same
// transaction and under the same lock every creating replica takes, the users its responder
// already disabled by break-glass since l.Since: when r's targets would take them past l.Max
// nothing is created and the error is a *LimitError. Counting the stored requests, dry runs
// included, makes the limit hold across replicas and restarts. also (the scheduled returns the
// action cancels) commit with it or not at all.
func (s *Store) CreateBreakGlass(ctx context.Context, r approval.Request, l BreakGlassLimit, also []Also, out ...Outbox) error {
	r, data, err := newRow(r)
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := s.noOtherOpenRequest(ctx, tx, r); err != nil {
			return err
		}
		used, err := s.breakGlassUsed(ctx, tx, l)
		if err != nil {
			return err
		}
		if used+len(r.Targets) > l.Max {
			return &LimitError{Used: used, Max: l.Max}
		}
		// The lock order (see the package doc): the create lock above, then the request rows
		// in id order, then the audit head, which queueing the outbox rows takes.
		var ids []string
		for _, a := range also {
			ids = append(ids, a.id())
		}
		if err := s.lockRequests(ctx, tx, ids); err != nil {
			return err
		}
		if err := s.insertRequest(ctx, tx, r, data); err != nil {
			return err
		}
		queue := []queued{{requestID: r.ID, out: out}}
		for _, a := range also {
			q, err := s.applyAlso(ctx, tx, a)
			if err != nil {
				return err
			}
			queue = append(queue, q)
		}
		for _, q := range queue {
			if err := s.insertOutbox(ctx, tx, q.requestID, q.out); err != nil {
				return err
			}
		}
		return nil
	})
}

// breakGlassUsed counts the targets of l.Requester's break-glass requests since l.Since.
func (s *Store) breakGlassUsed(ctx context.Context, q querier, l BreakGlassLimit) (int, error) {
	rows, err := q.QueryContext(ctx, s.rebind(`SELECT `+requestColumns+` FROM requests r
		WHERE r.requester = ? AND r.action = ? AND r.created_at >= ?`), l.Requester, string(approval.Disable), millis(l.Since))
	if err != nil {
		return 0, fmt.Errorf("store: count break-glass requests: %w", err)
	}
	defer rows.Close()
	used := 0
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return 0, fmt.Errorf("store: count break-glass requests: %w", err)
		}
		if r.IsBreakGlass() {
			used += len(r.Targets)
		}
	}
	return used, rows.Err()
}
