package access

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// The hand-over runs inside the execution of its request, as one more step per target after the
// disable, and its result is recorded with the target's outcome in the same compare-and-set.
// Like the disable, it is made safe to repeat by reading Metabase first: an alert whose creator
// is already the successor is not moved again, and archiving reads the subscription before
// writing. So a takeover after a crash, or a retry, finishes the hand-over without repeating
// what the dead process did, and what was recorded as done is never touched again.

// maxHandoverItems bounds the items one target's hand-over works on; the rest are left in place
// and counted.
const maxHandoverItems = 1000

// stepper returns the per-target step of one execution of r: the action alone, or the action
// then the hand-over. The hand-over's listing is made once per execution, by whichever target
// needs it first, not once per target.
func (x *executor) stepper(r approval.Request) func(ctx context.Context, i int) outcome {
	if r.Handover == nil && r.Action != approval.HandOver {
		return func(ctx context.Context, i int) outcome { return x.apply(ctx, r, i) }
	}
	r.DryRun = r.DryRun || x.dryRun // a process in DRY_RUN never writes, whatever the request says
	h := &handoverRun{x: x, r: r}
	// A hand-over's targets are all in one instance (validator.handover); should they not be,
	// nothing is handed over rather than the wrong instance's items.
	if name := handoverInstance(r.Targets, ""); name != "" {
		h.mb, h.nb = x.in.mb(name), x.in.nb(name)
	}
	return h.step
}

// handoverRun is the hand-over part of one execution.
type handoverRun struct {
	x *executor
	r approval.Request
	// mb and nb are the clients of the instance the hand-over works in.
	mb Metabase
	nb Notifications

	once sync.Once
	caps metabase.Capabilities
	// current holds every active subscription and alert by key, and ordered lists them in
	// Metabase's order (subscriptions by name, then alerts); nil when listing failed.
	current map[approval.ItemKey]*metabase.Notification
	ordered []*metabase.Notification
	listErr error
	// successorProblem says why the successor cannot take over now; empty when they can.
	successorProblem string
}

// step runs target i's action, then its hand-over unless the action failed.
func (h *handoverRun) step(ctx context.Context, i int) outcome {
	var o outcome
	if h.r.Action == approval.HandOver {
		o = h.x.stillInactive(ctx, h.r, i)
	} else {
		o = h.x.apply(ctx, h.r, i)
	}
	if o.res.Outcome == approval.TargetFailed {
		return o
	}
	h.once.Do(func() { h.prepare(ctx) })
	return h.handOver(ctx, i, o)
}

// stillInactive is the action of a hand-over request: its targets were deactivated outside the
// bot, and one reactivated since gets their items back as they were.
func (x *executor) stillInactive(ctx context.Context, r approval.Request, i int) outcome {
	u, err := x.in.mb(r.Targets[i].InstanceName()).User(ctx, r.Targets[i].UserID)
	if err != nil {
		return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed, Message: FailureText(err), At: x.now()}}
	}
	if u.IsActive {
		return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed,
			Message: "active again in Metabase, so their items were left alone", At: x.now()}}
	}
	return outcome{i: i, res: approval.Result{Outcome: approval.Done, At: x.now()}}
}

// prepare lists every active subscription and alert once, and checks that the successor is still
// an active Metabase user.
func (h *handoverRun) prepare(ctx context.Context) {
	if h.nb == nil {
		h.listErr = errors.New("this bot was started without access to Metabase's subscriptions and alerts")
		return
	}
	// Listed for this execution alone: a listing another request started earlier may miss an
	// item created since, and the hand-over acts on what it lists.
	inv, err := h.nb.Notifications(metabase.Unshared(ctx))
	if err != nil {
		h.listErr = err
		return
	}
	h.caps = inv.Capabilities
	h.current = make(map[approval.ItemKey]*metabase.Notification, len(inv.Subscriptions)+len(inv.Alerts))
	for _, list := range [][]metabase.Notification{inv.Subscriptions, inv.Alerts} {
		for i := range list {
			h.current[keyOf(&list[i])] = &list[i]
			h.ordered = append(h.ordered, &list[i])
		}
	}
	if id := successorOf(h.r.Handover); id != 0 {
		u, err := h.mb.User(ctx, id)
		switch {
		case err != nil:
			h.successorProblem = "could not check the successor: " + FailureText(err)
		case !u.IsActive:
			h.successorProblem = successorEmail(h.r.Handover) + " is no longer active in Metabase"
		}
	}
}

