package approval

import (
	"slices"
	"time"
)

// HandOver is a request that only hands over what deactivated users left running in Metabase
// (their alerts and dashboard subscriptions): the clean-up of what earlier offboardings, made
// outside the bot, left behind. Its targets are already deactivated, and it never changes them.
// Stored in the database: never rename it.
const HandOver Action = "handover"

// ItemKind tells a dashboard subscription from an alert. Stored: never rename one.
type ItemKind string

// The kinds of items a user leaves running.
const (
	// Subscription is a dashboard subscription. No Metabase can give one a new creator.
	Subscription ItemKind = "subscription"
	// Alert is an alert on a question; the newest Metabase can give it a new creator.
	Alert ItemKind = "alert"
)

// Item is one subscription or alert a target created, as the card and its thread show it.
type Item struct {
	Kind ItemKind `json:"kind"`
	ID   int      `json:"id"`
	Name string   `json:"name,omitempty"`
	// DashboardID (subscriptions) and CardID (alerts) are what the item links to; 0 for none.
	DashboardID int `json:"dashboard_id,omitempty"`
	CardID      int `json:"card_id,omitempty"`
	// Recipients counts the email recipients and webhooks it reaches; SlackChannels are the
	// Slack channels it posts to.
	Recipients    int      `json:"recipients,omitempty"`
	SlackChannels []string `json:"slack_channels,omitempty"`
	// Failing is set where Metabase says its last run or send failed; FailedWith is Metabase's
	// reason when it gave one.
	Failing    bool   `json:"failing,omitempty"`
	FailedWith string `json:"failed_with,omitempty"`
}

// Key identifies an item across kinds: before Metabase 0.54 alerts and subscriptions share ids.
func (it Item) Key() ItemKey { return ItemKey{Kind: it.Kind, ID: it.ID} }

// ItemKey identifies an item.
type ItemKey struct {
	Kind ItemKind
	ID   int
}

// Consequences is what a target leaves running in Metabase, looked up when the request was made,
// so the card renders from the store without asking Metabase again.
type Consequences struct {
	Subscriptions int `json:"subscriptions,omitempty"`
	Alerts        int `json:"alerts,omitempty"`
	// Failing counts the items whose last run or send failed, where Metabase says so.
	Failing int `json:"failing,omitempty"`
	// CollectionItems is how many items sit in the target's personal collection; -1 when they
	// were not counted.
	CollectionItems int `json:"collection_items,omitempty"`
	// Items are the subscriptions, then the alerts; at most a bounded number (More counts the
	// rest).
	Items []Item `json:"items,omitempty"`
	More  int    `json:"more,omitempty"`
}

// Empty reports whether there is nothing to show: no subscription, no alert and no item in the
// personal collection (or none counted).
func (c *Consequences) Empty() bool {
	return c == nil || (c.Subscriptions == 0 && c.Alerts == 0 && c.CollectionItems <= 0)
}

// Running reports how many subscriptions and alerts the target created.
func (c *Consequences) Running() int {
	if c == nil {
		return 0
	}
	return c.Subscriptions + c.Alerts
}

// Lookup records how the consequences of a request were looked up, and what the connected
// Metabase could do at that moment.
type Lookup struct {
	At time.Time `json:"at"`
	// Version is the Metabase version tag, "" when unknown.
	Version string `json:"version,omitempty"`
	// RunStatus: Metabase says whether alerts failed (only its newest admin API does).
	RunStatus bool `json:"run_status,omitempty"`
	// MoveAlerts and ArchiveAlerts say what this Metabase can do with alerts; subscriptions can
	// always be archived and never moved.
	MoveAlerts    bool `json:"move_alerts,omitempty"`
	ArchiveAlerts bool `json:"archive_alerts,omitempty"`
	// ArchiveAlertsEmails: archiving an alert here makes Metabase email each of its recipients
	// that they were removed, which approvers are told before they approve.
	ArchiveAlertsEmails bool `json:"archive_alerts_emails,omitempty"`
	// Error is why the subscriptions and alerts could not be listed; empty when they were.
	Error string `json:"error,omitempty"`
	// CollectionsNotCounted is how many targets' personal collections were not counted (a bound
	// on calls for large requests, or an error).
	CollectionsNotCounted int `json:"collections_not_counted,omitempty"`
}

// Handover is what a request hands over with the disable: alerts move to the successor where
// Metabase allows it, and what cannot move is left in place and listed, or archived.
type Handover struct {
	// SuccessorID is the Metabase user who takes over the alerts; 0 for none (archive only).
	SuccessorID    int    `json:"successor_id,omitempty"`
	SuccessorEmail string `json:"successor_email,omitempty"`
	SuccessorName  string `json:"successor_name,omitempty"`
	// Archive archives what cannot move instead of leaving it in place.
	Archive bool `json:"archive,omitempty"`
}

// ItemOutcome is what a hand-over did with one item. Stored: never rename one.
type ItemOutcome string

