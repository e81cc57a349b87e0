package store

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

func TestWatchSQLite(t *testing.T) {
	t.Parallel()
	runWatchContract(t, harness{newURL: func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "bot.db")
	}})
}

func TestWatchPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.EnvVar) == "" {
		t.Skip(storetest.EnvVar + " is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the Postgres watch tests")
	}
	runWatchContract(t, harness{newURL: func(t *testing.T) string { return storetest.PostgresURL(t, "store_watch_") }})
}

func runWatchContract(t *testing.T, h harness) {
	t.Run("ClaimOnePerPeriod", func(t *testing.T) { testWatchClaim(t, h) })
	t.Run("RowOnce", func(t *testing.T) { testWatchRowOnce(t, h) })
}

// testWatchClaim: replicas racing for a period's check get one winner per instance; a period
// whose winner died is claimed as soon as it has passed; the last check is kept for status.
func testWatchClaim(t *testing.T, h harness) {
	a, b := h.pair(t)
	const every = 5 * time.Minute
	race := func(instance string, now time.Time) int {
		var wins atomic.Int32
		var g errgroup.Group
		for i := range 8 {
			g.Go(func() error {
				ok, err := []*Store{a, b}[i%2].ClaimWatch(t.Context(), instance, "r", now, every)
				if ok {
					wins.Add(1)
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("ClaimWatch: %v", err)
		}
		return int(wins.Load())
	}
	if n := race("default", t0); n != 1 {
		t.Fatalf("first period: %d winners, want 1", n)
	}
	if n := race("eu", t0); n != 1 {
		t.Fatalf("another instance's first period: %d winners, want 1", n)
	}
	if n := race("default", t0.Add(every-time.Millisecond)); n != 0 {
		t.Fatalf("within the period: %d winners, want 0", n)
	}
	// The winner died: the next poll after the period claims it at once.
	if n := race("default", t0.Add(every+time.Millisecond)); n != 1 {
		t.Fatalf("the missed period: %d winners, want 1", n)
	}
	if at, err := a.WatchCheckedAt(t.Context(), "default"); err != nil || !at.IsZero() {
		t.Fatalf("WatchCheckedAt before any check = %v, %v; want zero", at, err)
	}
	if err := b.WatchChecked(t.Context(), "default", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if at, err := a.WatchCheckedAt(t.Context(), "default"); err != nil || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("WatchCheckedAt = %v, %v; want %v", at, err, t0.Add(time.Second))
	}
}

// testWatchRowOnce: of replicas recording the same finding, one wins, and only its messages
// (with their audit entries) are written.
func testWatchRowOnce(t *testing.T, h harness) {
	a, b := h.pair(t)
	r := newRequest("MB-WATCH1", t0, 7)
	if err := a.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	before := head(t, a)
	var wins atomic.Int32
	var g errgroup.Group
	for i := range 6 {
		g.Go(func() error {
			ok, err := []*Store{a, b}[i%2].PutWatchRow(t.Context(),
				WatchRow{Instance: "default", UserID: 7, Basis: "MB-WATCH1@1", State: "reported", Data: []byte(`{}`)},
				Outbox{RequestID: r.ID, Kind: "thread", Payload: []byte(`{}`), Audit: auditEvent(r.ID, "reactivated", i)})
			if ok {
				wins.Add(1)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("PutWatchRow: %v", err)
	}
	if wins.Load() != 1 {
		t.Fatalf("%d replicas recorded the finding, want 1", wins.Load())
	}
	if got := head(t, a); got.Seq != before.Seq+1 {
		t.Fatalf("audit head moved from %d to %d, want one entry", before.Seq, got.Seq)
	}
	row, ok, err := b.WatchRow(t.Context(), approval.UserKey{ID: 7})
	if err != nil || !ok || row.Version != 1 || row.State != "reported" {
		t.Fatalf("WatchRow = %+v, %v, %v; want version 1, reported", row, ok, err)
	}
	// A stale version loses; the current one wins.
	if ok, err := a.PutWatchRow(t.Context(), WatchRow{UserID: 7, Basis: row.Basis, State: "accepted", Data: []byte(`{}`), Version: 0}); err != nil || ok {
		t.Fatalf("insert over an existing row = %v, %v; want false", ok, err)
	}
	if ok, err := a.PutWatchRow(t.Context(), WatchRow{UserID: 7, Basis: row.Basis, State: "accepted", Data: []byte(`{}`), Version: 1}); err != nil || !ok {
		t.Fatalf("update at the current version = %v, %v; want true", ok, err)
	}
	rows, err := b.WatchRows(t.Context(), "default")
	if err != nil || len(rows) != 1 || rows[0].State != "accepted" || rows[0].Version != 2 {
		t.Fatalf("WatchRows = %+v, %v; want one accepted row at version 2", rows, err)
	}
}
