package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// Deactivating a Metabase user stops their logins, not what they created: their dashboard
// subscriptions and alerts keep running with their permissions (metabase/metabase#52407,
// #56053; docs/metabase-notifications.md). This file looks those items up when a request is
// made, so the card shows them before anyone approves, and checks the hand-over a request asks
// for. handover.go carries the hand-over out; orphans.go reports what earlier offboardings left.

// Bounds that keep one request's lookups and stored row small.
const (
	// maxListedItems is how many items per target a request stores for its card and thread;
	// the counts stay exact, and execution re-lists everything anyway.
	maxListedItems = 200
	// maxCollectionCounts is how many targets' personal collections one request counts:
	// Metabase counts one collection per call, so a bulk request stops there.
	maxCollectionCounts = 25
	// lookupConcurrency bounds the reads one request has in flight in one instance while it is
	// made (user lookups, personal collection counts): enough that fifty targets are looked up in
	// four rounds, well under the 50 threads of Metabase's Jetty (MB_JETTY_MAXTHREADS).
	lookupConcurrency = 16
	// maxItemName and maxItemChannels bound what an item carries into the store and the card.
	maxItemName     = 200
	maxItemChannels = 10
)

// Notifications is the part of the Metabase client that reads and hands over what users leave
// running (package metabase: Client.Notifications and the calls beside it). It is optional:
// without it cards show nothing extra and hand-overs are refused.
type Notifications interface {
	// Notifications lists every active subscription and alert: one call per kind.
	Notifications(ctx context.Context) (*metabase.Inventory, error)
	// Orphaned lists the items of deactivated creators, with those creators.
	Orphaned(ctx context.Context) (*metabase.OrphanReport, error)
	PersonalCollectionItemCount(ctx context.Context, u *metabase.User) (int, error)
	// ChangeAlertCreator and ArchiveAlerts return an error matching metabase.ErrNotSupported
	// where this Metabase cannot do it.
	ChangeAlertCreator(ctx context.Context, ids []int, newCreatorID int) (int, error)
	ArchiveAlerts(ctx context.Context, ids []int) (int, error)
	// ArchiveSubscription is idempotent; a missing subscription matches metabase.ErrNotFound.
	ArchiveSubscription(ctx context.Context, id int) error
}

// HandoverRequest is the hand-over a person asked for with a disable (`handover <user>
// [archive]`), or with the orphans report's request.
type HandoverRequest struct {
	// Successor takes over the alerts; nil asks to archive only (the orphans request).
	Successor *TargetRef
	// Archive archives what cannot move instead of leaving it in place and listing it.
	Archive bool
	// Instance is the one instance the hand-over works in, when the request was limited to one
	// (--instance); otherwise the targets' instance, which must be the same for all.
	Instance string
}

// handoverInstance is the instance a hand-over works in: the one named, or the one instance all
// targets are in; "" when the targets span several.
func handoverInstance(targets []approval.Target, named string) string {
	if named != "" {
		return named
	}
	name := approval.DefaultInstance
	for i, t := range targets {
		if i == 0 {
			name = t.InstanceName()
		} else if t.InstanceName() != name {
			return ""
		}
	}
	return name
}

// Refusal codes of hand-overs.
const (
	// HandoverUnavailable: this bot cannot read what users leave running in Metabase.
	HandoverUnavailable Code = "handover_unavailable"
	// HandoverOnlyDisable: a hand-over goes with a disable, never with an enable.
	HandoverOnlyDisable Code = "handover_only_disable"
	// HandoverNeedsSuccessor: a hand-over names a successor, or archives.
	HandoverNeedsSuccessor Code = "handover_needs_successor"
	// SuccessorInactive: the successor Subject (email) is deactivated in Metabase.
	SuccessorInactive Code = "successor_inactive"
	// SuccessorIsTarget: the successor Subject is also one of the users to disable.
	SuccessorIsTarget Code = "successor_is_target"
	// SuccessorAPIKey: the successor Subject is an API key, not a person.
	SuccessorAPIKey Code = "successor_api_key"
	// HandoverOneInstance: a hand-over works in one Metabase instance, and the targets are in
	// several; Subject lists the configured instances.
	HandoverOneInstance Code = "handover_one_instance"
)