// Per-item outcomes.
const (
	// ItemMoved: the alert now belongs to the successor.
	ItemMoved ItemOutcome = "moved"
	// ItemArchived: the item was archived, which stops it.
	ItemArchived ItemOutcome = "archived"
	// ItemLeft: the item was left in place, as it was (listed for someone to deal with).
	ItemLeft ItemOutcome = "left"
	// ItemGone: the item no longer exists in Metabase (deleted or archived meanwhile).
	ItemGone ItemOutcome = "gone"
	// ItemFailed: Metabase refused or could not be reached; a retry tries it again.
	ItemFailed ItemOutcome = "failed"
)

// Final reports whether the item needs no further work: everything but a failure.
func (o ItemOutcome) Final() bool { return o != "" && o != ItemFailed }

// ItemResult is one item of a hand-over with what was done to it.
type ItemResult struct {
	Item
	Outcome ItemOutcome `json:"outcome"`
	Message string      `json:"message,omitempty"`
}

// HandoverResult is what the hand-over step did for one target. It is recorded with the target's
// outcome in the same compare-and-set, so a takeover or a retry neither repeats nor skips it.
type HandoverResult struct {
	// UserDone: this request deactivated the user, even if the hand-over then failed, so a retry
	// that finds them inactive records the disable as done rather than skipped.
	UserDone bool         `json:"user_done,omitempty"`
	Items    []ItemResult `json:"items,omitempty"`
	// Unhandled counts items past the per-target bound, left in place.
	Unhandled int       `json:"unhandled,omitempty"`
	At        time.Time `json:"at,omitzero"`
}

// Counts tallies the items' outcomes.
func (h *HandoverResult) Counts() (c HandoverCounts) {
	if h == nil {
		return c
	}
	for _, it := range h.Items {
		switch it.Outcome {
		case ItemMoved:
			c.Moved++
		case ItemArchived:
			c.Archived++
		case ItemLeft:
			c.Left++
		case ItemGone:
			c.Gone++
		default:
			c.Failed++
		}
	}
	c.Left += h.Unhandled
	return c
}

// HandoverCounts tallies a hand-over's items by outcome.
type HandoverCounts struct {
	Moved, Archived, Left, Gone, Failed int
}

// Add returns the sum of c and o.
func (c HandoverCounts) Add(o HandoverCounts) HandoverCounts {
	return HandoverCounts{c.Moved + o.Moved, c.Archived + o.Archived, c.Left + o.Left, c.Gone + o.Gone, c.Failed + o.Failed}
}

// Total is the number of items counted.
func (c HandoverCounts) Total() int { return c.Moved + c.Archived + c.Left + c.Gone + c.Failed }

// HandoverCounts sums the hand-over results of every target.
func (r Request) HandoverCounts() HandoverCounts {
	var c HandoverCounts
	for _, t := range r.Targets {
		c = c.Add(t.HandedOver.Counts())
	}
	return c
}

// RecordHandover stores what the hand-over step did for target i. Call it in the same
// compare-and-set as Record, after it: Record checks the lease and the index. When the request
// deactivated the user but the hand-over failed (so the target's outcome is a failure), before is
// still what the user had, for a later enable to restore, as Record keeps it for a done disable.
func (r *Request) RecordHandover(i int, h *HandoverResult, before *Before) {
	if h == nil || i < 0 || i >= len(r.Targets) {
		return
	}
	r.Targets[i].HandedOver = h.clone()
	if before != nil && h.UserDone && r.Action == Disable && r.Targets[i].Result.Outcome != Done {
		r.Targets[i].Superuser = before.Superuser
		r.Targets[i].GroupIDs = slices.Clone(before.GroupIDs)
		r.Targets[i].Stamp = before.Stamp
	}
}

func (c *Consequences) clone() *Consequences {
	if c == nil {
		return nil
	}
	x := *c
	x.Items = cloneItems(c.Items)
	return &x
}

func cloneItems(items []Item) []Item {
	if items == nil {
		return nil
	}
	out := make([]Item, len(items))
	for i, it := range items {
		it.SlackChannels = slices.Clone(it.SlackChannels)
		out[i] = it
	}
	return out
}

func (h *HandoverResult) clone() *HandoverResult {
	if h == nil {
		return nil
	}
	x := *h
	if h.Items != nil {
		x.Items = make([]ItemResult, len(h.Items))
		for i, it := range h.Items {
			it.SlackChannels = slices.Clone(it.SlackChannels)
			x.Items[i] = it
		}
	}
	return &x
}

// cloneHandover copies the request-level hand-over values, so a transition on a clone never
// writes through to the original.
func (r *Request) cloneHandover(from Request) {
	if from.Handover != nil {
		h := *from.Handover
		r.Handover = &h
	}
	if from.Lookup != nil {
		l := *from.Lookup
		r.Lookup = &l
	}
	for i := range r.Targets {
		r.Targets[i].Consequences = from.Targets[i].Consequences.clone()
		r.Targets[i].HandedOver = from.Targets[i].HandedOver.clone()
	}
}
