package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// lastAdminLockKey serialises admin reservations across replicas on PostgreSQL; SQLite's
// BEGIN IMMEDIATE already serialises every writer.
const lastAdminLockKey = "metabase-bot/store/last-admin"

// ReserveAdminDisable decides, under a lock shared by every replica, whether request may
// deactivate admin user of Metabase instance, and if so records that it is about to.
// activeAdmins are the person admins that instance listed as active at listedAt; reservations
// in other instances do not count, each Metabase needs its own admin. The deactivation is allowed only when at least
// one of them would remain that no other reservation covers: one of an executing request
// (including this request's other targets), or one made since listedAt, whose DELETE the list
// may not show yet. So two executions racing on the last two admins leave one, whichever
// replicas they run on and however slow their lists.
func (s *Store) ReserveAdminDisable(ctx context.Context, request, instance string, user int, activeAdmins []int, listedAt time.Time) (bool, error) {
	if instance == "" {
		instance = approval.DefaultInstance
	}
	allowed := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		allowed = false
		if s.backend == backendPostgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1 || coalesce(current_schema(), '')))`, lastAdminLockKey); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, s.rebind(`SELECT a.metabase_user_id FROM admin_reservations a
			JOIN requests r ON r.id = a.request_id
			WHERE a.instance = ? AND (r.state = ? OR a.created_at >= ?) AND NOT (a.request_id = ? AND a.metabase_user_id = ?)`),
			instance, string(approval.Executing), millis(listedAt), request, user)
		if err != nil {
			return err
		}
		var reserved []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
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