func keyOf(n *metabase.Notification) approval.ItemKey {
	if n.Kind == metabase.KindSubscription {
		return approval.ItemKey{Kind: approval.Subscription, ID: n.ID}
	}
	return approval.ItemKey{Kind: approval.Alert, ID: n.ID}
}

// plannedItem is one item of target i's hand-over with what is to be done with it.
type plannedItem struct {
	res  approval.ItemResult
	want want
}

type want int

const (
	wantNothing want = iota // already final
	wantMove
	wantArchive
	wantLeave
)

// handOver hands over target i's items after its action produced o.
func (h *handoverRun) handOver(ctx context.Context, i int, o outcome) outcome {
	t := h.r.Targets[i]
	if t.Unresolved && o.before != nil && o.before.UserID != 0 {
		// First found by this execution (its instance did not answer when the request was
		// made): the request still stores it without an id until this outcome is recorded.
		t.UserID = o.before.UserID
	}
	prior := t.HandedOver
	now := h.x.now()
	res := &approval.HandoverResult{At: now}
	if h.r.Action == approval.Disable {
		res.UserDone = o.res.Outcome == approval.Done || (prior != nil && prior.UserDone)
		if o.res.Outcome == approval.Skipped && prior != nil && prior.UserDone {
			// A retry after a failed hand-over finds the user this request deactivated.
			o.res = approval.Result{Outcome: approval.Done, Message: "disabled by an earlier attempt", At: now}
		}
	}
	if h.r.Action == approval.Disable && prior == nil && !cardListed(h.r, t) {
		// The card could not show what they left running, so the approval covered the disable
		// alone: nothing of theirs is handed over on a list nobody saw.
		o.handedOver = res
		// Kept beside why a target was skipped (not found, already inactive): both are true.
		o.res.Message = joinNonEmpty(o.res.Message, handoverUnread)
		return o
	}
	if h.listErr != nil {
		if prior != nil {
			res.Items, res.Unhandled = prior.Items, prior.Unhandled
		}
		o.handedOver = res
		return h.failed(o, "what they left running could not be listed: "+FailureText(h.listErr))
	}
	plan, unhandled := h.plan(t, prior)
	res.Unhandled = unhandled
	res.Items = h.carryOut(ctx, plan)
	o.handedOver = res
	if c := res.Counts(); c.Failed > 0 {
		return h.failed(o, fmt.Sprintf("%d of %d items of the hand-over failed", c.Failed, len(res.Items)))
	}
	return o
}

// failed marks a target whose action worked but whose hand-over did not: it fails, so the
// request offers a retry, which finishes the hand-over without repeating the action.
func (h *handoverRun) failed(o outcome, why string) outcome {
	done := "handed over nothing"
	switch {
	case h.r.Action == approval.HandOver:
		done = "still deactivated"
	case o.res.Outcome == approval.Done:
		done = "disabled"
	case o.res.Outcome == approval.Skipped:
		done = "already inactive"
	}
	o.res = approval.Result{Outcome: approval.TargetFailed, Message: done + ", but " + why, At: o.res.At}
	return o
}

