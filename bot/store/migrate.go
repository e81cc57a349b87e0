package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// migrationsFS holds one directory per backend of files named NNNN_description.sql. A file is
// applied once, in version order, and recorded in schema_migrations; never edit an applied file,
// add the next version instead.
//
//go:embed migrations
var migrationsFS embed.FS

// migrationLockKey is the Postgres advisory lock taken around migrations, so replicas starting
// together apply them once. It is combined with the schema name, so databases that keep
// separate schemas (tests) do not wait for each other.
const migrationLockKey = "metabase-bot/store/migrate"

// migration is one embedded SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the backend's migration files in version order.
func loadMigrations(backend string) ([]migration, error) {
	dir := path.Join("migrations", backend)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %s: name must start with a positive version number", e.Name())
		}
		body, err := fs.ReadFile(migrationsFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("store: migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies the migrations the database has not seen yet, in one transaction that holds
// the migration lock (BEGIN IMMEDIATE on SQLite, an advisory lock on Postgres): a second process
// starting at the same moment waits, then finds everything applied. Versions recorded in the
// database that this binary does not know (a newer binary ran) are left alone, so an older
// replica keeps running during a rolling deploy of additive migrations.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.backend)
	if err != nil {
		return err
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		if s.backend == backendPostgres {
			if _, err := tx.ExecContext(ctx,
				`SELECT pg_advisory_xact_lock(hashtext($1 || coalesce(current_schema(), '')))`,
				migrationLockKey); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at BIGINT NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`),
				m.version, millis(s.now())); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: migrate %s schema: %w", s.backend, err)
	}
	return nil
}

// appliedVersions returns the versions recorded in schema_migrations.
func appliedVersions(ctx context.Context, q querier) (map[int]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// OpenExisting connects to a database the bot has already set up, as Open does, but applies no
// migration: it is for tools that only read, such as `metabase-bot audit verify`, whose database
// account may hold no more than SELECT. It fails, naming the fix, when the schema lacks a
// migration this binary knows (the upgraded bot has not started on it yet) or is not the bot's.
func OpenExisting(ctx context.Context, url string) (*Store, error) {
	s, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := s.checkMigrated(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// checkMigrated returns an error unless every embedded migration is recorded as applied.
func (s *Store) checkMigrated(ctx context.Context) error {
	ms, err := loadMigrations(s.backend)
	if err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, s.db)
	if err != nil {
		return fmt.Errorf("store: the database has no metabase-bot schema the bot could read (is DATABASE_URL the bot's database?): %w", err)
	}
	for _, m := range ms {
		if !applied[m.version] {
			return fmt.Errorf("store: the database schema lacks migration %s: start this version of the bot on it once, so it upgrades the schema", m.name)
		}
	}
	return nil
}
