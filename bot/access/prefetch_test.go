package access

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// submitJane submits the fixture's disable of jane in the background; the channel yields the
// request once Submit returns.
func submitJane(t *testing.T, s *Service) <-chan approval.Request {
	t.Helper()
	out := make(chan approval.Request, 1)
	go func() {
		r, err := s.Submit(context.Background(), ChangeRequest{Action: approval.Disable, Reason: "left",
			Requester: "UREQ", Channel: "COPS", Targets: []TargetRef{{Kind: ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}})
		if err != nil {
			t.Error(err)
		}
		out <- r
	}()
	return out
}

func waitRequest(t *testing.T, ch <-chan approval.Request) approval.Request {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Submit still waiting")
		return approval.Request{}
	}
}

// TestSubmitListsWhileLookingUpTargets: a disable's listing of subscriptions and alerts is sent
// while the target lookup is still unanswered, so the card waits for the slower of the two, not
// their sum.
func TestSubmitListsWhileLookingUpTargets(t *testing.T) {
	t.Parallel()
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	s := f.newService("prefetch")
	if _, err := f.client.LearnFacts(t.Context()); err != nil {
		t.Fatal(err)
	}
	release := f.fake.Hold("GET", "/api/user")
	defer release()
	done := submitJane(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := f.fake.WaitForRequests(ctx, "GET", "/api/pulse", 1); err != nil {
		t.Fatalf("subscriptions not listed while the target was looked up: %v", err)
	}
	if err := f.fake.WaitForRequests(ctx, "GET", "/api/notification/admin", 2); err != nil {
		t.Fatalf("alerts not listed while the target was looked up: %v", err)
	}
	release()
	r := waitRequest(t, done)
	c := r.Targets[0].Consequences
	if c == nil || c.Subscriptions != 2 || c.Alerts != 1 || c.CollectionItems != 3 {
		t.Fatalf("consequences %+v, want 2 subscriptions, 1 alert, 3 collection items", c)
	}
}

// TestSubmitCountsCollectionsWhileListing: the personal collection is counted while the listing
// is still unanswered.
func TestSubmitCountsCollectionsWhileListing(t *testing.T) {
	t.Parallel()
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	s := f.newService("counts")
	if _, err := f.client.LearnFacts(t.Context()); err != nil {
		t.Fatal(err)
	}
	release := f.fake.Hold("GET", "/api/pulse")
	defer release()
	done := submitJane(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := f.fake.WaitForRequests(ctx, "GET", "/api/collection/", 1); err != nil {
		t.Fatalf("collection not counted while the subscriptions were listed: %v", err)
	}
	release()
	r := waitRequest(t, done)
	if c := r.Targets[0].Consequences; c == nil || c.Subscriptions != 2 || c.CollectionItems != 3 {
		t.Fatalf("consequences %+v, want 2 subscriptions and 3 collection items", c)
	}
}

// blockedListing is a Metabase whose user listing (the last-admin count) waits for release.
type blockedListing struct {
	*metabase.Client
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockedListing) ListUsers(ctx context.Context, st metabase.UserStatus) ([]metabase.User, error) {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Client.ListUsers(ctx, st)
}

// TestSubmitCountsWhileCheckingTheLastAdmin: a disable naming an admin counts the admin's personal
// collection while the last-admin check lists the active admins, rather than after it, so the
// check costs the card no round trip.
func TestSubmitCountsWhileCheckingTheLastAdmin(t *testing.T) {
	t.Parallel()
	fake := metabasetest.New(t)
	jane := fake.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", Active: true, Superuser: true})
	fake.AddUser(metabasetest.User{Email: "boss@example.com", FirstName: "Boss", Active: true, Superuser: true})
	fake.AddCollectionItem(jane.ID, metabasetest.CollectionItem{})
	client, err := metabase.New(fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	mb := &blockedListing{Client: client, entered: make(chan struct{}), release: make(chan struct{})}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{
		Policy:    Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour},
		Execution: Execution{InstanceID: "admin", BulkConcurrency: 4, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second},
	}, Deps{Store: st, Metabase: mb, Notifications: client, Directory: stubDirectory{}, Notifier: &recordingNotifier{}})
	if err != nil {
		t.Fatal(err)
	}
	defer close(mb.release)
	done := submitJane(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case <-mb.entered:
	case <-ctx.Done():
		t.Fatal("no last-admin check")
	}
	if err := fake.WaitForRequests(ctx, "GET", "/api/collection/", 1); err != nil {
		t.Fatalf("collection not counted while the last-admin check ran: %v", err)
	}
	mb.release <- struct{}{}
	r := waitRequest(t, done)
	if c := r.Targets[0].Consequences; c == nil || c.CollectionItems != 1 {
		t.Fatalf("consequences %+v, want 1 collection item", c)
	}
}
