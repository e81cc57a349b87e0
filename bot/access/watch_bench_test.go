package access

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// BenchmarkWatchCheck is one reactivation-watch check of an instance with 10,000 users, 1,000 of
// them disabled by the bot (one request each) and watched, through the real client, the fake
// Metabase and SQLite: one listing of the active users (paged as Metabase pages it), then the
// requests the expectation is derived from. It reports the Metabase calls per check and, beside
// the check's time, the time of one listing alone (docs/benchmarks.md#reactivation-watch).
func BenchmarkWatchCheck(b *testing.B) {
	const users, watched = 10_000, 1_000
	fake := metabasetest.New(b)
	fake.SeedUsers(users - watched)
	st, err := store.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i := range watched {
		u := fake.AddUser(metabasetest.User{Email: fmt.Sprintf("gone%d@example.com", i), FirstName: "Gone", Active: false})
		r := approval.Request{ID: fmt.Sprintf("MB-BENCH%04d", i), Action: approval.Disable, State: approval.Succeeded,
			Requester: "UREQ", Reason: "Left", ChannelID: "COPS", MessageTS: "1.1", RequiredApprovals: 1,
			CreatedAt: at, ExpiresAt: at.Add(time.Hour), FinishedAt: at,
			Targets: []approval.Target{{UserID: u.ID, Email: u.Email, Result: approval.Result{Outcome: approval.Done, At: at}}}}
		if err := st.Create(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
	client, err := metabase.New(fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{
		Policy:    Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour},
		Execution: Execution{InstanceID: "bench", BulkConcurrency: 4, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second},
		Watch:     Watch{Interval: time.Minute},
	}, Deps{Store: st, Metabase: client, Directory: stubDirectory{}, Notifier: &recordingNotifier{}})
	if err != nil {
		b.Fatal(err)
	}
	// One listing alone, for comparison.
	var listing time.Duration
	const listings = 5
	for range listings {
		start := time.Now()
		active, err := client.ListUsers(b.Context(), metabase.StatusActive)
		listing += time.Since(start)
		if err != nil || len(active) < users-watched {
			b.Fatalf("ListUsers = %d users, %v", len(active), err)
		}
	}
	// The store's part alone: the requests read after the listing, and the expectation.
	start := time.Now()
	reqs, err := st.WatchCandidates(b.Context())
	if n := len(expectedDisabled(reqs, approval.DefaultInstance, at)); err != nil || n != watched {
		b.Fatalf("expected disabled = %d, %v; want %d", n, err, watched)
	}
	storeTook := time.Since(start)
	before := fake.Count("GET", "/api/user")
	checks := 0
	for b.Loop() {
		if err := (watcher{s}).Check(b.Context(), approval.DefaultInstance); err != nil {
			b.Fatal(err)
		}
		checks++
	}
	b.ReportMetric(float64(fake.Count("GET", "/api/user")-before)/float64(checks), "metabase-calls/check")
	b.ReportMetric(float64(listing.Microseconds())/listings/1000, "listing-ms")
	b.ReportMetric(float64(storeTook.Microseconds())/1000, "store-ms")
}
