package store

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// Fault tests: the database itself fails (read-only, disk full, locked, connections cut, pool
// exhausted). Every such call fails with ErrUnavailable naming its cause, is counted, and marks
// the store failing until a write succeeds again; nothing is half written (the SQLite file
// passes its integrity check after each fault).

// wantUnavailable fails the test unless err is an *UnavailableError of op whose cause contains
// cause.
func wantUnavailable(t *testing.T, err error, op, cause string) {
	t.Helper()
	var ue *UnavailableError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ue) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}
	if ue.Op != op || !strings.Contains(ue.Cause, cause) {
		t.Fatalf("unavailable %q because %q, want %q because …%s…", ue.Op, ue.Cause, op, cause)
	}
}

// wantIntegrity fails the test unless the SQLite file of s is intact.
func wantIntegrity(t *testing.T, s *Store) {
	t.Helper()
	if err := s.IntegrityCheck(t.Context()); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

// TestSQLiteReadOnlyIsReported: a file SQLite can only read (remounted read-only, or its
// permissions changed) fails every write with the cause, while reads still answer; the store
// stays failing until a write succeeds.
func TestSQLiteReadOnlyIsReported(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bot.db")
	rw, err := Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	mustCreate(t, rw, newRequest("R1", t0, 1))

	// The process runs as root in CI, which file permissions do not stop: SQLite's own
	// read-only open is the same refusal a read-only mount gives (SQLITE_READONLY).
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	ro := &Store{db: db, backend: backendSQLite, writeSem: make(chan struct{}, 1), now: time.Now}
	defer ro.Close()
	var faults []Health
	ro.OnFault(func(h Health, _ error) { faults = append(faults, h) })

	err = ro.Create(t.Context(), newRequest("R2", t0, 2))
	wantUnavailable(t, err, "create", "read-only")
	if cause, ok := FaultCause(err); !ok || !strings.Contains(cause, "read-only") {
		t.Errorf("FaultCause = %q, %v; want the read-only cause, for check", cause, ok)
	}
	if _, err := ro.Get(t.Context(), "R1"); err != nil {
		t.Fatalf("a read of a read-only store failed: %v", err)
	}
	if _, err := ro.Get(t.Context(), "missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound only", err)
	}
	wantUnavailable(t, ro.Probe(t.Context()), "probe", "read-only")
	if h := ro.Health(); !h.Failing || h.Op != "create" || !strings.Contains(h.Cause, "read-only") {
		t.Fatalf("Health = %+v, want failing since the create, read-only", h)
	}
	if len(faults) != 1 {
		t.Errorf("OnFault called %d times for one outage, want 1", len(faults))
	}
	if got := ro.Errors(); got["create"] != 1 || got["probe"] != 1 || got["get"] != 0 {
		t.Errorf("Errors = %v, want create 1, probe 1, no get", got)
	}
	wantIntegrity(t, rw)
	if got, err := rw.List(t.Context()); err != nil || len(got) != 1 {
		t.Fatalf("after the fault: %d requests (%v), want R1 alone", len(got), err)
	}
}

