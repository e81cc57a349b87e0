package access

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// Durable commits of one single-user disable, from the click to the outcome reply in the thread
// and until the outbox is empty. The floor is two: the decision (with its messages) and the
// outcome (with its messages). The third on the path records the approval's own messages as
// delivered, or claims the outcome's; see docs/benchmarks.md.
const (
	maxCommitsToOutcome   = 3
	maxCommitsPerApproval = 5
)

// outcomeNotifier is a recordingNotifier that notes the store's commit count at the moment it is
// handed the outcome reply, before anything records that reply as delivered.
type outcomeNotifier struct {
	recordingNotifier
	st      *store.Store
	once    sync.Once
	outcome chan uint64
}

func (n *outcomeNotifier) Tell(ctx context.Context, no Notice) (string, error) {
	if no.Kind == ToThread && no.Event != nil && no.Event.Type == Finished {
		n.once.Do(func() { n.outcome <- n.st.Commits() })
	}
	return n.recordingNotifier.Tell(ctx, no)
}

// TestApprovalCommits counts the store's committed write transactions of one approval while the
// deliverer runs beside the execution, as in the bot, so a change that adds a write to the path
// fails here rather than only in the benchmark.
func TestApprovalCommits(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var url string
			if backend == "postgres" {
				url = storetest.PostgresURL(t, "access_")
			} else {
				url = "sqlite:" + filepath.Join(t.TempDir(), "core.db")
			}
			st, err := store.Open(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			n := &outcomeNotifier{st: st, outcome: make(chan uint64, 1)}
			mb := newUsersMetabase(activeUsers(5)...)
			s := testCoreOn(t, st, mb, n, "A", nil)
			pendingRequest(t, st, "MB-C", 1, 5)

			ctx, stop := context.WithCancel(t.Context())
			running := make(chan struct{})
			go func() { defer close(running); s.Run(ctx) }()
			before := st.Commits()
			if _, err := s.Approve(t.Context(), "MB-C", "UAPP"); err != nil {
				t.Fatal(err)
			}
			var atOutcome uint64
			select {
			case atOutcome = <-n.outcome:
			case <-t.Context().Done():
				t.Fatal("the outcome reply was never told")
			}
			// Stop the loop, then deliver and record whatever it left, as shutdown does.
			stop()
			<-running
			s.Drain(t.Context())
			if pending, err := st.PendingOutbox(t.Context()); err != nil || pending != 0 {
				t.Fatalf("%d messages still pending after the drain (err %v)", pending, err)
			}
			want := []string{"card_update:approved", "audit:approved", "card_update:finished", "thread:finished", "audit:finished"}
			if got := n.events(); !slices.Equal(got, want) {
				t.Fatalf("notices = %v\nwant %v", got, want)
			}
			toOutcome, total := atOutcome-before, st.Commits()-before
			t.Logf("%s: %d commits from the click to the outcome reply, %d until the outbox was empty", backend, toOutcome, total)
			if toOutcome > maxCommitsToOutcome {
				t.Errorf("%d commits from the click to the outcome reply, want at most %d", toOutcome, maxCommitsToOutcome)
			}
			if total > maxCommitsPerApproval {
				t.Errorf("%d commits for one approval until the outbox was empty, want at most %d", total, maxCommitsPerApproval)
			}
		})
	}
}
