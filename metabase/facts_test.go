package metabase

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestFactsLearnedOnceForConcurrentCallers: callers that all need the facts
// before anything is known share one learning.
func TestFactsLearnedOnceForConcurrentCallers(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	release := s.Hold("GET", "/api/session/properties")
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			caps, err := c.Capabilities(ctx)
			if err != nil || caps.Alerts != AlertsFromNotificationAdmin {
				t.Errorf("Capabilities = %+v, %v", caps, err)
			}
		})
	}
	if err := s.WaitForRequests(ctx, "GET", "/api/session/properties", 1); err != nil {
		t.Fatal(err)
	}
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	guard(t, done, "capabilities")
	if n := countRequests(s, "GET", "/api/session/properties"); n != 1 {
		t.Fatalf("properties read %d times by 5 concurrent callers, want 1", n)
	}
}

// TestFactsStaleAnsweredAtOnce: once the facts are older than the TTL, a
// caller still gets them without waiting for Metabase, which is asked again
// in the background.
func TestFactsStaleAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	clock := &fakeClock{t: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)}
	c.now = clock.now
	if _, err := c.LearnFacts(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.mu.Lock()
	clock.t = clock.t.Add(capabilitiesTTL + time.Second)
	clock.mu.Unlock()
	release := s.Hold("GET", "/api/session/properties")
	defer release()
	done := make(chan struct{})
	go func() {
		defer close(done)
		caps, err := c.Capabilities(t.Context())
		if err != nil || caps.Alerts != AlertsFromNotificationAdmin {
			t.Errorf("Capabilities = %+v, %v", caps, err)
		}
	}()
	guard(t, done, "stale capabilities")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.WaitForRequests(ctx, "GET", "/api/session/properties", 2); err != nil {
		t.Fatalf("no refresh in the background: %v", err)
	}
	release()
	c.facts.bg.Wait()
	f, err := c.Facts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !f.LearnedAt.Equal(clock.now()) {
		t.Fatalf("facts learned at %v after the refresh, want %v", f.LearnedAt, clock.now())
	}
}

// TestKeepFactsFreshLearnsAtStart: a bot that keeps its facts fresh has
// learned them before the first request, which then asks Metabase nothing
// about the instance.
func TestKeepFactsFreshLearnsAtStart(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.KeepFactsFresh(ctx, time.Hour, func(err error) { t.Error(err) })
	}()
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := s.WaitForRequests(wctx, "GET", "/api/session/properties", 1); err != nil {
		t.Fatal(err)
	}
	// Facts joins the learning under way, or finds it done.
	if _, err := c.Facts(wctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Notifications(wctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	guard(t, stopped, "KeepFactsFresh after cancel")
	if n := countRequests(s, "GET", "/api/session/properties"); n != 1 {
		t.Fatalf("properties read %d times, want 1 (at start only)", n)
	}
}
