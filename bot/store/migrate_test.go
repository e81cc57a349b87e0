package store

import (
	"slices"
	"testing"

	"golang.org/x/sync/errgroup"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{backendSQLite, backendPostgres} {
		ms, err := loadMigrations(backend)
		if err != nil {
			t.Fatalf("loadMigrations(%s): %v", backend, err)
		}
		if len(ms) == 0 || ms[0].version != 1 {
			t.Fatalf("loadMigrations(%s) = %d migrations, want 0001 first", backend, len(ms))
		}
	}
	sqliteMs, _ := loadMigrations(backendSQLite)
	pgMs, _ := loadMigrations(backendPostgres)
	if len(sqliteMs) != len(pgMs) {
		t.Errorf("sqlite has %d migrations, postgres %d: every schema change needs both", len(sqliteMs), len(pgMs))
	}
}

// schemaVersions reads schema_migrations.
func schemaVersions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// knownVersions lists the versions of the migrations embedded for s's backend: each applied once.
func knownVersions(t *testing.T, s *Store) []int {
	t.Helper()
	ms, err := loadMigrations(s.backend)
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]int, len(ms))
	for i, m := range ms {
		vs[i] = m.version
	}
	return vs
}

func testMigrateIdempotent(t *testing.T, h harness) {
	u := h.newURL(t)
	first := h.open(t, u)
	mustCreate(t, first, newRequest("R1", t0, 7))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := h.open(t, u) // a restart: migrations already applied
	if _, err := second.Get(t.Context(), "R1"); err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if got, want := schemaVersions(t, second), knownVersions(t, second); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
}

func testMigrateConcurrent(t *testing.T, h harness) {
	u := h.newURL(t)
	const n = 4
	stores := make([]*Store, n)
	start := make(chan struct{})
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			<-start
			s, err := Open(t.Context(), u)
			stores[i] = s
			return err
		})
	}
	close(start)
	err := g.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	if err != nil {
		t.Fatalf("concurrent Open on a fresh database: %v", err)
	}
	if got, want := schemaVersions(t, stores[0]), knownVersions(t, stores[0]); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
	mustCreate(t, stores[0], newRequest("R1", t0))
	if _, err := stores[n-1].Get(t.Context(), "R1"); err != nil {
		t.Errorf("Get through another handle: %v", err)
	}
}
