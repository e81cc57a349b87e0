package access

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// instanceLatency is how long each fake instance takes to answer the user search.
const instanceLatency = 200 * time.Millisecond

// BenchmarkPrepareThreeInstances prepares the card of `disable jane@example.com` with three
// Metabase instances, each answering the user search in 200 ms, through the real client and the
// fake Metabase. The instances are asked at the same time, so a card costs about one instance's
// latency plus the bot's overhead, not three: it fails when an operation takes 1.5 latencies or
// more (sequential lookups would take three).
func BenchmarkPrepareThreeInstances(b *testing.B) {
	var instances []Instance
	for _, name := range []string{"prod", "eu", "staging"} {
		fake := metabasetest.New(b)
		fake.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true})
		fake.SetLatency("GET", "/api/user", instanceLatency)
		client, err := metabase.New(fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
		if err != nil {
			b.Fatal(err)
		}
		instances = append(instances, Instance{Name: name, Metabase: client})
	}
	st, err := store.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s, err := New(Config{
		Policy:    Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour},
		Execution: Execution{InstanceID: "bench", BulkConcurrency: 4, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second},
	}, Deps{Store: st, Instances: instances, Directory: stubDirectory{}, Notifier: &recordingNotifier{}})
	if err != nil {
		b.Fatal(err)
	}
	c := ChangeRequest{Action: approval.Disable, Reason: "Left the company", Requester: "UREQ", Channel: "COPS",
		Targets: []TargetRef{{Kind: ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}}
	var slowest time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := s.Prepare(b.Context(), c)
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Targets) != 3 {
			b.Fatalf("prepared %d targets, want jane in each of the 3 instances", len(r.Targets))
		}
		slowest = max(slowest, took)
	}
	if limit := instanceLatency * 3 / 2; slowest >= limit {
		b.Fatalf("the slowest card took %s, want under %s: the instances were not asked at the same time", slowest, limit)
	}
	b.ReportMetric(float64(slowest.Milliseconds()), "slowest-ms")
	b.ReportMetric(float64(instanceLatency.Milliseconds()), "instance-ms")
}
