package bot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// reviewRequest stores a pending disable of ids in st, with its card already posted.
func reviewRequest(t *testing.T, st *store.Store, id string, ids ...int) {
	t.Helper()
	now := time.Now()
	r := approval.Request{ID: id, Action: approval.Disable, State: approval.Pending, Requester: fuzzRequester,
		ChannelID: fuzzChannel, MessageTS: fuzzCardTS, RequiredApprovals: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	for _, uid := range ids {
		r.Targets = append(r.Targets, approval.Target{UserID: uid, Email: fmt.Sprintf("u%d@example.com", uid)})
	}
	if err := st.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
}

func approveClick(id string) socketmode.Event {
	cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "UAPP"}}
	cb.Team.ID = "T1"
	cb.Channel.ID = fuzzChannel
	cb.Container.MessageTs = fuzzCardTS
	cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionApprove, BlockID: blockDecision, Value: id}}
	return socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb,
		Request: &socketmode.Request{EnvelopeID: "env-" + id, Type: "interactive"}}
}

func openReviewStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "review.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestLeaseRenewedWhileMetabaseIsSlow: an executor whose Metabase call outlasts the execution
// lease is still alive, so no replica may take the request over and disable the user a second
// time. The lease must be renewed while the call is in flight, not only when an outcome arrives.
func TestLeaseRenewedWhileMetabaseIsSlow(t *testing.T) {
	st := openReviewStore(t)
	mb := newMemMetabase(activeUsers(5)...)
	mb.hold = make(chan struct{})
	reviewRequest(t, st, "MB-LEASE001", 5)
	cfg := func(id string) Config {
		return Config{TeamID: "T1", ApproverUsers: []string{"UAPP"}, InstanceID: id,
			ExecLease: 600 * time.Millisecond, Tick: 20 * time.Millisecond}
	}
	a, err := New(cfg("A"), newFuzzSlack(nil), mb, st)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := New(cfg("B"), newFuzzSlack(nil), mb, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var loops sync.WaitGroup
	for _, b := range []*Bot{a, replica} {
		loops.Go(func() { b.timerLoop(ctx) })
	}

	a.dispatch(ctx, &fuzzAcker{}, approveClick("MB-LEASE001"))
	// Hold the first DELETE for several lease lengths: a takeover would show as a second call.
	deadline := time.After(2 * time.Second)
	for mb.disables.Load() < 2 {
		select {
		case <-deadline:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	close(mb.hold)
	cancel()
	loops.Wait()
	a.inflight.Wait()
	replica.inflight.Wait()
	if n := mb.disables.Load(); n != 1 {
		t.Fatalf("DisableUser called %d times for one approval, want 1 (the live executor's lease ran out and another executor took over)", n)
	}
	r, err := st.Get(t.Context(), "MB-LEASE001")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != approval.Succeeded || r.Attempts != 1 {
		t.Fatalf("request state %s after %d attempts, want succeeded after 1", r.State, r.Attempts)
	}
}

// TestExecutionStopsAfterLosingLease: once another executor owns the request, the one that lost
// the lease must stop calling Metabase, not work through every remaining target in parallel with
// the new owner.
func TestExecutionStopsAfterLosingLease(t *testing.T) {
	st := openReviewStore(t)
	const targets = 40
	ids := make([]int, targets)
	for i := range ids {
		ids[i] = 100 + i
	}
	mb := newMemMetabase(activeUsers(ids...)...)
	reviewRequest(t, st, "MB-LOST0001", ids...)
	mb.onDisable = func(n int32) {
		if n != 1 {
			return
		}
		// Another replica takes the request over (as if this process had been presumed dead).
		_, err := st.Update(context.Background(), "MB-LOST0001", func(r *approval.Request) ([]store.Outbox, error) {
			r.LeaseOwner, r.LeaseUntil = "B", time.Now().Add(time.Hour)
			return nil, nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	b, err := New(Config{TeamID: "T1", ApproverUsers: []string{"UAPP"}, InstanceID: "A", BulkConcurrency: 1},
		newFuzzSlack(nil), mb, st)
	if err != nil {
		t.Fatal(err)
	}
	b.dispatch(t.Context(), &fuzzAcker{}, approveClick("MB-LOST0001"))
	b.inflight.Wait()
	if n := mb.disables.Load(); n > flushEvery+1 {
		t.Fatalf("DisableUser called %d times after the lease was lost at the first call; the executor must stop at its next check (at most %d)", n, flushEvery+1)
	}
}

// TestStartRefusesLiveLeaseOfSameOwner: the timer reads due requests from a snapshot; by the time
// it starts one, the executor in this very process may have renewed its lease. A live lease
// means a live executor, whoever holds it, so starting again would run the request twice.
func TestStartRefusesLiveLeaseOfSameOwner(t *testing.T) {
	t0 := time.Now()
	r := approval.Request{ID: "MB-X", State: approval.Approved, RequiredApprovals: 1,
		Targets: []approval.Target{{UserID: 1}}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := r.Start("A", t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Start("A", t0.Add(time.Second), time.Minute); !errors.Is(err, approval.ErrLeaseHeld) {
		t.Fatalf("Start by the holder of a live lease = %v, want ErrLeaseHeld", err)
	}
	if err := r.Start("A", t0.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatalf("Start after the lease ran out = %v, want nil", err)
	}
}

// TestRetryRefusalNamesTheState: a Retry click on a request with nothing to retry is told where
// the request stands; the refusal used the empty request the failed update returned and said
// "the request is ." instead.
func TestRetryRefusalNamesTheState(t *testing.T) {
	st := openReviewStore(t)
	now := time.Now()
	r := approval.Request{ID: "MB-RETRY001", Action: approval.Disable, State: approval.Succeeded, Requester: fuzzRequester,
		Targets:   []approval.Target{{UserID: 5, Email: "u5@example.com", Result: approval.Result{Outcome: approval.Done, At: now}}},
		ChannelID: fuzzChannel, MessageTS: fuzzCardTS, RequiredApprovals: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	sl := newFuzzSlack(nil)
	b, err := New(Config{TeamID: "T1", ApproverUsers: []string{"UAPP"}, InstanceID: "A"}, sl, newMemMetabase(activeUsers(5)...), st)
	if err != nil {
		t.Fatal(err)
	}
	evt := approveClick(r.ID)
	cb := evt.Data.(slack.InteractionCallback)
	cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionRetry, BlockID: blockThreadActions, Value: r.ID}}
	evt.Data = cb
	b.dispatch(t.Context(), &fuzzAcker{}, evt)
	b.inflight.Wait()
	texts := sl.texts()
	if len(texts) != 1 {
		t.Fatalf("sent %d messages, want one ephemeral refusal: %q", len(texts), texts)
	}
	if !strings.Contains(texts[0], "the request is disabled.") {
		t.Fatalf("refusal = %q, want it to say the request is disabled", texts[0])
	}
}
