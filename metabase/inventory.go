package metabase

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
)

// A listing of every subscription and alert is the costliest read the bot
// makes: a busy Metabase takes seconds to answer a large GET /api/pulse.
// Requests made at the same moment share one listing (inventoryFlight),
// and its two calls run at once, so a request waits one round trip for it
// and a burst of requests costs Metabase one listing, not one each.

// inventoryFlight is one listing under way; done closes when inv and err
// are set.
type inventoryFlight struct {
	done chan struct{}
	inv  *Inventory
	err  error
}

// inventoryShare is the listing under way that callers may join.
type inventoryShare struct {
	mu     sync.Mutex
	flight *inventoryFlight
}

// unsharedKey marks a context whose listings must be made for it alone.
type unsharedKey struct{}

// Unshared returns a context under which Notifications (and Orphaned) list
// afresh instead of joining a listing already under way: a listing that
// started before the caller needed it may miss an item created a moment
// ago, which a card can live with (it says when it was read) but a write
// that hands items over must not.
func Unshared(ctx context.Context) context.Context {
	return context.WithValue(ctx, unsharedKey{}, true)
}

func isUnshared(ctx context.Context) bool {
	v, _ := ctx.Value(unsharedKey{}).(bool)
	return v
}

// Notifications lists every active dashboard subscription and alert with
// its creator and recipients: one call for the subscriptions (GET
// /api/pulse, which shows an admin all of them) and, at the same time, one
// for the alerts (see Capabilities.Alerts), whatever their number up to
// 10,000 alerts. The capabilities come from the client's Facts, learned
// once. It needs an admin credential: for anyone else Metabase lists only
// their own.
//
// A caller arriving while another listing is under way shares its answer,
// unless its context is Unshared.
func (c *Client) Notifications(ctx context.Context) (*Inventory, error) {
	if isUnshared(ctx) {
		return c.listInventory(ctx)
	}
	c.inventory.mu.Lock()
	fl := c.inventory.flight
	if fl == nil {
		fl = &inventoryFlight{done: make(chan struct{})}
		c.inventory.flight = fl
		// Detached from the first caller, so that its giving up does not
		// fail the others; bounded like any call with its retries.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout+c.retry.Budget)
		go func() {
			defer cancel()
			fl.inv, fl.err = c.listInventory(lctx)
			c.inventory.mu.Lock()
			c.inventory.flight = nil
			c.inventory.mu.Unlock()
			close(fl.done)
		}()
	}
	c.inventory.mu.Unlock()
	select {
	case <-fl.done:
		return fl.inv, fl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// listInventory makes one listing: the subscriptions and the alerts at the
// same time.
func (c *Client) listInventory(ctx context.Context) (*Inventory, error) {
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	var subs, alerts []Notification
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		subs, err = c.listSubscriptions(gctx)
		return err
	})
	g.Go(func() (err error) {
		alerts, err = c.listAlerts(gctx, caps)
		if errors.Is(err, ErrNotSupported) {
			// Metabase changed version since the facts were learned: learn
			// them again.
			c.forgetCapabilities()
			if caps, err = c.Capabilities(gctx); err != nil {
				return err
			}
			alerts, err = c.listAlerts(gctx, caps)
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return &Inventory{Capabilities: caps, Subscriptions: subs, Alerts: alerts}, nil
}
