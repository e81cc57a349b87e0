package bot

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// dueBatch bounds the requests one tick looks at.
const dueBatch = 100

// timerLoop finds work no click will trigger: expiries, reminders, scheduled returns, approved
// requests nobody started and executions whose holder died. It runs on every replica; the
// compare-and-set in the store lets exactly one of them act on each request.
func (b *Bot) timerLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.Tick)
	defer t.Stop()
	for {
		b.runDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runDue handles every request that is due now.
func (b *Bot) runDue(ctx context.Context) {
	due, err := b.store.Due(ctx, b.now(), dueBatch)
	if err != nil {
		if ctx.Err() == nil {
			b.log.WithError(err).Error("Could not look for due requests")
		}
		return
	}
	for _, r := range due {
		log := b.log.WithFields(logrus.Fields{"request_id": r.ID, "state": string(r.State)})
		switch r.State {
		case approval.Pending:
			b.remindOrExpire(ctx, r.ID, log)
		case approval.Approved, approval.Scheduled, approval.Executing:
			b.takeOver(ctx, r.ID, log)
		}
	}
}

func (b *Bot) remindOrExpire(ctx context.Context, id string, log logrus.FieldLogger) {
	var event string
	_, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		now := b.now()
		event = ""
		if r.Remind(now) == nil {
			event = "reminder"
			text := b.approverMention() + " reminder: this request is still waiting for approval and expires " + slackDate(r.ExpiresAt) + "."
			return []store.Outbox{thread(*r, text)}, nil
		}
		if err := r.Expire(now); err != nil {
			return nil, err
		}
		event = "expired"
		return []store.Outbox{cardUpdate(*r),
			thread(*r, ":hourglass: This request expired without a decision. Make a new one if it is still needed."),
			b.audit(*r, "expired", "", "")}, nil
	})
	switch {
	case errors.Is(err, approval.ErrNotDue), errors.Is(err, approval.ErrNotPending):
		// Another replica got there first, or a click decided it meanwhile.
	case err != nil:
		log.WithError(err).Error("Could not expire or remind a request")
	default:
		if event == "expired" {
			b.cfg.Metrics.decided("expired")
		}
		log.WithField("event", event).Info("Timer acted on a request")
		b.kick()
	}
}

// takeOver starts an approved or scheduled request, or reclaims an execution whose lease ran out
// (its process died between winning and recording the outcome), and executes it. Execution
// re-reads each user from Metabase first, so a target the dead process already changed is
// recorded as done without a second write.
func (b *Bot) takeOver(ctx context.Context, id string, log logrus.FieldLogger) {
	var from approval.State
	r, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		from = r.State
		if err := r.Start(b.cfg.InstanceID, b.now(), b.cfg.ExecLease); err != nil {
			return nil, err
		}
		if from == approval.Scheduled {
			return []store.Outbox{b.audit(*r, "return started", "", "scheduled for "+slackDate(r.NotBefore))}, nil
		}
		return nil, nil
	})
	switch {
	case errors.Is(err, approval.ErrLeaseHeld), errors.Is(err, approval.ErrNotDue), errors.Is(err, approval.ErrInvalidTransition):
		return
	case err != nil:
		log.WithError(err).Error("Could not take over a request")
		return
	}
	log.WithField("from_state", string(from)).Info("Executing a request found by the timer")
	b.kick()
	b.spawn(ctx, func(ctx context.Context) { b.execute(ctx, r) })
}

// returnID is the id of the scheduled return created by a disable with a return date; being
// derived, creating it twice is refused by the store.
func returnID(parentID string) string { return parentID + "-R" }

// scheduleReturn creates the scheduled re-enable of a leave, for the targets the disable
// actually changed, restoring what was recorded.
func (b *Bot) scheduleReturn(ctx context.Context, parent approval.Request) error {
	var targets []approval.Target
	for _, t := range parent.Targets {
		if t.Result.Outcome != approval.Done {
			continue
		}
		targets = append(targets, approval.Target{UserID: t.UserID, Email: t.Email, Name: t.Name,
			Superuser: t.Superuser, GroupIDs: t.GroupIDs, Restore: true, SSOSource: t.SSOSource})
	}
	if len(targets) == 0 || parent.ReturnAt == nil {
		return nil
	}
	now := b.now()
	r := approval.Request{
		ID: returnID(parent.ID), SourceKey: "return:" + parent.ID, ParentID: parent.ID,
		Action: approval.Enable, State: approval.Scheduled, Requester: parent.Requester,
		Targets: targets, Reason: "automatic return from leave: " + parent.Reason,
		NotBefore: *parent.ReturnAt, ChannelID: parent.ChannelID, MessageTS: parent.MessageTS,
		RequiredApprovals: parent.RequiredApprovals, Approvals: parent.Approvals, DecidedBy: parent.DecidedBy,
		CreatedAt: now, ExpiresAt: *parent.ReturnAt, DecidedAt: now,
	}
	err := b.store.Create(ctx, r,
		thread(r, ":calendar: "+auditTargets(r)+" will be re-enabled automatically "+slackDate(*parent.ReturnAt)+
			", with admin status and groups restored. An approver can cancel that below.", actionCancelReturn),
		b.audit(r, "return scheduled", parent.DecidedBy, "at "+slackDate(*parent.ReturnAt)))
	if errors.Is(err, store.ErrExists) {
		// A retry of the leave disabled more of its targets: they come back too.
		return b.addToReturn(ctx, r)
	}
	return err
}

// errNoChange ends a compare-and-set that has nothing to write.
var errNoChange = errors.New("nothing to change")

// addToReturn adds to an existing scheduled return the targets of want it lacks (users a retry of
// the leave disabled after the return was scheduled). A return that already ran or was cancelled
// is left alone.
func (b *Bot) addToReturn(ctx context.Context, want approval.Request) error {
	_, err := b.store.Update(ctx, want.ID, func(r *approval.Request) ([]store.Outbox, error) {
		if r.State != approval.Scheduled {
			return nil, errNoChange
		}
		var added []approval.Target
		for _, t := range want.Targets {
			if !slices.ContainsFunc(r.Targets, func(x approval.Target) bool { return x.UserID == t.UserID }) {
				added = append(added, t)
			}
		}
		if len(added) == 0 {
			return nil, errNoChange
		}
		r.Targets = append(r.Targets, added...)
		sub := *r
		sub.Targets = added
		return []store.Outbox{
			thread(*r, ":calendar: "+auditTargets(sub)+" will also be re-enabled automatically "+slackDate(r.NotBefore)+
				". The button above cancels the return for everyone."),
			b.audit(sub, "return extended", want.DecidedBy, "at "+slackDate(r.NotBefore)),
		}, nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}
