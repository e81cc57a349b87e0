package access

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// cardWriteStore is a Store whose write that records a posted card (CompleteOutboxAndUpdate)
// fails the next fail times with err, as a busy SQLite file or a dropped connection does. The
// chat has accepted the card by then: the failure comes after a successful post.
type cardWriteStore struct {
	Store
	mu     sync.Mutex
	fail   int
	err    error
	writes int
}

func (s *cardWriteStore) CompleteOutboxAndUpdate(ctx context.Context, id int64, owner, requestID string, fn func(r *approval.Request) error) (approval.Request, error) {
	s.mu.Lock()
	s.writes++
	failing := s.fail > 0
	if failing {
		s.fail--
	}
	s.mu.Unlock()
	if failing {
		return approval.Request{}, s.err
	}
	return s.Store.CompleteOutboxAndUpdate(ctx, id, owner, requestID, fn)
}

// slowCardNotifier is a recordingNotifier whose card post, when atDeadline, is answered only as
// the delivery's context expires: the chat accepted it, and the caller's time is up.
type slowCardNotifier struct {
	recordingNotifier
	atDeadline bool
}

func (n *slowCardNotifier) Tell(ctx context.Context, no Notice) (string, error) {
	if n.atDeadline && no.Kind == ToCard {
		<-ctx.Done()
	}
	return n.recordingNotifier.Tell(ctx, no)
}

// TestCardPostedOnceWhenRecordingItFails: once the chat has accepted a card, a failed write of
// its ts (a busy database, a dropped connection, the delivery's context expiring as the chat
// answered) never leads to a second post, however long the write keeps failing and whoever
// claims the row again; the ts the chat gave is the one recorded, and the request's next
// messages follow. On both stores.
func TestCardPostedOnceWhenRecordingItFails(t *testing.T) {
	t.Parallel()
	busy := errors.New("store: begin: database is locked (SQLITE_BUSY)")
	cases := []struct {
		name string
		// fail is how many card writes fail with busy.
		fail int
		// atDeadline: the chat answers the card's post just as the delivery's context expires.
		atDeadline bool
	}{
		{name: "one write fails", fail: 1},
		{name: "every write of the delivery fails, and the next", fail: maxRecordAttempts + 2},
		{name: "the chat answers at the delivery deadline", atDeadline: true},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, tc := range cases {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				var url string
				if backend == "postgres" {
					url = storetest.PostgresURL(t, "access_")
				} else {
					url = "sqlite:" + filepath.Join(t.TempDir(), "core.db")
				}
				real, err := store.Open(t.Context(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { real.Close() })
				st := &cardWriteStore{Store: real, fail: tc.fail, err: busy}

				var (
					mu     sync.Mutex
					offset time.Duration
				)
				tune := func(c *Config) {
					c.Now = func() time.Time {
						mu.Lock()
						defer mu.Unlock()
						return time.Now().Add(offset)
					}
					if tc.atDeadline {
						// A delivery must end within half the lease from its claim; keep that short.
						c.Execution.OutboxLease = 400 * time.Millisecond
					}
				}
				n := &slowCardNotifier{atDeadline: tc.atDeadline}
				s := testCoreOn(t, st, newUsersMetabase(activeUsers(5)...), n, "A", tune)
				r, err := s.Submit(t.Context(), ChangeRequest{Action: approval.Disable, Reason: "Left", Requester: "UREQ", Channel: "COPS",
					Targets: []TargetRef{{Kind: ByID, ID: 5, Raw: "5"}}})
				if err != nil {
					t.Fatal(err)
				}

				// Rounds until everything is out; between them the clock jumps past the lease and
				// every retry time, so any process may claim what is left, this one included.
				for range 4 {
					s.Drain(t.Context())
					mu.Lock()
					offset += 2 * time.Minute
					mu.Unlock()
				}

				var cards []string
				n.mu.Lock()
				for _, no := range n.notices {
					if no.Kind == ToCard {
						cards = append(cards, no.Request.ID)
					}
				}
				told := len(n.notices)
				n.mu.Unlock()
				st.mu.Lock()
				writes := st.writes
				st.mu.Unlock()
				if len(cards) != 1 {
					t.Fatalf("the card was posted %d times, want once (%d card writes)", len(cards), writes)
				}
				got, err := real.Get(t.Context(), r.ID)
				if err != nil {
					t.Fatal(err)
				}
				// The recording notifier numbers its posts: the card was the first.
				if got.MessageTS != "1700000000.000001" {
					t.Errorf("recorded ts %q, want the posted card's 1700000000.000001", got.MessageTS)
				}
				if pending, err := real.PendingOutbox(t.Context()); err != nil || pending != 0 {
					t.Errorf("%d messages pending after the rounds (err %v), want 0", pending, err)
				}
				if told < 2 {
					t.Errorf("%d notices told, want the card and the messages behind it", told)
				}
			})
		}
	}
}
