package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// handleInteraction handles button clicks. Identity is the Slack user id of the payload; the
// button value only names the request, and everything else is read from the store.
func (b *Bot) handleInteraction(ctx context.Context, cb slack.InteractionCallback) {
	if cb.Type != slack.InteractionTypeBlockActions {
		b.log.WithField("interaction_type", string(cb.Type)).Debug("Ignoring an interaction type the bot does not use")
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		log := b.log.WithFields(logrus.Fields{"action_id": a.ActionID, "request_id": a.Value, "slack_user_id": cb.User.ID, "channel_id": cb.Channel.ID})
		switch a.ActionID {
		case actionApprove:
			b.approve(ctx, cb, a.Value, log)
		case actionDeny:
			b.denyClicked(ctx, cb, a.Value, log)
		case actionCancel:
			b.cancel(ctx, cb, a.Value, log)
		case actionRetry:
			b.retry(ctx, cb, a.Value, log)
		case actionCancelReturn:
			b.cancelReturn(ctx, cb, a.Value, log)
		case actionInactiveRequest:
			b.inactiveRequestClicked(ctx, cb, a.Value, log)
		default:
			log.Warn("Ignoring an unknown action")
		}
	}
}

// requestForClick loads the request a button names and checks the click came from where its
// card lives, so a forged value cannot act on a request from another channel.
func (b *Bot) requestForClick(ctx context.Context, cb slack.InteractionCallback, id string, log logrus.FieldLogger) (approval.Request, bool) {
	r, err := b.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("Click names an unknown request")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "That request does not exist.")
		return r, false
	}
	if err != nil {
		log.WithError(err).Error("Could not read a request")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not read that request; please try again.")
		return r, false
	}
	if r.ChannelID != cb.Channel.ID || (cb.Container.MessageTs != "" && r.MessageTS != "" && cb.Container.MessageTs != r.MessageTS && !b.isThreadOf(r, cb)) {
		log.Warn("Click on a message that is not the request's card")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "That button does not belong to this request.")
		return r, false
	}
	return r, true
}

// isThreadOf reports whether the click came from a reply in the request's thread (retry and
// cancel-return buttons live there).
func (b *Bot) isThreadOf(r approval.Request, cb slack.InteractionCallback) bool {
	return cb.Message.ThreadTimestamp == r.MessageTS
}

// isApprover reads the approver group at click time, so a removal takes effect at once.
func (b *Bot) isApprover(ctx context.Context, user string) (bool, error) {
	if slices.Contains(b.cfg.ApproverUsers, user) {
		return true, nil
	}
	if b.cfg.ApproverGroup == "" {
		return false, nil
	}
	members, err := b.slack.GetUserGroupMembersContext(ctx, b.cfg.ApproverGroup)
	if err != nil {
		b.cfg.Metrics.slackError("usergroups.users.list", err)
		return false, fmt.Errorf("read approver group: %w", err)
	}
	return slices.Contains(members, user), nil
}

// checkApprover answers a refused click and reports whether the user may decide.
func (b *Bot) checkApprover(ctx context.Context, cb slack.InteractionCallback, log logrus.FieldLogger) bool {
	ok, err := b.isApprover(ctx, cb.User.ID)
	if err != nil {
		log.WithError(err).Error("Could not check the approver group")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not check the approver group, so nothing was done. Please try again.")
		return false
	}
	if !ok {
		log.Info("Refused a click from someone who is not an approver")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "Only approvers ("+b.approverMention()+") can decide Metabase requests.")
		return false
	}
	return true
}

func (b *Bot) approve(ctx context.Context, cb slack.InteractionCallback, id string, log logrus.FieldLogger) {
	if _, ok := b.requestForClick(ctx, cb, id, log); !ok {
		return
	}
	if !b.checkApprover(ctx, cb, log) {
		return
	}
	user := cb.User.ID
	var won bool
	r, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		won = false
		now := b.now()
		if err := r.Approve(user, now, approval.Policy{AllowSelfApproval: b.cfg.AllowSelfApproval}); err != nil {
			return nil, err
		}
		if r.State != approval.Approved {
			return []store.Outbox{cardUpdate(*r),
				b.audit(*r, fmt.Sprintf("approval %d of %d", len(r.Approvals), r.RequiredApprovals), user, "")}, nil
		}
		// The writer that reaches the quorum also takes the execution lease in the same write,
		// so exactly one process calls Metabase.
		if err := r.Start(b.cfg.InstanceID, now, b.cfg.ExecLease); err != nil {
			return nil, err
		}
		won = true
		return []store.Outbox{cardUpdate(*r), b.audit(*r, "approved", user, "")}, nil
	})
	if err != nil {
		b.refuseDecision(ctx, cb.Channel.ID, user, id, err, log)
		return
	}
	b.kick()
	if !won {
		log.Info("Approval recorded; waiting for more approvals")
		return
	}
	b.cfg.Metrics.decided("approved")
	log.Info("Request approved")
	b.execute(ctx, r)
}

