package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// chatUsersLockKey serialises the record of chat accounts across replicas on PostgreSQL, where
// the first event about an account has no row to lock; SQLite's BEGIN IMMEDIATE already
// serialises every writer.
const chatUsersLockKey = "metabase-bot/store/chat-users"

// SeeChatUser records that the chat (Slack) reported user of team as deleted or not, as of
// updated (Slack's user.updated, Unix seconds), and returns the number of the deactivation the
// account is in: 0 while it is active, n > 0 while it is in its n-th recorded deactivation.
//
// Only a change from active (or unknown) to deleted starts a new deactivation: a redelivered
// event, the same event on another replica, or an edit of an account already deleted returns the
// same n. A report older than the last one applied (a late redelivery) changes nothing.
func (s *Store) SeeChatUser(ctx context.Context, team, user string, deleted bool, updated int64) (int, error) {
	var n int
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if s.backend == backendPostgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1 || coalesce(current_schema(), '')))`, chatUsersLockKey); err != nil {
				return fmt.Errorf("store: lock chat users: %w", err)
			}
		}
		var wasDeleted int
		var count int
		var last int64
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT deleted, deactivations, updated FROM chat_users WHERE team = ? AND chat_user = ?`),
			team, user).Scan(&wasDeleted, &count, &last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			n = boolInt(deleted)
			_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO chat_users (team, chat_user, deleted, deactivations, updated) VALUES (?, ?, ?, ?, ?)`),
				team, user, boolInt(deleted), n, updated)
			if err != nil {
				return fmt.Errorf("store: record chat user: %w", err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("store: read chat user: %w", err)
		}
		if updated < last {
			// Stale: the account is as the newer report left it.
			n = count * wasDeleted
			return nil
		}
		if deleted && wasDeleted == 0 {
			count++
		}
		n = count * boolInt(deleted)
		_, err = tx.ExecContext(ctx, s.rebind(`UPDATE chat_users SET deleted = ?, deactivations = ?, updated = ? WHERE team = ? AND chat_user = ?`),
			boolInt(deleted), count, updated, team, user)
		if err != nil {
			return fmt.Errorf("store: record chat user: %w", err)
		}
		return nil
	})
	return n, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