// ErrSuccessor marks a refusal (or a failed check) of a hand-over's successor, so a form shows it
// next to the successor's field rather than the targets'.
var ErrSuccessor = errors.New("the successor cannot take over")

// extend adds to a request build made the hand-over it asks for.
func (s validator) extend(ctx context.Context, c ChangeRequest, r approval.Request) (approval.Request, error) {
	if c.Handover == nil {
		return r, nil
	}
	h, err := s.handover(ctx, c.Action, *c.Handover, r.Targets)
	if err != nil {
		return approval.Request{}, fmt.Errorf("%w: %w", ErrSuccessor, err)
	}
	r.Handover = h
	return r, nil
}

// lookUp adds to a disable about to be created what its targets leave running. It runs when the
// request is created, not when it is prepared: a form prepares within Slack's 3 s, and listing
// every subscription of a large Metabase can take longer. The listing itself was started when the
// request was prepared (prefetch.go), at the same time as the target lookup, so here it is
// usually under way or done.
//
// Each instance is listed at the same time as the others, and the personal collections are
// counted while the listing runs, so a request naming users in three instances waits for the
// slowest call, not for the sum. Targets whose instance did not answer their lookup are left
// without consequences.
func (s lookups) lookUp(ctx context.Context, r approval.Request) approval.Request {
	if r.Action != approval.Disable || r.Lookup != nil {
		return r
	}
	pre := s.takePrefetch(r.ID)
	groups := byInstance(r.Targets, func(t approval.Target) bool { return !t.Unresolved && s.in.nb(t.InstanceName()) != nil })
	if len(groups) == 0 {
		return r
	}
	r = r.Clone()
	lks := make([]*approval.Lookup, len(groups))
	var wg sync.WaitGroup
	for gi, g := range groups {
		wg.Go(func() {
			nb := s.in.nb(g.name)
			sub := make([]approval.Target, len(g.idx))
			for j, i := range g.idx {
				sub[j] = r.Targets[i]
			}
			counted, ok := pre.counts.get(ctx, g.name, sub)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if !ok {
					counted = s.countCollectionItems(ctx, nb, sub, nil)
				}
			}()
			inv, err := pre.ls.get(ctx, g.name, nb)
			<-done
			lks[gi] = s.consequences(sub, inv, err, counted)
			for j, i := range g.idx {
				r.Targets[i] = sub[j]
			}
		})
	}
	wg.Wait()
	r.Lookup = mergeLookups(groups, lks, s.in.multi())
	return r
}

// instanceGroup is the indexes of a request's targets in one instance.
type instanceGroup struct {
	name string
	idx  []int
}

// byInstance groups the indexes of the targets that keep holds for, by instance, in the order
// instances first appear.
func byInstance(targets []approval.Target, keep func(approval.Target) bool) []instanceGroup {
	var groups []instanceGroup
	for i, t := range targets {
		if !keep(t) {
			continue
		}
		name := t.InstanceName()
		gi := slices.IndexFunc(groups, func(g instanceGroup) bool { return g.name == name })
		if gi < 0 {
			groups = append(groups, instanceGroup{name: name})
			gi = len(groups) - 1
		}
		groups[gi].idx = append(groups[gi].idx, i)
	}
	return groups
}

// mergeLookups makes one request's Lookup of the instances' own: what the card says about the
// lookup holds for every instance (a capability only when each has it), and an instance that
// could not be listed is named in the error.
func mergeLookups(groups []instanceGroup, lks []*approval.Lookup, named bool) *approval.Lookup {
	if len(lks) == 1 {
		return lks[0]
	}
	out := *lks[0]
	out.Error = ""
	var errs []string
	for gi, lk := range lks {
		if gi > 0 {
			if lk.At.After(out.At) {
				out.At = lk.At
			}
			out.RunStatus = out.RunStatus && lk.RunStatus
			out.MoveAlerts = out.MoveAlerts && lk.MoveAlerts
			out.ArchiveAlerts = out.ArchiveAlerts && lk.ArchiveAlerts
			out.ArchiveAlertsEmails = out.ArchiveAlertsEmails || lk.ArchiveAlertsEmails
			out.CollectionsNotCounted += lk.CollectionsNotCounted
			if out.Version != lk.Version {
				out.Version = ""
			}
		}
		if lk.Error != "" {
			if named {
				errs = append(errs, groups[gi].name+": "+lk.Error)
			} else {
				errs = append(errs, lk.Error)
			}
		}
	}
	out.Error = strings.Join(errs, "; ")
	return &out
}