// plan decides what to do with each of the target's items: those it created now, those the card
// listed, and those an earlier attempt recorded. Items an earlier attempt finished are kept as
// they were.
func (h *handoverRun) plan(t approval.Target, prior *approval.HandoverResult) ([]plannedItem, int) {
	var (
		plan      []plannedItem
		seen      = map[approval.ItemKey]bool{}
		unhandled int
	)
	add := func(p plannedItem) {
		if seen[p.res.Key()] {
			return
		}
		seen[p.res.Key()] = true
		if len(plan) == maxHandoverItems {
			unhandled++
			return
		}
		plan = append(plan, p)
	}
	if prior != nil {
		for _, it := range prior.Items {
			if it.Outcome.Final() {
				add(plannedItem{res: it, want: wantNothing})
			}
		}
	}
	// What the target created now, in Metabase's order: subscriptions, then alerts. Creator id 0
	// is an item without a creator (metabase.Creator), never a user: a target whose id is still
	// unknown selects nothing rather than every creatorless item.
	for _, n := range h.ordered {
		if t.UserID != 0 && n.Creator.ID == t.UserID {
			add(h.decide(ItemOf(n)))
		}
	}
	// What the card listed or an earlier attempt failed on, and no longer belongs to the target.
	var earlier []approval.Item
	if t.Consequences != nil {
		earlier = append(earlier, t.Consequences.Items...)
	}
	if prior != nil {
		for _, it := range prior.Items {
			earlier = append(earlier, it.Item)
		}
	}
	for _, it := range earlier {
		if seen[it.Key()] {
			continue
		}
		add(h.elsewhere(it))
	}
	return plan, unhandled
}

// decide says what to do with an item the target still created.
func (h *handoverRun) decide(it approval.Item) plannedItem {
	p := plannedItem{res: approval.ItemResult{Item: it}}
	hv := h.r.Handover
	switch {
	case it.Kind == approval.Alert && successorOf(hv) != 0 && h.caps.MoveAlerts:
		if h.successorProblem != "" {
			p.res.Outcome, p.res.Message = approval.ItemFailed, "not moved: "+h.successorProblem
			return p
		}
		p.want = wantMove
	case it.Kind == approval.Alert && archives(hv) && h.caps.ArchiveAlerts:
		p.want = wantArchive
	case it.Kind == approval.Subscription && archives(hv) && h.caps.ArchiveSubscriptions:
		p.want = wantArchive
	default:
		p.want = wantLeave
	}
	return p
}

// elsewhere accounts for an item that is no longer among the target's active items: moved to the
// successor already (by this request's dead process, or by someone), archived, or deleted.
func (h *handoverRun) elsewhere(it approval.Item) plannedItem {
	p := plannedItem{res: approval.ItemResult{Item: it}}
	cur, active := h.current[it.Key()]
	switch {
	case active && it.Kind == approval.Alert && cur.Creator.ID == successorOf(h.r.Handover) && successorOf(h.r.Handover) != 0:
		p.res.Outcome = approval.ItemMoved
		p.res.Message = "to " + successorEmail(h.r.Handover) + " earlier"
		if h.r.Recovering {
			p.res.Message = "to " + successorEmail(h.r.Handover) + ", confirmed after a restart"
		}
	case active:
		p.res.Outcome = approval.ItemLeft
		p.res.Message = fmt.Sprintf("left alone: it now belongs to Metabase user %d", cur.Creator.ID)
	case h.decide(it).want == wantArchive && it.Kind == approval.Subscription:
		// Archived (by this request's dead process, or by someone) or deleted: archiving a
		// subscription reads it first, so asking again tells which and writes nothing twice.
		return h.decide(it)
	case h.decide(it).want == wantArchive && h.r.Recovering:
		// Archiving an alert again would publish its update and mail its recipients again
		// (docs/metabase-notifications.md, "How the bot uses them"), and the
		// listing cannot tell archived from deleted: after a crash, the dead process archived it.
		p.res.Outcome, p.res.Message = approval.ItemArchived, "confirmed after a restart"
	default:
		p.res.Outcome, p.res.Message = approval.ItemGone, "no longer active in Metabase"
	}
	return p
}

