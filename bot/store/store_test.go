package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// t0 is the fixed clock of the contract tests.
var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// harness gives the contract suite fresh databases of one backend.
type harness struct {
	// newURL returns the DATABASE_URL of a fresh, empty database that lives until the test ends.
	newURL func(t *testing.T) string
}

// open opens a store on url, closed when the test ends.
func (h harness) open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// fresh opens a store on a new database.
func (h harness) fresh(t *testing.T) *Store {
	t.Helper()
	return h.open(t, h.newURL(t))
}

// pair opens two stores (two connection pools, as two replicas would have) on one new database.
func (h harness) pair(t *testing.T) (*Store, *Store) {
	t.Helper()
	u := h.newURL(t)
	return h.open(t, u), h.open(t, u)
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	runContract(t, harness{newURL: func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "bot.db")
	}})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.EnvVar) == "" {
		t.Skip(storetest.EnvVar + " is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the Postgres contract tests")
	}
	runContract(t, harness{newURL: func(t *testing.T) string { return storetest.PostgresURL(t, "store_test_") }})
}

// runContract is the behaviour every backend must show; TestSQLite and TestPostgres run it.
func runContract(t *testing.T, h harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h harness)
	}{
		{"Backend", testBackend},
		{"LastAdminRace", testLastAdminRace},
		{"LastAdminSameRequest", testLastAdminSameRequest},
		{"CreateExclusive", testCreateExclusive},
		{"RetryExclusive", testRetryExclusive},
		{"LastAdminPerInstance", testLastAdminPerInstance},
		{"LastAdminSkewedClocks", testLastAdminSkewedClocks},
		{"UpdateAlso", testUpdateAlso},
		{"MigrateIdempotent", testMigrateIdempotent},
		{"MigrateConcurrent", testMigrateConcurrent},
		{"CreateGet", testCreateGet},
		{"CreateExists", testCreateExists},
		{"CreateValidates", testCreateValidates},
		{"Update", testUpdate},
		{"UpdateFnError", testUpdateFnError},
		{"UpdateNotFound", testUpdateNotFound},
		{"UpdateLostRace", testUpdateLostRace},
		{"Due", testDue},
		{"ByTarget", testByTarget},
		{"ByTargetInstances", testByTargetInstances},
		{"ListAndCount", testListAndCount},
		{"OutboxAtomicWithCreateAndUpdate", testOutboxAtomic},
		{"OutboxOrderPerRequest", testOutboxOrder},
		{"OutboxLease", testOutboxLease},
		{"OutboxWrongOwner", testOutboxWrongOwner},
		{"OutboxRetry", testOutboxRetry},
		{"CompleteOutboxAndUpdate", testCompleteOutboxAndUpdate},
		{"RaceApprove", testRaceApprove},
		{"RaceStart", testRaceStart},
		{"RaceClaim", testRaceClaim},
		{"ChatUsers", testChatUsers},
		{"ChatUsersRace", testChatUsersRace},
		{"BreakGlassLimit", testBreakGlassLimit},
		{"BreakGlassLimitRace", testBreakGlassLimitRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

func testBackend(t *testing.T, h harness) {
	s := h.fresh(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if b := s.Backend(); b != backendSQLite && b != backendPostgres {
		t.Fatalf("Backend() = %q", b)
	}
}

// newRequest is a pending disable of targets, created at created, expiring a day later.
func newRequest(id string, created time.Time, targets ...int) approval.Request {
	r := approval.Request{
		ID:                id,
		Action:            approval.Disable,
		State:             approval.Pending,
		Requester:         "UREQ",
		Reason:            "left the company",
		ChannelID:         "CAPPROVALS",
		RequiredApprovals: 1,
		CreatedAt:         created,
		ExpiresAt:         created.Add(24 * time.Hour),
	}
	for _, uid := range targets {
		r.Targets = append(r.Targets, approval.Target{UserID: uid, Email: fmt.Sprintf("user%d@example.com", uid)})
	}
	return r
}

// mustCreate stores r and fails the test on error.
func mustCreate(t *testing.T, s *Store, r approval.Request, out ...Outbox) {
	t.Helper()
	if err := s.Create(t.Context(), r, out...); err != nil {
		t.Fatalf("Create(%s): %v", r.ID, err)
	}
}

// mustDo applies a transition that must succeed to a local request value.
func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("transition: %v", err)
	}
}

func TestOpenURLs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name        string
		url         string
		wantBackend string
		wantErr     string
	}{
		{name: "sqlite colon", url: "sqlite:" + filepath.Join(dir, "a.db"), wantBackend: "sqlite"},
		{name: "sqlite slashes", url: "sqlite://" + filepath.Join(dir, "b.db"), wantBackend: "sqlite"},
		{name: "file", url: "file:" + filepath.Join(dir, "c.db"), wantBackend: "sqlite"},
		{name: "memory", url: "sqlite::memory:", wantBackend: "sqlite"},
		{name: "no scheme", url: "bot.db", wantErr: "DATABASE_URL must be sqlite:PATH"},
		{name: "unknown scheme", url: "mysql://root:hunter2@db/bot", wantErr: `unsupported DATABASE_URL scheme "mysql"`},
		{name: "empty sqlite path", url: "sqlite:", wantErr: "has no path"},
		{name: "sqlite query", url: "sqlite:" + filepath.Join(dir, "d.db") + "?mode=ro", wantErr: "query parameters are not supported"},
		{name: "missing directory", url: "sqlite:" + filepath.Join(dir, "missing", "e.db"), wantErr: "does its directory exist"},
		{name: "postgres unreachable", url: "postgres://bot:hunter2@127.0.0.1:1/bot?connect_timeout=2", wantErr: "connect to postgres postgres://bot:xxxxx@127.0.0.1:1/bot"},
		{name: "postgres bad url", url: "postgresql://bot:hun%zzter2@127.0.0.1:1/bot", wantErr: "invalid postgres DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.url)
			if tt.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q) succeeded, want error containing %q", tt.url, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Open(%q) error = %q, want it to contain %q", tt.url, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun%zzter2") {
					t.Errorf("Open(%q) error leaks the password: %q", tt.url, err)
				}
				for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
					if strings.Contains(e.Error(), "hunter2") {
						t.Errorf("wrapped error leaks the password: %q", e)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.url, err)
			}
			defer s.Close()
			if s.Backend() != tt.wantBackend {
				t.Errorf("Backend() = %q, want %q", s.Backend(), tt.wantBackend)
			}
			// Every form works end to end; the memory database must keep its schema across
			// calls and must not deadlock on its single connection.
			mustCreate(t, s, newRequest("R1", t0, 1), Outbox{Kind: "card"})
			if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
				return []Outbox{{Kind: "reply"}}, approveErr(r.Approve("UAPP", t0, approval.Policy{}))
			}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			got, err := s.ClaimOutbox(t.Context(), "d1", t0, time.Minute, 10)
			if err != nil || len(got) != 1 {
				t.Fatalf("ClaimOutbox = %v, %v", got, err)
			}
			if _, err := s.CompleteOutboxAndUpdate(t.Context(), got[0].ID, "d1", "R1", func(r *approval.Request) error {
				r.MessageTS = "1.1"
				return nil
			}); err != nil {
				t.Fatalf("CompleteOutboxAndUpdate: %v", err)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	t.Parallel()
	s := &Store{backend: backendPostgres}
	got := s.rebind(`UPDATE t SET a = ?, b = ? WHERE id IN (?)`)
	if want := `UPDATE t SET a = $1, b = $2 WHERE id IN ($3)`; got != want {
		t.Errorf("rebind = %q, want %q", got, want)
	}
	s.backend = backendSQLite
	if got := s.rebind(`a = ?`); got != `a = ?` {
		t.Errorf("sqlite rebind = %q", got)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	err := redact(errors.New("failed for user bot password s3cr%2Ft"), "s3cr/t")
	if strings.Contains(err.Error(), "s3cr") {
		t.Errorf("redact left the password: %q", err)
	}
	base := errors.New("no secret here")
	if got := redact(base, "s3cr/t"); got != base {
		t.Errorf("redact replaced an error without the password")
	}
}

// approveErr drops Approve's quorum flag where a test only needs its error.
func approveErr(_ bool, err error) error { return err }

// TestOpenNeverShowsSecretsInTheQuery: pgx takes the password (and a client key's passphrase)
// from the URL's query too; an error opening such a URL must name neither, though it names the
// host so an operator can still tell what failed.
func TestOpenNeverShowsSecretsInTheQuery(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"postgres://bot@127.0.0.1:1/db?password=hunter2-query&connect_timeout=1",
		"postgres://bot:hunter2-user@127.0.0.1:1/db?sslpassword=hunter2-key&connect_timeout=1",
		"postgres://bot@127.0.0.1:1/db?password=hunter2%2Fesc&sslmode=bogus",
	} {
		_, err := Open(t.Context(), raw)
		if err == nil {
			t.Fatalf("Open(%s) succeeded against a closed port", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error leaks a secret: %v", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(err.Error(), "sslmode") {
			t.Errorf("the error no longer says what failed: %v", err)
		}
	}
}
