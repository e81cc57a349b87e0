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

// BenchmarkSubmitConsequences submits disables of 10 users each among 5,000 subscriptions (and
// 100 alerts) through the real client and the fake Metabase, then cancels them so the users can
// be asked about again. It fails unless every request lists subscriptions exactly once and alerts
// exactly once, whatever the number of targets and items: the lookup is per request, not per
// target. The personal collections are the exception (Metabase counts one collection per call),
// so their calls per request are reported as well.
func BenchmarkSubmitConsequences(b *testing.B) {
	fake := metabasetest.New(b)
	fake.SeedUsers(500) // ids 2..501
	creators := make([]int, 500)
	for i := range creators {
		creators[i] = i + 2
	}
	fake.SeedSubscriptions(5000, creators)
	for i := range 100 {
		fake.AddAlert(metabasetest.Alert{CreatorID: creators[i*5], SlackChannels: []string{"#a"}})
	}
	client, err := metabase.New(fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s, err := New(Config{
		Policy:    Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour},
		Execution: Execution{InstanceID: "bench", BulkConcurrency: 4, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second},
	}, Deps{Store: st, Metabase: client, Notifications: client, Directory: stubDirectory{}, Notifier: &recordingNotifier{}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.Capabilities(b.Context()); err != nil {
		b.Fatal(err)
	}
	count := func(path string) int {
		n := 0
		for _, r := range fake.Requests() {
			if r.Method == "GET" && r.Path == path {
				n++
			}
		}
		return n
	}
	pulses, alerts, users, items := count("/api/pulse"), count("/api/notification/admin"), count("/api/user"), 0
	next, requests, listed := 0, 0, 0
	for b.Loop() {
		c := ChangeRequest{Action: approval.Disable, Reason: "bench", Requester: "UREQ", Channel: "COPS"}
		for range 10 {
			email := fmt.Sprintf("user%d@example.com", next%500+2)
			c.Targets = append(c.Targets, TargetRef{Kind: ByEmail, Email: email, Raw: email})
			next++
		}
		r, err := s.Submit(b.Context(), c)
		if err != nil {
			b.Fatal(err)
		}
		listed += r.Targets[0].Consequences.Subscriptions
		if _, err := s.Cancel(b.Context(), r.ID, "UREQ"); err != nil {
			b.Fatal(err)
		}
		requests++
	}
	for _, r := range fake.Requests() {
		if r.Method == "GET" && len(r.Path) > len("/api/collection/") && r.Path[:len("/api/collection/")] == "/api/collection/" {
			items++
		}
	}
	perPulse := float64(count("/api/pulse")-pulses) / float64(requests)
	perAlert := float64(count("/api/notification/admin")-alerts) / float64(requests)
	if perPulse != 1 || perAlert != 1 {
		b.Fatalf("%.2f subscription listings and %.2f alert listings per request, want 1 and 1", perPulse, perAlert)
	}
	if listed != 10*requests {
		b.Fatalf("the first targets have %d subscriptions in all over %d requests, want 10 each", listed, requests)
	}
	b.ReportMetric(perPulse, "pulse-lists/op")
	b.ReportMetric(perAlert, "alert-lists/op")
	b.ReportMetric(float64(items)/float64(requests), "collection-counts/op")
	// Resolving the 10 targets by email; counting their collections adds no lookup of its own.
	b.ReportMetric(float64(count("/api/user")-users)/float64(requests), "user-lookups/op")
}