// refuseDecision explains a click the lifecycle refused; the card keeps its buttons.
func (b *Bot) refuseDecision(ctx context.Context, channel, user, id string, err error, log logrus.FieldLogger) {
	var msg string
	switch {
	case errors.Is(err, approval.ErrSelfApproval):
		msg = "You made this request, so someone else has to approve it."
	case errors.Is(err, approval.ErrAlreadyVoted):
		msg = "You already approved this request; it needs approvals from other approvers."
	case errors.Is(err, approval.ErrExpired):
		msg = "This request has expired. Make a new one if it is still needed."
	case errors.Is(err, approval.ErrNotPending):
		msg = "This request has already been decided."
		if cur, gerr := b.store.Get(ctx, id); gerr == nil {
			msg = fmt.Sprintf("This request is already %s.", stateWords(cur))
		}
	case errors.Is(err, approval.ErrNotRequester):
		msg = "Only the person who made the request can cancel it."
	default:
		log.WithError(err).Error("Could not record a decision")
		b.ephemeral(ctx, channel, user, "I could not record that; please try again.")
		return
	}
	log.WithField("reason", msg).Info("Refused a click")
	b.ephemeral(ctx, channel, user, msg)
}

// denyClicked asks for a reason in a form when it can; otherwise it denies at once.
func (b *Bot) denyClicked(ctx context.Context, cb slack.InteractionCallback, id string, log logrus.FieldLogger) {
	r, ok := b.requestForClick(ctx, cb, id, log)
	if !ok || !b.checkApprover(ctx, cb, log) {
		return
	}
	if r.State != approval.Pending {
		b.refuseDecision(ctx, cb.Channel.ID, cb.User.ID, id, approval.ErrNotPending, log)
		return
	}
	if cb.TriggerID != "" && b.openDenyForm(ctx, cb.TriggerID, r, log) {
		return
	}
	if b.cfg.DenyReasonRequired {
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not open the form for a reason; please click Deny again.")
		return
	}
	b.deny(ctx, cb.Channel.ID, cb.User.ID, id, "", log)
}

// deny ends a request; one denial is enough whatever the quorum.
func (b *Bot) deny(ctx context.Context, channel, user, id, reason string, log logrus.FieldLogger) {
	_, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		if err := r.Deny(user, reason, b.now()); err != nil {
			return nil, err
		}
		text := "Denied by " + mention(user) + "."
		detail := ""
		if reason != "" {
			text = "Denied by " + mention(user) + ": " + escape(reason)
			detail = "reason: " + escape(reason)
		}
		return []store.Outbox{cardUpdate(*r), thread(*r, text), b.audit(*r, "denied", user, detail)}, nil
	})
	if err != nil {
		b.refuseDecision(ctx, channel, user, id, err, log)
		return
	}
	b.cfg.Metrics.decided("denied")
	log.Info("Request denied")
	b.kick()
}

func (b *Bot) cancel(ctx context.Context, cb slack.InteractionCallback, id string, log logrus.FieldLogger) {
	if _, ok := b.requestForClick(ctx, cb, id, log); !ok {
		return
	}
	user := cb.User.ID
	_, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		if r.State != approval.Pending {
			return nil, approval.ErrNotPending
		}
		if err := r.Cancel(user, b.now()); err != nil {
			return nil, err
		}
		return []store.Outbox{cardUpdate(*r), thread(*r, "Cancelled by "+mention(user)+"."), b.audit(*r, "cancelled", user, "")}, nil
	})
	if err != nil {
		b.refuseDecision(ctx, cb.Channel.ID, user, id, err, log)
		return
	}
	log.Info("Request cancelled")
	b.kick()
}

// retry sends the failed targets of a request back to execution.
func (b *Bot) retry(ctx context.Context, cb slack.InteractionCallback, id string, log logrus.FieldLogger) {
	if _, ok := b.requestForClick(ctx, cb, id, log); !ok || !b.checkApprover(ctx, cb, log) {
		return
	}
	user := cb.User.ID
	var won bool
	r, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		won = false
		now := b.now()
		if err := r.Retry(user, now); err != nil {
			return nil, err
		}
		if err := r.Start(b.cfg.InstanceID, now, b.cfg.ExecLease); err != nil {
			return nil, err
		}
		won = true
		return []store.Outbox{cardUpdate(*r), thread(*r, mention(user)+" is retrying the failed users."),
			b.audit(*r, "retry", user, "")}, nil
	})
	if err != nil {
		// r is empty after a refused update: describe the request as it is now.
		msg := "There is nothing to retry."
		if cur, gerr := b.store.Get(ctx, id); gerr == nil {
			msg = "There is nothing to retry: the request is " + stateWords(cur) + "."
		}
		if !errors.Is(err, approval.ErrInvalidTransition) && !errors.Is(err, approval.ErrNothingToRetry) {
			log.WithError(err).Error("Could not start a retry")
			msg = "I could not start the retry; please try again."
		}
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, msg)
		return
	}
	b.kick()
	if won {
		log.Info("Retrying failed targets")
		b.execute(ctx, r)
	}
}

// cancelReturn cancels the scheduled re-enable that a leave created.
func (b *Bot) cancelReturn(ctx context.Context, cb slack.InteractionCallback, id string, log logrus.FieldLogger) {
	if _, ok := b.requestForClick(ctx, cb, id, log); !ok || !b.checkApprover(ctx, cb, log) {
		return
	}
	user := cb.User.ID
	_, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		if r.State != approval.Scheduled {
			return nil, approval.ErrNotPending
		}
		if err := r.Cancel(user, b.now()); err != nil {
			return nil, err
		}
		return []store.Outbox{thread(*r, "Automatic return cancelled by "+mention(user)+": "+auditTargets(*r)+" stay disabled."),
			b.audit(*r, "return cancelled", user, "")}, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "There is no automatic return scheduled for this request.")
	case errors.Is(err, approval.ErrNotPending):
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "The automatic return is no longer scheduled (it already ran or was cancelled).")
	case err != nil:
		log.WithError(err).Error("Could not cancel a return")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not cancel the return; please try again.")
	default:
		log.Info("Automatic return cancelled")
		b.kick()
	}
}
