package bot

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// TestPacerSpacesCallsOnceLimited: a key is free until Slack rate limits it; then calls get slots
// a spacing apart, starting after the wait Slack asked for, and a caller whose slot lies past its
// deadline is told how long to wait instead of being booked.
func TestPacerSpacesCallsOnceLimited(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	p := newPacer()
	p.now = func() time.Time { return now }
	ctx := context.Background()
	if w, ok := p.reserve(ctx, "chat.postMessage:C1"); !ok || w != 0 {
		t.Fatalf("an unlimited key: wait %s, ok %v; want no wait", w, ok)
	}
	p.limited("chat.postMessage:C1", 2*time.Second)
	var waits []time.Duration
	for range 3 {
		w, ok := p.reserve(ctx, "chat.postMessage:C1")
		if !ok {
			t.Fatal("refused without a deadline")
		}
		waits = append(waits, w)
	}
	want := []time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits = %v, want %v", waits, want)
		}
	}
	if w, _ := p.reserve(ctx, "chat.postMessage:C2"); w != 0 {
		t.Fatalf("another channel waits %s, want none", w)
	}
	short, cancel := context.WithDeadline(ctx, now.Add(3*time.Second))
	defer cancel()
	if w, ok := p.reserve(short, "chat.postMessage:C1"); ok || w != 5*time.Second {
		t.Fatalf("past the deadline: wait %s, ok %v; want 5s and not booked", w, ok)
	}
	if w, _ := p.reserve(ctx, "chat.postMessage:C1"); w != 5*time.Second {
		t.Fatalf("the refused caller booked a slot: the next waits %s, want 5s", w)
	}
	now = now.Add(pacedFor + 10*time.Second)
	if w, ok := p.reserve(ctx, "chat.postMessage:C1"); !ok || w != 0 {
		t.Fatalf("a minute after the last limit: wait %s, want none (bursts allowed again)", w)
	}
	if d := retryAfter(&slack.RateLimitedError{RetryAfter: 7 * time.Second}); d != 7*time.Second {
		t.Fatalf("retryAfter of a 429 = %s, want its Retry-After", d)
	}
}
