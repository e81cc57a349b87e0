package access

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

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

// hookNotifier is a recordingNotifier that first asks hook, which may fail the delivery.
type hookNotifier struct {
	recordingNotifier
	hook func(no Notice) error
}

func (n *hookNotifier) Tell(ctx context.Context, no Notice) (string, error) {
	if err := n.hook(no); err != nil {
		return "", err
	}
	return n.recordingNotifier.Tell(ctx, no)
}

func is(no Notice, kind Kind, typ EventType) bool {
	return no.Kind == kind && no.Event != nil && no.Event.Type == typ
}

// TestCrashRepeatsOnlyTheMessageInFlight: a process that sent the approval's card update and
// audit line and died before recording them leaves both to the next process once the lease has
// run out. The card update is sent again, which shows the card as it stands; the one message a
// person sees twice is the audit line that was in flight, as when each message was recorded on
// its own. Everything after it goes out once, in order.
func TestCrashRepeatsOnlyTheMessageInFlight(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	crash, dead := context.WithCancel(t.Context())
	first := &hookNotifier{hook: func(no Notice) error {
		if is(no, ToAudit, Approved) {
			dead() // the process dies once this message is out, before anything records it
		}
		return nil
	}}
	a := testCoreOn(t, st, mb, first, "A", nil)
	pendingRequest(t, st, "MB-X", 1, 5)
	if _, err := a.Approve(t.Context(), "MB-X", "UAPP"); err != nil {
		t.Fatal(err)
	}
	deliverer{a}.deliverOutbox(crash)
	if got, want := first.events(), []string{"card_update:approved", "audit:approved"}; !slices.Equal(got, want) {
		t.Fatalf("before the crash: notices = %v, want %v", got, want)
	}

	second := &recordingNotifier{}
	afterLease := func(c *Config) { c.Now = func() time.Time { return time.Now().Add(time.Minute) } }
	b := testCoreOn(t, st, mb, second, "B", afterLease)
	b.Drain(t.Context())
	want := []string{"card_update:approved", "audit:approved", "card_update:finished", "thread:finished", "audit:finished"}
	if got := second.events(); !slices.Equal(got, want) {
		t.Fatalf("after the crash: notices = %v, want %v", got, want)
	}
	if pending, err := st.PendingOutbox(t.Context()); err != nil || pending != 0 {
		t.Fatalf("%d messages pending (err %v), want 0", pending, err)
	}
}

// TestRunStopsAtAFailedMessage: when a message of a run fails, the rest of its run is given back
// unsent and waits behind it; after the retry the request's messages go out in order.
func TestRunStopsAtAFailedMessage(t *testing.T) {
	mb := newUsersMetabase(activeUsers(5)...)
	var (
		mu     sync.Mutex
		offset time.Duration
		failed bool
	)
	clock := func(c *Config) {
		c.Now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return time.Now().Add(offset)
		}
	}
	n := &hookNotifier{hook: func(no Notice) error {
		mu.Lock()
		defer mu.Unlock()
		if is(no, ToCardUpdate, Approved) && !failed {
			failed = true
			return &DeliveryError{Err: errors.New("ratelimited"), RetryAfter: 5 * time.Second}
		}
		return nil
	}}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := testCoreOn(t, st, mb, n, "A", clock)
	pendingRequest(t, st, "MB-F", 1, 5)
	if _, err := s.Approve(t.Context(), "MB-F", "UAPP"); err != nil {
		t.Fatal(err)
	}
	s.Drain(t.Context())
	if got := n.events(); len(got) != 0 {
		t.Fatalf("delivered %v while the first message waits for its retry", got)
	}
	if pending, err := st.PendingOutbox(t.Context()); err != nil || pending != 5 {
		t.Fatalf("%d messages pending (err %v), want all 5", pending, err)
	}
	mu.Lock()
	offset = 10 * time.Second
	mu.Unlock()
	s.Drain(t.Context())
	want := []string{"card_update:approved", "audit:approved", "card_update:finished", "thread:finished", "audit:finished"}
	if got := n.events(); !slices.Equal(got, want) {
		t.Fatalf("notices = %v, want %v", got, want)
	}
}
