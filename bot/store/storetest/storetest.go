// Package storetest gives tests and benchmarks a PostgreSQL schema of their own, so concurrent
// runs against one server never see each other's tables. Production code never imports it.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvVar names the variable that points tests at a PostgreSQL server.
const EnvVar = "TEST_DATABASE_URL"

// Schema creates a schema with a random name (starting with prefix) in the database at base and
// returns base with its search_path set to that schema, and a function that drops it.
func Schema(ctx context.Context, base, prefix string) (string, func() error, error) {
	u, err := url.Parse(base)
	if err != nil {
		// The parse error would echo the URL, password included.
		return "", nil, errors.New("storetest: the PostgreSQL URL does not parse")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	schema := prefix + strings.ToLower(rand.Text()[:12])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() error {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		return err
	}
	return u.String(), drop, nil
}

// PostgresURL returns a URL on a fresh schema of the server named by TEST_DATABASE_URL, dropped
// when the test ends, or skips the test when the variable is unset. Call it before starting
// anything that uses the schema, so the drop runs after those have stopped.
func PostgresURL(tb testing.TB, prefix string) string {
	tb.Helper()
	return postgresURL(tb, prefix, os.Getenv(EnvVar), skipNotice)
}

// notice writes its line once per test binary (one package's tests).
type notice struct {
	once sync.Once
	w    io.Writer
}

// skipNotice goes to stderr, not only to the test log, which go test shows only with -v.
var skipNotice = &notice{w: os.Stderr}

const skipMessage = EnvVar + " is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests"

func postgresURL(tb testing.TB, prefix, base string, n *notice) string {
	tb.Helper()
	if base == "" {
		n.once.Do(func() { fmt.Fprintln(n.w, "storetest: skipping PostgreSQL tests: "+skipMessage) })
		tb.Skip(skipMessage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, drop, err := Schema(ctx, base, prefix)
	if err != nil {
		tb.Fatalf("create a test schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("drop test schema: %v", err)
		}
	})
	return u
}
