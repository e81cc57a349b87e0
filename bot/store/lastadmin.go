package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// lastAdminLockKey serialises admin reservations across replicas on PostgreSQL; SQLite's
// BEGIN IMMEDIATE already serialises every writer.
const lastAdminLockKey = "metabase-bot/store/last-admin"

// AdminListMark is what the store knew of an instance's admin reservations just before an
// execution listed that instance's admins (MarkAdminList): which reservations were settled then,
// their request no longer executing, so their deactivations had ended before the list was read.
// It orders the list among reservations without any clock: replicas' clocks may disagree by
// minutes. The zero value counts every reservation, the safe side.
type AdminListMark struct {
	instance string
	// settled maps each request whose reservations were settled to its version then.
	settled map[string]int64
}

// MarkAdminList returns the mark an execution takes before it lists the admins of instance, to
// pass to ReserveAdminDisable with that list.
func (s *Store) MarkAdminList(ctx context.Context, instance string) (_ AdminListMark, err error) {
	ctx, end := s.op(ctx, "mark_admin_list", true)
	defer end(&err)
	if instance == "" {
		instance = approval.DefaultInstance
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT DISTINCT r.id, r.version FROM admin_reservations a
		JOIN requests r ON r.id = a.request_id
		WHERE a.instance = ? AND r.state <> ?`), instance, string(approval.Executing))
	if err != nil {
		return AdminListMark{}, fmt.Errorf("store: mark admin list of %s: %w", instance, err)
	}
	defer rows.Close()
	m := AdminListMark{instance: instance, settled: map[string]int64{}}
	for rows.Next() {
		var (
			id      string
			version int64
		)
		if err := rows.Scan(&id, &version); err != nil {
			return AdminListMark{}, fmt.Errorf("store: mark admin list of %s: %w", instance, err)
		}
		m.settled[id] = version
	}
	if err := rows.Err(); err != nil {
		return AdminListMark{}, fmt.Errorf("store: mark admin list of %s: %w", instance, err)
	}
	return m, nil
}

// ReserveAdminDisable decides, under a lock shared by every replica, whether request may
// deactivate admin user of Metabase instance, and if so records that it is about to.
// activeAdmins are the person admins that instance listed as active, read after mark was taken
// (MarkAdminList); reservations in other instances do not count, each Metabase needs its own
// admin. The deactivation is allowed only when at least one of them would remain that no other
// reservation covers. A reservation counts unless mark shows it settled and its request has not
// changed since: one of an executing request (including this request's other targets), or one
// whose request executed, or finished, after the mark, so its DELETE may be missing from the
// list. So two executions racing on the last two admins leave one, whichever replicas they run
// on, however slow their lists and however far apart their clocks.
func (s *Store) ReserveAdminDisable(ctx context.Context, request, instance string, user int, activeAdmins []int, mark AdminListMark) (_ bool, err error) {
	ctx, end := s.op(ctx, "reserve_admin_disable", true)
	defer end(&err)
	if instance == "" {
		instance = approval.DefaultInstance
	}
	if mark.settled != nil && mark.instance != instance {
		return false, fmt.Errorf("store: reserve admin %s:%d for %s: the list was marked for instance %q", instance, user, request, mark.instance)
	}
	allowed := false
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		allowed = false
		if s.backend == backendPostgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1 || coalesce(current_schema(), '')))`, lastAdminLockKey); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, s.rebind(`SELECT a.metabase_user_id, r.id, r.state, r.version FROM admin_reservations a
			JOIN requests r ON r.id = a.request_id
			WHERE a.instance = ? AND NOT (a.request_id = ? AND a.metabase_user_id = ?)`),
			instance, request, user)
		if err != nil {
			return err
		}
		var reserved []int
		for rows.Next() {
			var (
				id      int
				req     string
				state   string
				version int64
			)
			if err := rows.Scan(&id, &req, &state, &version); err != nil {
				rows.Close()
				return err
			}
			if v, ok := mark.settled[req]; ok && v == version && state != string(approval.Executing) {
				continue // settled before the list was read, which therefore shows its DELETE
			}
			reserved = append(reserved, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		remaining := 0
		for _, id := range activeAdmins {
			if id != user && !slices.Contains(reserved, id) {
				remaining++
			}
		}
		if remaining < 1 {
			return nil
		}
		// created_at is for operators reading the table; no decision rests on it.
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO admin_reservations (request_id, instance, metabase_user_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`), request, instance, user, millis(s.now())); err != nil {
			return err
		}
		allowed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: reserve admin %s:%d for %s: %w", instance, user, request, err)
	}
	return allowed, nil
}