// TestSQLiteDiskFullIsReportedAndRecovers: a write that needs a page the disk cannot give fails
// with the cause (SQLITE_FULL, made by SQLite itself through max_page_count), leaves nothing
// behind, and the store recovers without a restart once there is room.
func TestSQLiteDiskFullIsReportedAndRecovers(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// One connection, so the page limit set below applies to every write.
	s.db.SetMaxOpenConns(1)
	mustCreate(t, s, newRequest("R0", t0, 1))
	var pages int
	if err := s.db.QueryRowContext(t.Context(), `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(), fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	var full error
	created := 0
	for i := 1; i < 200 && full == nil; i++ {
		r := newRequest(fmt.Sprintf("R%d", i), t0, 100+i)
		r.Reason = strings.Repeat("x", 2000)
		if full = s.Create(t.Context(), r, Outbox{Kind: "card"}); full == nil {
			created++
		}
	}
	wantUnavailable(t, full, "create", "disk is full")
	if h := s.Health(); !h.Failing || !strings.Contains(h.Cause, "disk is full") {
		t.Fatalf("Health = %+v, want failing: disk full", h)
	}
	wantIntegrity(t, s)
	if got, err := s.List(t.Context()); err != nil || len(got) != created+1 {
		t.Fatalf("%d requests after the fault (%v), want the %d created before it", len(got), err, created+1)
	}

	if _, err := s.db.ExecContext(t.Context(), `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(t.Context()); err != nil {
		t.Fatalf("Probe once there is room: %v", err)
	}
	if h := s.Health(); h.Failing {
		t.Fatalf("Health = %+v after a successful write, want recovered", h)
	}
	mustCreate(t, s, newRequest("R-after", t0, 999))
	wantIntegrity(t, s)
}

// TestSQLiteLockedGivesUpWithinTheBudget: while another process holds the write lock, a write
// gives up after its call budget instead of SQLite's busy timeout (10 s), and a read still
// answers.
func TestSQLiteLockedGivesUpWithinTheBudget(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bot.db")
	s, err := Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.db.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	const budget = 200 * time.Millisecond
	ctx := WithCallTimeout(t.Context(), budget)
	began := time.Now()
	err = s.Create(ctx, newRequest("R1", t0, 1))
	took := time.Since(began)
	wantUnavailable(t, err, "create", "no answer within 200ms")
	if took > sqliteBusyTimeout/2 {
		t.Errorf("the locked write gave up after %s, want about its budget %s", took, budget)
	}
	if _, err := s.List(ctx); err != nil {
		t.Errorf("a read while another process writes: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newRequest("R1", t0, 1))
	if s.Health().Failing {
		t.Error("still failing after a write succeeded")
	}
	wantIntegrity(t, s)
}

// TestPostgresConnectionsCutAreReplaced: the server ends every connection of the store
// (pg_terminate_backend, as a restart or a failover does); the calls under way fail as
// unavailable, and the store connects again by itself: no restart of the process.
func TestPostgresConnectionsCutAreReplaced(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresURL(t, "store_fault_")
	s, err := Open(t.Context(), u+"&application_name=fault_cut")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustCreate(t, s, newRequest("R1", t0, 1))
	admin, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cut := func() {
		t.Helper()
		// Only this test's connections: other tests share the server.
		if _, err := admin.ExecContext(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = 'fault_cut' AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_terminate_backend%'`); err != nil {
			t.Fatal(err)
		}
	}
	cut()
	// database/sql hands out an idle connection the server has closed: the first call may fail
	// (as unavailable, never as anything else), and the next ones reconnect.
	_, err = s.Get(t.Context(), "R1")
	if err != nil && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get on a cut connection = %v, want success or ErrUnavailable", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err = s.Get(t.Context(), "R1"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the store did not reconnect after the server cut its connections: %v", err)
	}
	mustCreate(t, s, newRequest("R2", t0, 2))
	if s.Health().Failing {
		t.Errorf("Health = %+v after a write succeeded", s.Health())
	}
}

// TestPostgresPoolExhaustedGivesUp: with every pooled connection held by slow work, a caller
// waits for one only as long as its budget, then fails as unavailable.
func TestPostgresPoolExhaustedGivesUp(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), storetest.PostgresURL(t, "store_fault_"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var held []*sql.Tx
	for range postgresMaxConns {
		tx, err := s.db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, tx)
	}
	const budget = 200 * time.Millisecond
	began := time.Now()
	_, err = s.Get(WithCallTimeout(t.Context(), budget), "R1")
	wantUnavailable(t, err, "get", "no answer within 200ms")
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the call waited %s for a connection, want about %s", took, budget)
	}
	for _, tx := range held {
		_ = tx.Rollback()
	}
	if _, err := s.Get(t.Context(), "R1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get once connections are free = %v, want ErrNotFound", err)
	}
}

// TestAnswersAreNotFaults: answers about the data (no such request, already exists, a
// transition the caller refused) are not failures of the database: they are returned as they
// were, not counted, and do not make the store failing.
func TestAnswersAreNotFaults(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustCreate(t, s, newRequest("R1", t0, 1))
	refused := errors.New("the caller refuses")
	for name, err := range map[string]error{
		"get a missing request": func() error { _, err := s.Get(t.Context(), "missing"); return err }(),
		"create an existing id": s.Create(t.Context(), newRequest("R1", t0, 2)),
		"update refused by fn": func() error {
			_, err := s.Update(t.Context(), "R1", func(*approval.Request) ([]Outbox, error) { return nil, refused })
			return err
		}(),
	} {
		if err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want an answer, not ErrUnavailable", name, err)
		}
	}
	if got := s.Errors(); len(got) != 0 {
		t.Errorf("Errors = %v after answers only, want none", got)
	}
	if s.Health().Failing {
		t.Errorf("Health = %+v after answers only", s.Health())
	}
}
