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

// prefetched is what Prepare started for one request: its listings and its personal collection
// counts (nil when none were started).
type prefetched struct {
	ls     listings
	counts *countRun
	// left is what outlives the disable (revoke_lookup.go), looked up once the targets are
	// known, while the rest of the request is prepared; nil when it was not started.
	left chan map[int]*approval.Leftovers
	at   time.Time
}

// countRun is the personal collection counts of a request's targets, by instance, started when
// the request was prepared; done closes when counts is complete.
type countRun struct {
	done   chan struct{}
	counts map[string]collectionCounts
}

// get returns instance's counts for sub, or false when none were made for exactly those targets.
func (cr *countRun) get(ctx context.Context, instance string, sub []approval.Target) (collectionCounts, bool) {
	if cr == nil {
		return nil, false
	}
	select {
	case <-cr.done:
	case <-ctx.Done():
		return nil, false
	}
	cc, ok := cr.counts[instance]
	return cc, ok && len(cc) == len(sub)
}

// startCounts counts the personal collections of a disable's targets, each instance at the same
// time, outliving ctx's cancellation as the listings do.
func (s lookups) startCounts(ctx context.Context, r approval.Request) *countRun {
	cr := &countRun{done: make(chan struct{}), counts: map[string]collectionCounts{}}
	groups := byInstance(r.Targets, func(t approval.Target) bool { return !t.Unresolved && s.in.nb(t.InstanceName()) != nil })
	bg := context.WithoutCancel(ctx)
	go func() {
		defer close(cr.done)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, g := range groups {
			wg.Go(func() {
				sub := make([]approval.Target, len(g.idx))
				for j, i := range g.idx {
					sub[j] = r.Targets[i]
				}
				cc := s.countCollectionItems(bg, s.in.nb(g.name), sub, nil)
				mu.Lock()
				defer mu.Unlock()
				cr.counts[g.name] = cc
			})
		}
		wg.Wait()
	}()
	return cr
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

// keepPrefetch keeps what was started for a prepared request until it is created.
func (s lookups) keepPrefetch(id string, pf prefetched) {
	if len(pf.ls) == 0 && pf.counts == nil && pf.left == nil {
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
	pf.at = now
	p.m[id] = pf
}

// prefetchedLeftovers returns the look-up of what outlives the disable started for request id
// when it was prepared, or nil; it leaves the rest of what was started for lookUp to take.
func (s lookups) prefetchedLeftovers(id string) chan map[int]*approval.Leftovers {
	p := &s.prefetch
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[id].left
}

// startLeftovers looks up what outlives the disable of r's targets in the background.
func (s lookups) startLeftovers(ctx context.Context, r approval.Request) chan map[int]*approval.Leftovers {
	left := make(chan map[int]*approval.Leftovers, 1)
	go func() { left <- s.leftoversFor(ctx, r) }()
	return left
}

// takePrefetch returns (and forgets) what was started for request id; zero when nothing was.
func (s lookups) takePrefetch(id string) prefetched {
	p := &s.prefetch
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.m[id]
	delete(p.m, id)
	return v
}