// handover checks the successor: an active Metabase person who is not one of the targets.
//
// A hand-over works in one instance, the successor's: the targets must all be there (name the
// instance with --instance when there are several).
func (s validator) handover(ctx context.Context, action approval.Action, h HandoverRequest, targets []approval.Target) (*approval.Handover, error) {
	instance := handoverInstance(targets, h.Instance)
	switch {
	case instance == "":
		return nil, refuse(HandoverOneInstance, strings.Join(s.in.names(), ", "))
	case s.in.nb(instance) == nil:
		return nil, refuse(HandoverUnavailable, "")
	case action != approval.Disable && action != approval.HandOver:
		return nil, refuse(HandoverOnlyDisable, string(action))
	case h.Successor == nil && !h.Archive:
		return nil, refuse(HandoverNeedsSuccessor, "")
	}
	out := &approval.Handover{Archive: h.Archive}
	if h.Successor == nil {
		return out, nil
	}
	ref := *h.Successor
	if ref.Instance != "" && ref.Instance != instance {
		// Another instance's id names another person here: never re-read it in this one.
		return nil, refuse(HandoverOneInstance, strings.Join(s.in.names(), ", "))
	}
	ref.Instance = instance
	u, err := s.resolveIn(ctx, instance, ref)
	if err != nil {
		return nil, err
	}
	switch {
	case !u.IsActive:
		return nil, refuse(SuccessorInactive, u.Email)
	case u.IsAPIKey():
		return nil, refuse(SuccessorAPIKey, u.Email)
	}
	for _, t := range targets {
		if t.UserID == u.ID {
			return nil, refuse(SuccessorIsTarget, u.Email)
		}
	}
	out.SuccessorID, out.SuccessorEmail, out.SuccessorName = u.ID, u.Email, u.Name()
	return out, nil
}

// consequences fills each target's Consequences from one inventory (listed once per request,
// whatever the number of targets) and the personal collection counts made meanwhile, and returns
// how the lookup went.
func (s lookups) consequences(targets []approval.Target, inv *metabase.Inventory, invErr error, counted collectionCounts) *approval.Lookup {
	lk := &approval.Lookup{At: s.now()}
	if invErr != nil {
		lk.Error = FailureText(invErr)
		s.log.WithError(invErr).Warn("Could not list the subscriptions and alerts the targets leave running")
	} else {
		lk.Version = inv.Capabilities.Version.Tag
		lk.RunStatus, lk.MoveAlerts, lk.ArchiveAlerts = inv.Capabilities.AlertRunStatus, inv.Capabilities.MoveAlerts, inv.Capabilities.ArchiveAlerts
		lk.ArchiveAlertsEmails = inv.Capabilities.ArchiveAlertsEmails
		ids := make([]int, len(targets))
		for i, t := range targets {
			ids[i] = t.UserID
		}
		created := inv.CreatedBy(ids...)
		for i := range targets {
			targets[i].Consequences = ConsequencesOf(created[targets[i].UserID])
		}
	}
	lk.CollectionsNotCounted = counted.apply(targets)
	return lk
}

// collectionCounts is the item count of each target's personal collection, -1 where it was not
// counted.
type collectionCounts []int

// apply writes the counts into the targets' Consequences and returns how many were not counted.
func (cc collectionCounts) apply(targets []approval.Target) int {
	uncounted := 0
	for i := range targets {
		t := &targets[i]
		if t.Consequences == nil {
			t.Consequences = &approval.Consequences{}
		}
		t.Consequences.CollectionItems = cc[i]
		if cc[i] < 0 {
			uncounted++
		}
	}
	return uncounted
}

// countCollections counts the items of the targets' personal collections, for at most
// maxCollectionCounts targets, and returns how many it did not count.
func (s lookups) countCollections(ctx context.Context, nb Notifications, targets []approval.Target, known []metabase.User) int {
	return s.countCollectionItems(ctx, nb, targets, known).apply(targets)
}