// carryOut performs the plan's writes (none in a dry run) and returns every item's result: one
// bulk call for the alerts to move, one for the alerts to archive, and one archive per
// subscription (Metabase has no bulk action for subscriptions).
func (h *handoverRun) carryOut(ctx context.Context, plan []plannedItem) []approval.ItemResult {
	var move, archiveAlerts []int
	for _, p := range plan {
		switch {
		case p.want == wantMove:
			move = append(move, p.res.ID)
		case p.want == wantArchive && p.res.Kind == approval.Alert:
			archiveAlerts = append(archiveAlerts, p.res.ID)
		}
	}
	moved := h.bulk(ctx, move, func(ctx context.Context, ids []int) (int, error) {
		return h.nb.ChangeAlertCreator(ctx, ids, h.r.Handover.SuccessorID)
	})
	archived := h.bulk(ctx, archiveAlerts, h.nb.ArchiveAlerts)
	out := make([]approval.ItemResult, len(plan))
	for i, p := range plan {
		r := p.res
		switch p.want {
		case wantMove:
			r.Outcome, r.Message = moved.outcome(approval.ItemMoved, "to "+successorEmail(h.r.Handover))
		case wantArchive:
			if r.Kind == approval.Alert {
				r.Outcome, r.Message = archived.outcome(approval.ItemArchived, "")
			} else {
				r.Outcome, r.Message = h.archiveSubscription(ctx, r.ID)
			}
		case wantLeave:
			r.Outcome, r.Message = approval.ItemLeft, h.leaveReason(r.Kind)
		}
		if h.r.DryRun && p.want != wantNothing && r.Outcome != approval.ItemFailed && r.Outcome != approval.ItemLeft {
			r.Message = "dry run: not changed"
		}
		out[i] = r
	}
	return out
}

// bulkResult is the outcome of one bulk call for all its items.
type bulkResult struct {
	err             error
	updated, wanted int
}

func (b bulkResult) outcome(ok approval.ItemOutcome, msg string) (approval.ItemOutcome, string) {
	if b.err != nil {
		if errors.Is(b.err, metabase.ErrNotSupported) {
			return approval.ItemFailed, "this Metabase no longer supports it"
		}
		return approval.ItemFailed, FailureText(b.err)
	}
	if b.updated < b.wanted {
		// Metabase skips ids that are gone and does not say which.
		msg = joinNonEmpty(msg, fmt.Sprintf("Metabase found %d of the %d", b.updated, b.wanted))
	}
	return ok, msg
}

func (h *handoverRun) bulk(ctx context.Context, ids []int, call func(context.Context, []int) (int, error)) bulkResult {
	if len(ids) == 0 || h.r.DryRun {
		return bulkResult{updated: len(ids), wanted: len(ids)}
	}
	n, err := call(ctx, ids)
	return bulkResult{err: err, updated: n, wanted: len(ids)}
}

func (h *handoverRun) archiveSubscription(ctx context.Context, id int) (approval.ItemOutcome, string) {
	if h.r.DryRun {
		return approval.ItemArchived, ""
	}
	err := h.nb.ArchiveSubscription(ctx, id)
	switch {
	case err == nil:
		return approval.ItemArchived, ""
	case errors.Is(err, metabase.ErrNotFound) && !errors.Is(err, metabase.ErrNotSupported):
		return approval.ItemGone, "no longer in Metabase"
	}
	return approval.ItemFailed, FailureText(err)
}

// leaveReason says why an item stays where it is.
func (h *handoverRun) leaveReason(k approval.ItemKind) string {
	hv := h.r.Handover
	switch {
	case k == approval.Subscription && successorOf(hv) != 0:
		return "left in place: subscriptions cannot change creator"
	case k == approval.Subscription:
		return "left in place"
	case successorOf(hv) != 0 && !h.caps.MoveAlerts:
		return "left in place: this Metabase cannot move alerts"
	case archives(hv) && !h.caps.ArchiveAlerts:
		return "left in place: this Metabase cannot archive alerts"
	}
	return "left in place"
}

// successorOf is the hand-over's successor, 0 for none.
func successorOf(hv *approval.Handover) int {
	if hv == nil {
		return 0
	}
	return hv.SuccessorID
}

// archives reports whether the hand-over archives what cannot move.
func archives(hv *approval.Handover) bool { return hv != nil && hv.Archive }

// successorEmail names the successor in results.
func successorEmail(hv *approval.Handover) string {
	if hv == nil {
		return ""
	}
	return hv.SuccessorEmail
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// handoverUnread is the result of a hand-over step whose list the card could not show.
const handoverUnread = "hand-over not done: could not be read"

// cardListed reports whether the card of r showed what target t leaves running: the listing
// answered when the request was made and t was looked up. Approve acts on what the approver saw,
// so a hand-over works only on a list that was on the card.
func cardListed(r approval.Request, t approval.Target) bool {
	return r.Lookup != nil && r.Lookup.Error == "" && t.Consequences != nil && !t.Unresolved
}
