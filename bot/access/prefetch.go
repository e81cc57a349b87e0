package access

import (
	"context"
	"sync"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// The listing of what users leave running does not depend on who the targets are: it lists the
// whole instance. So a disable starts it when the request is prepared, at the same moment as the
// target lookup, and the card waits for the slower of the two rather than for their sum. The
// listing belongs to that one request (prefetches, keyed by its id) and is only ever shown on its
// card: a hand-over lists again, for itself, when it runs (handover.go).

// prefetchKeep bounds how long a listing started for a request that was never created (a
// redelivery, a refusal after preparing) is kept before it is dropped.
const prefetchKeep = 5 * time.Minute

// listing is one instance's listing under way for one request.
type listing struct {
	done chan struct{}
	inv  *metabase.Inventory
	err  error
}

// listings are a request's listings by instance.
type listings map[string]*listing

// get returns instance's listing: the one started when the request was prepared, or a new one.
func (ls listings) get(ctx context.Context, instance string, nb Notifications) (*metabase.Inventory, error) {
	l, ok := ls[instance]
	if !ok {
		return nb.Notifications(ctx)
	}
	select {
	case <-l.done:
		return l.inv, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// prefetches holds the listings started for prepared requests until they are created.
type prefetches struct {
	mu sync.Mutex
	m  map[string]prefetched
}

type prefetched struct {
	ls listings
	at time.Time
}

// startListings starts, for a disable about to be prepared, the listing of every instance its
// targets may be in. The listings outlive ctx's cancellation (the request is created after a
// form's submission is answered), bounded by the client's own timeouts.
func (s lookups) startListings(ctx context.Context, c ChangeRequest) listings {
	if c.Action != approval.Disable {
		return nil
	}
	names := map[string]bool{}
	switch {
	case c.Resolved != nil:
		for _, iu := range c.Resolved {
			names[iu.Instance] = true
		}
	default:
		for _, ref := range c.Targets {
			in, err := validator(s).instancesFor(ref)
			if err != nil {
				continue // refused when the targets are looked up
			}
			for _, n := range in {
				names[n] = true
			}
		}
	}
	ls := listings{}
	bg := context.WithoutCancel(ctx)
	for name := range names {
		nb := s.in.nb(name)
		if nb == nil {
			continue
		}
		l := &listing{done: make(chan struct{})}
		ls[name] = l
		go func() {
			defer close(l.done)
			l.inv, l.err = nb.Notifications(bg)
		}()
	}
	return ls
}

// keepPrefetch keeps a prepared request's listings until it is created.
func (s lookups) keepPrefetch(id string, ls listings) {
	if len(ls) == 0 {
		return
	}
	p := &s.prefetch
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]prefetched{}
	}
	now := time.Now()
	for k, v := range p.m {
		if now.Sub(v.at) > prefetchKeep {
			delete(p.m, k)
		}
	}
	p.m[id] = prefetched{ls: ls, at: now}
}

// takePrefetch returns (and forgets) the listings started for request id; nil when there are none.
func (s lookups) takePrefetch(id string) listings {
	p := &s.prefetch
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.m[id]
	delete(p.m, id)
	return v.ls
}
