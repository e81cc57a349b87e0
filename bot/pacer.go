package bot

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// pacedFor is how long the pacer keeps spacing calls on a key after Slack last rate limited it;
// then bursts are allowed again.
const pacedFor = time.Minute

// pacer spaces this process's calls on one rate-limited resource (chat.postMessage into one
// channel, chat.update) once Slack has asked it to slow down. Without it, every message waiting for
// the same channel is retried at the same moment after a Retry-After, one gets through and the
// others are refused again: most calls are wasted and the queue drains far slower than the limit
// allows. With it, calls go out one per spacing, the documented rate (docs/slack.md#rate-limits),
// and a caller that would wait past its deadline is told how long instead.
type pacer struct {
	mu    sync.Mutex
	next  map[string]time.Time // the earliest time of the next call on a paced key
	until map[string]time.Time // when pacing a key stops
	now   func() time.Time
}

func newPacer() *pacer {
	return &pacer{next: map[string]time.Time{}, until: map[string]time.Time{}, now: time.Now}
}

// spacing is the documented rate of a key's resource: about one message a second per channel for
// chat.postMessage, Tier 3 (50 a minute) for chat.update.
func spacing(key string) time.Duration {
	switch key {
	case "chat.update":
		return 1200 * time.Millisecond
	case "usergroups.users.list":
		return 3 * time.Second // Tier 2
	}
	return time.Second
}

// reserve books the next call on key. It returns how long to wait for it (zero when the key is not
// paced), or ok false with the wait when that is past ctx's deadline, booking nothing.
func (p *pacer) reserve(ctx context.Context, key string) (wait time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !now.Before(p.until[key]) {
		return 0, true
	}
	slot := p.next[key]
	if slot.Before(now) {
		slot = now
	}
	wait = slot.Sub(now)
	if dl, has := ctx.Deadline(); has && now.Add(wait).After(dl) {
		return wait, false
	}
	p.next[key] = slot.Add(spacing(key))
	return wait, true
}

// reserveWait says how long the next call on key would wait, and whether that is within ctx's
// deadline, booking nothing.
func (p *pacer) reserveWait(ctx context.Context, key string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	wait := max(p.next[key].Sub(now), 0)
	if dl, has := ctx.Deadline(); has && now.Add(wait).After(dl) {
		return wait, false
	}
	return wait, true
}

// limited records that Slack rate limited a call on key and asked to wait retryAfter.
func (p *pacer) limited(key string, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if at := now.Add(retryAfter); at.After(p.next[key]) {
		p.next[key] = at
	}
	p.until[key] = now.Add(pacedFor)
}

// call runs f as the next paced call on key, waiting for its slot within ctx. A rate limit Slack
// answers makes the key paced. The error is f's, or a *slack.RateLimitedError carrying the wait
// when the slot is past ctx's deadline.
func (p *pacer) call(ctx context.Context, key string, f func() error) error {
	wait, ok := p.reserve(ctx, key)
	if !ok {
		return &slack.RateLimitedError{RetryAfter: wait}
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	err := f()
	if rateLimited(err) {
		p.limited(key, retryAfter(err))
	}
	return err
}

// retryAfter is the wait Slack asked for: Retry-After on HTTP 429, a second for an ok:false
// rate_limited, which carries none.
func retryAfter(err error) time.Duration {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) && rl.RetryAfter > 0 {
		return rl.RetryAfter
	}
	return time.Second
}