// countCollectionItems counts the items of the targets' personal collections, for at most
// maxCollectionCounts targets, lookupConcurrency at a time; it only reads targets. known are
// users already read (with their collection ids), to spare a lookup.
func (s lookups) countCollectionItems(ctx context.Context, nb Notifications, targets []approval.Target, known []metabase.User) collectionCounts {
	byID := make(map[int]metabase.User, len(known))
	for _, u := range known {
		byID[u.ID] = u
	}
	out := make(collectionCounts, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, lookupConcurrency)
	for i := range targets {
		t := targets[i]
		if i >= maxCollectionCounts {
			out[i] = -1
			continue
		}
		u, ok := byID[t.UserID]
		if !ok {
			// Without the collection id (a user read by id), the client finds it by email.
			u = metabase.User{ID: t.UserID, Email: t.Email, PersonalCollectionID: t.CollectionID}
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			n, err := nb.PersonalCollectionItemCount(ctx, &u)
			if err != nil {
				s.log.WithError(err).WithField("metabase_user_id", t.UserID).Warn("Could not count a personal collection")
				n = -1
			}
			out[i] = n
		})
	}
	wg.Wait()
	return out
}

// ConsequencesOf summarises one user's items for a card or a report, subscriptions first, listing
// at most maxListedItems of them.
func ConsequencesOf(items []metabase.Notification) *approval.Consequences {
	c := &approval.Consequences{}
	for i := range items {
		n := &items[i]
		if n.Kind == metabase.KindSubscription {
			c.Subscriptions++
		} else {
			c.Alerts++
		}
		if n.Failing() {
			c.Failing++
		}
		if len(c.Items) < maxListedItems {
			c.Items = append(c.Items, ItemOf(n))
		} else {
			c.More++
		}
	}
	return c
}

// ItemOf is the stored form of one subscription or alert, bounded in size.
func ItemOf(n *metabase.Notification) approval.Item {
	it := approval.Item{Kind: approval.Alert, ID: n.ID, Name: truncateRunes(n.Name, maxItemName), CardID: n.CardID,
		Recipients: n.EmailUsers + n.EmailAddresses + n.EmailGroups + n.Webhooks, Failing: n.Failing()}
	if n.Kind == metabase.KindSubscription {
		it.Kind, it.DashboardID, it.CardID = approval.Subscription, n.DashboardID, 0
	}
	for i, ch := range n.SlackChannels {
		if i == maxItemChannels {
			break
		}
		it.SlackChannels = append(it.SlackChannels, truncateRunes(ch, 80))
	}
	for _, run := range []*metabase.RunStatus{n.LastCheck, n.LastSend} {
		if run != nil && run.Failed && it.FailedWith == "" {
			it.FailedWith = truncateRunes(run.Error, 200)
		}
	}
	return it
}

// ListsItems reports whether any target of r created subscriptions or alerts: their full list,
// with links, goes to a thread reply under the card.
func ListsItems(r approval.Request) bool {
	for _, t := range r.Targets {
		if t.Consequences.Running() > 0 {
			return true
		}
	}
	return false
}

// ErrListNotifications wraps a failure to list subscriptions and alerts for a report or a
// clean-up request.
var ErrListNotifications = errors.New("could not list Metabase subscriptions and alerts")

// HandoverSummary says in plain words what hand-over a request asks for, for the audit trail;
// "" when it asks for none.
func HandoverSummary(r approval.Request) string {
	hv := r.Handover
	if hv == nil {
		return ""
	}
	s := "hand-over to " + hv.SuccessorEmail
	if hv.SuccessorID == 0 {
		s = "archive what they left running"
	} else if hv.Archive {
		s += ", archiving what cannot move"
	}
	return s
}

// HandoverResultSummary counts what a finished request's hand-over did, for the audit trail:
// "hand-over: moved 1, archived 2, left 0, failed 0"; "" when it had none.
func HandoverResultSummary(r approval.Request) string {
	if r.Handover == nil && r.Action != approval.HandOver {
		return ""
	}
	c := r.HandoverCounts()
	return fmt.Sprintf("hand-over: moved %d, archived %d, left %d, failed %d", c.Moved, c.Archived, c.Left, c.Failed)
}
