package access

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// checkpoints returns the checkpoints n was told, in order.
func (n *recordingNotifier) checkpoints() []Checkpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Checkpoint
	for _, no := range n.notices {
		if no.Kind == ToCheckpoint && no.Checkpoint != nil {
			out = append(out, *no.Checkpoint)
		}
	}
	return out
}

// checkpointBackends opens the same database twice per backend, as two replicas do: SQLite
// always, PostgreSQL when TEST_DATABASE_URL is set.
func checkpointBackends() map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "core.db") },
		"postgres": func(t *testing.T) string { return storetest.PostgresURL(t, "access_checkpoint_") },
	}
}

// TestCheckpointOnePerPeriodAcrossReplicas: two replicas polling together post one periodic
// checkpoint per period, not two, carrying the head as it is then; an empty chain claims
// nothing, so the first entry gets its checkpoint at the next poll; each replica posts the head
// as it stops.
func TestCheckpointOnePerPeriodAcrossReplicas(t *testing.T) {
	for name, newURL := range checkpointBackends() {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			t0 := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
			clock := t0
			var (
				replicas  []*Service
				notifiers []*recordingNotifier
				st        *store.Store
			)
			for _, id := range []string{"A", "B"} {
				s, err := store.Open(t.Context(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				st = s
				n := &recordingNotifier{}
				replicas = append(replicas, testCoreOn(t, s, newUsersMetabase(), n, id, func(c *Config) {
					c.Now = func() time.Time { return clock }
					c.CheckpointEvery = 24 * time.Hour
				}))
				notifiers = append(notifiers, n)
			}
			// poll runs one poll on both replicas at once and returns the checkpoints it posted.
			seen := make([]int, len(notifiers))
			poll := func(at time.Duration) []Checkpoint {
				t.Helper()
				clock = t0.Add(at)
				var wg sync.WaitGroup
				for _, s := range replicas {
					wg.Go(func() { timers{s}.periodicCheckpoint(t.Context()) })
				}
				wg.Wait()
				var posted []Checkpoint
				for i, n := range notifiers {
					cps := n.checkpoints()
					posted = append(posted, cps[seen[i]:]...)
					seen[i] = len(cps)
				}
				return posted
			}
			appendEntry := func(action string) store.AuditEntry {
				t.Helper()
				e, err := st.AppendAudit(t.Context(), []byte(`{"action":"`+action+`","request_id":"R1"}`))
				if err != nil {
					t.Fatal(err)
				}
				return e
			}

			if got := poll(0); len(got) != 0 {
				t.Fatalf("an empty chain got checkpoints %v", got)
			}
			first := appendEntry("requested")
			got := poll(time.Minute)
			if len(got) != 1 || got[0].Seq != 1 || got[0].Hash != first.Hash || got[0].Shutdown || !got[0].At.Equal(t0.Add(time.Minute)) {
				t.Fatalf("after the first entry, checkpoints %+v; want one with head 1:%s", got, first.Hash)
			}
			second := appendEntry("approved")
			for _, at := range []time.Duration{2 * time.Minute, 12 * time.Hour, 24*time.Hour + 59*time.Second} {
				if got := poll(at); len(got) != 0 {
					t.Fatalf("at +%s, within the period, checkpoints %+v; want none", at, got)
				}
			}
			got = poll(24*time.Hour + time.Minute)
			if len(got) != 1 || got[0].Seq != 2 || got[0].Hash != second.Hash {
				t.Fatalf("when the period ended, checkpoints %+v; want one with head 2:%s", got, second.Hash)
			}
			if got := poll(24*time.Hour + 2*time.Minute); len(got) != 0 {
				t.Fatalf("right after the second checkpoint, checkpoints %+v; want none", got)
			}

			for i, s := range replicas {
				s.CheckpointAtShutdown(t.Context())
				cps := notifiers[i].checkpoints()
				last := cps[len(cps)-1]
				if !last.Shutdown || last.Seq != 2 || last.Hash != second.Hash {
					t.Errorf("replica %d's shutdown checkpoint is %+v; want the head 2:%s", i, last, second.Hash)
				}
			}
		})
	}
}

// TestCheckpointsOffOrEmpty: with checkpoints off (no audit trail) nothing is claimed or posted,
// periodically or at shutdown; with an empty chain, nothing is posted at shutdown.
func TestCheckpointsOffOrEmpty(t *testing.T) {
	s, st, n := testCore(t, newUsersMetabase(), "A", func(c *Config) { c.CheckpointEvery = time.Hour })
	s.CheckpointAtShutdown(t.Context())
	if cps := n.checkpoints(); len(cps) != 0 {
		t.Fatalf("an empty chain was checkpointed at shutdown: %+v", cps)
	}

	off := testCoreOn(t, st, newUsersMetabase(), n, "B", nil)
	if _, err := st.AppendAudit(t.Context(), []byte(`{"action":"requested","request_id":"R1"}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	timers{off}.checkpointLoop(ctx) // returns at once when off, cancelled or not
	off.CheckpointAtShutdown(t.Context())
	if cps := n.checkpoints(); len(cps) != 0 {
		t.Fatalf("checkpoints off, yet %+v were posted", cps)
	}
	// Off took no claim: the replica with checkpoints on still wins the period.
	timers{s}.periodicCheckpoint(t.Context())
	if cps := n.checkpoints(); len(cps) != 1 || cps[0].Seq != 1 {
		t.Fatalf("after the first entry, checkpoints %+v; want one of head #1", cps)
	}
}

func TestCheckpointPoll(t *testing.T) {
	for _, tt := range []struct{ every, want time.Duration }{
		{24 * time.Hour, time.Minute},
		{time.Hour, time.Minute},
		{5 * time.Minute, 30 * time.Second},
		{2 * time.Second, 200 * time.Millisecond},
		{time.Second, 100 * time.Millisecond},
		{10 * time.Millisecond, 100 * time.Millisecond},
	} {
		if got := checkpointPoll(tt.every); got != tt.want {
			t.Errorf("checkpointPoll(%s) = %s, want %s", tt.every, got, tt.want)
		}
	}
}
