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

// ReserveAdminDisable decides, under a lock shared by every replica, whether request may
// deactivate admin user, and if so records that it is about to. activeAdmins are the person
// admins Metabase lists as active now. The deactivation is allowed only when at least one of them
// would remain that no executing request (this one aside) has reserved: so two executions racing
// on the last two admins leave one, whichever replicas they run on. A reservation stops counting
// when its request leaves the executing state.
func (s *Store) ReserveAdminDisable(ctx context.Context, request string, user int, activeAdmins []int) (bool, error) {
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
			WHERE r.state = ? AND a.request_id <> ?`), string(approval.Executing), request)
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
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO admin_reservations (request_id, metabase_user_id) VALUES (?, ?)
			ON CONFLICT DO NOTHING`), request, user); err != nil {
			return err
		}
		allowed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: reserve admin %d for %s: %w", user, request, err)
	}
	return allowed, nil
}
