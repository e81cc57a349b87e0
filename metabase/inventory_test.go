package metabase

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// guard fails the test when ch has not closed within a generous bound, so a
// regression to waiting shows as a failure rather than a hung test.
func guard(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting", what)
	}
}

// TestNotificationsListSubscriptionsAndAlertsAtOnce: the alert listing is
// sent while the subscription listing is still unanswered, so a request
// waits one round trip for both.
func TestNotificationsListSubscriptionsAndAlertsAtOnce(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	if _, err := c.LearnFacts(t.Context()); err != nil {
		t.Fatal(err)
	}
	release := s.Hold("GET", "/api/pulse")
	defer release()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.Notifications(t.Context()); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Two admin listings: the facts' probe, then this listing's.
	if err := s.WaitForRequests(ctx, "GET", "/api/notification/admin", 2); err != nil {
		t.Fatalf("alert listing not sent while the subscriptions were being listed: %v", err)
	}
	release()
	guard(t, done, "listing")
}

// TestNotificationsShareOneListing: requests made while a listing is under
// way share it, and an Unshared caller (a hand-over about to write) lists
// for itself.
func TestNotificationsShareOneListing(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	s.SeedSubscriptions(30, []int{annID, deeID})
	if _, err := c.LearnFacts(t.Context()); err != nil {
		t.Fatal(err)
	}
	release := s.Hold("GET", "/api/pulse")
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	first := make(chan struct{})
	wg.Go(func() {
		defer close(first)
		if _, err := c.Notifications(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := s.WaitForRequests(ctx, "GET", "/api/pulse", 1); err != nil {
		t.Fatal(err)
	}
	results := make([]*Inventory, 3)
	for i := range results {
		wg.Go(func() {
			inv, err := c.Notifications(ctx)
			if err != nil {
				t.Error(err)
			}
			results[i] = inv
		})
	}
	wg.Go(func() {
		if _, err := c.Notifications(Unshared(ctx)); err != nil {
			t.Error(err)
		}
	})
	if err := s.WaitForRequests(ctx, "GET", "/api/pulse", 2); err != nil {
		t.Fatalf("the unshared listing did not list for itself: %v", err)
	}
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	guard(t, done, "listings")
	if n := countRequests(s, "GET", "/api/pulse"); n != 2 {
		t.Fatalf("GET /api/pulse %d times, want 2 (one shared, one unshared)", n)
	}
	for i, inv := range results {
		if inv == nil || len(inv.Subscriptions) != 30 {
			t.Fatalf("caller %d got %+v, want the shared listing of 30 subscriptions", i, inv)
		}
	}
	// Once it is answered, the next request lists again: nothing is cached.
	if _, err := c.Notifications(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRequests(s, "GET", "/api/pulse"); n != 3 {
		t.Fatalf("GET /api/pulse %d times after the listings ended, want 3", n)
	}
}

// TestOrphanedListsAtOnce: the deactivated users are listed while the
// subscriptions are still being listed.
func TestOrphanedListsAtOnce(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	if _, err := c.LearnFacts(t.Context()); err != nil {
		t.Fatal(err)
	}
	release := s.Hold("GET", "/api/pulse")
	defer release()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.Orphaned(t.Context()); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.WaitForRequests(ctx, "GET", "/api/user", 1); err != nil {
		t.Fatalf("users not listed while the subscriptions were being listed: %v", err)
	}
	release()
	guard(t, done, "orphans")
}
