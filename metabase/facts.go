package metabase

import (
	"context"
	"sync"
	"time"
)

// Facts is what the bot knows about one Metabase instance as a whole, as
// opposed to any user in it: its version and what it can do. They change
// only when the instance is upgraded or reconfigured, so a request must
// not pay a round trip to ask again: the client learns them once (at
// start-up with KeepFactsFresh, or on first use), answers from memory
// afterwards, refreshes them in the background once they are older than
// capabilitiesTTL, and learns them again at once when a call shows they
// changed (an endpoint they promised answered ErrNotSupported).
//
// Later reads of the instance's settings (API keys, public links, SSO and
// SCIM settings) belong here too: add a field, learn it in learnFacts.
type Facts struct {
	// Capabilities is what the instance can do with subscriptions and
	// alerts (capabilities.go).
	Capabilities Capabilities
	// LearnedAt is when these facts were read from Metabase.
	LearnedAt time.Time
}

// factsCache holds one client's Facts and the learning under way.
type factsCache struct {
	mu    sync.Mutex
	facts Facts
	ok    bool // facts are known (and not forgotten)
	// flight is the learning under way, shared by every caller that needs
	// it: nil when none runs.
	flight *factsFlight
	// bg tracks background refreshes, so tests can wait for them.
	bg sync.WaitGroup
}

// factsFlight is one learning of the facts; done closes when facts and err
// are set.
type factsFlight struct {
	done  chan struct{}
	facts Facts
	err   error
}

// Facts returns what the client knows about the instance. Known facts come
// back at once, even when older than capabilitiesTTL (a refresh then starts
// in the background); unknown ones are learned now, one learning shared by
// every concurrent caller.
func (c *Client) Facts(ctx context.Context) (Facts, error) {
	c.facts.mu.Lock()
	if c.facts.ok {
		f := c.facts.facts
		if c.now().Sub(f.LearnedAt) >= capabilitiesTTL && c.facts.flight == nil {
			c.startLearning(true)
		}
		c.facts.mu.Unlock()
		return f, nil
	}
	return c.joinLearning(ctx)
}

// LearnFacts reads the facts from Metabase now (joining a learning already
// under way) and returns them.
func (c *Client) LearnFacts(ctx context.Context) (Facts, error) {
	c.facts.mu.Lock()
	return c.joinLearning(ctx)
}

// joinLearning waits for the learning under way, starting one when there is
// none. It is called with c.facts.mu held and releases it.
func (c *Client) joinLearning(ctx context.Context) (Facts, error) {
	fl := c.facts.flight
	if fl == nil {
		fl = c.startLearning(false)
	}
	c.facts.mu.Unlock()
	select {
	case <-fl.done:
		return fl.facts, fl.err
	case <-ctx.Done():
		return Facts{}, ctx.Err()
	}
}

// KeepFactsFresh learns the facts at once and again every interval (at
// most capabilitiesTTL) until ctx ends, so no request waits to learn them.
// A failed learning is logged by the caller through onErr (nil ignores
// it) and retried at the next tick; requests meanwhile learn on demand.
func (c *Client) KeepFactsFresh(ctx context.Context, interval time.Duration, onErr func(error)) {
	if interval <= 0 || interval > capabilitiesTTL {
		interval = capabilitiesTTL
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := c.LearnFacts(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startLearning starts a learning of the facts, detached from any caller's
// context so that one caller giving up does not fail the others. c.facts.mu
// must be held.
func (c *Client) startLearning(background bool) *factsFlight {
	fl := &factsFlight{done: make(chan struct{})}
	c.facts.flight = fl
	if background {
		c.facts.bg.Add(1)
	}
	go func() {
		if background {
			defer c.facts.bg.Done()
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.learnTimeout())
		defer cancel()
		caps, err := c.detectCapabilities(ctx)
		fl.facts, fl.err = Facts{Capabilities: caps, LearnedAt: c.now()}, err
		c.facts.mu.Lock()
		if err == nil {
			c.facts.facts, c.facts.ok = fl.facts, true
		}
		// A failed background refresh keeps what was known: it was true a
		// moment ago, and a call it made wrong says so (ErrNotSupported).
		c.facts.flight = nil
		c.facts.mu.Unlock()
		close(fl.done)
	}()
	return fl
}

// learnTimeout bounds one learning: its few calls, each with retries.
func (c *Client) learnTimeout() time.Duration {
	return 3*c.timeout + c.retry.Budget
}

// forgetCapabilities drops the remembered facts, after an endpoint they
// promised answered ErrNotSupported (Metabase was changed under us): the
// next caller learns them again before going on.
func (c *Client) forgetCapabilities() {
	c.facts.mu.Lock()
	c.facts.ok = false
	c.facts.mu.Unlock()
}
