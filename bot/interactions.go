package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// handleInteraction handles button clicks. Identity is the Slack user id of the payload; the
// button value only names the request, and everything else is read from the store.
func (b *Bot) handleInteraction(ctx context.Context, cb slack.InteractionCallback) {
	if cb.Type != slack.InteractionTypeBlockActions {
		b.log.WithField("interaction_type", string(cb.Type)).Debug("Ignoring an interaction type the bot does not use")
		return
	}
	// Replies to the person who clicked go through the click's response_url. A click on a Home
	// tab has neither channel nor response_url: its replies go to the person's messages with the
	// bot (ephemeral).
	ctx = withReplyURL(ctx, cb.Channel.ID, cb.User.ID, cb.ResponseURL)
	ctx = withDelayNotice(ctx, func(wait time.Duration) {
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, fmt.Sprintf(
			"Slack asked me to wait %s before I can check the approver group; I'll carry out your click then.", waitWords(wait)))
	})
	if cb.Container.Type == "view" && cb.View.Type == slack.VTHomeTab {
		// Redraw the Home after the click, so its buttons follow what the click found (a
		// decision made, membership lost); RequestChanged redraws it again once the card changes.
		b.home.watch(cb.User.ID)
		defer b.refreshHome(cb.User.ID)
	}
	// A click is one action: Slack sends block_actions "from the specific interactive component
	// that was used" (https://api.slack.com/reference/interaction-payloads/block-actions). Anything
	// past the first is not a click a person made, and acting on each would let one envelope hold
	// its handler for as long as its sender likes (a thousand actions took five seconds).
	actions := cb.ActionCallback.BlockActions
	if len(actions) > 1 {
		b.log.WithFields(logrus.Fields{"actions": len(actions), "slack_user_id": cb.User.ID}).Warn("Acting on the first of several actions in one click")
		actions = actions[:1]
	}
	for _, a := range actions {
		if a == nil {
			continue
		}
		log := b.log.WithFields(logrus.Fields{"action_id": a.ActionID, "request_id": a.Value, "slack_user_id": cb.User.ID, "channel_id": cb.Channel.ID})
		ctx := access.WithLogger(ctx, log)
		if a.ActionID == actionInactiveRequest {
			b.inactiveRequestClicked(ctx, cb, a.Value)
			continue
		}
		if a.ActionID == actionLeaversRequest {
			leavers{b}.clicked(ctx, cb)
			continue
		}
		if a.ActionID == actionDisableAgain || a.ActionID == actionKeepActive {
			b.watchClicked(ctx, cb, a.ActionID, a.Value)
			continue
		}
		if a.ActionID == actionOrphansRequest {
			b.orphansRequestClicked(ctx, cb)
			continue
		}
		decide, what := b.decision(a.ActionID)
		if decide == nil {
			log.Warn("Ignoring an unknown action")
			continue
		}
		r, ok := b.requestForClick(ctx, cb, a.Value, what)
		if !ok {
			continue
		}
		if a.ActionID == actionDeny {
			b.denyClicked(ctx, cb, r)
			continue
		}
		if _, err := decide(ctx, r.ID, cb.User.ID); err != nil {
			b.refused(ctx, cb.Channel.ID, cb.User.ID, what, err)
		}
	}
}

// decision maps a button to the core's decision and to what failure means for it.
func (b *Bot) decision(actionID string) (func(ctx context.Context, id, actor string) (approval.Request, error), op) {
	switch actionID {
	case actionApprove:
		return b.core.Approve, opApprove
	case actionDeny:
		return func(ctx context.Context, id, actor string) (approval.Request, error) {
			return b.core.Deny(ctx, id, actor, "")
		}, opDeny
	case actionCancel:
		return b.core.Cancel, opDecide
	case actionRetry:
		return b.core.Retry, opRetry
	case actionCancelReturn:
		return b.core.CancelReturn, opCancelReturn
	case actionConfirm:
		return b.core.Confirm, opDecide
	case actionReverse:
		return b.core.Reverse, opDecide
	}
	return nil, 0
}

// refused tells the person who clicked why nothing happened; the card keeps its buttons.
func (b *Bot) refused(ctx context.Context, channel, user string, what op, err error) {
	log := b.logger(ctx)
	text := b.v.explain(what, err)
	if access.IsRefusal(err) {
		log.WithField("reason", text).Info("Refused a click")
	} else {
		log.WithError(err).Error("Could not carry out a click")
	}
	b.ephemeral(ctx, channel, user, text)
}

// requestForClick loads the request a button names and checks the click came from that request's
// own card (originOf), so a forged value cannot act on another request. what is the click's
// decision, named when the store cannot be read.
func (b *Bot) requestForClick(ctx context.Context, cb slack.InteractionCallback, id string, what op) (approval.Request, bool) {
	log := b.logger(ctx)
	r, err := b.core.Request(ctx, id)
	if err != nil {
		if access.IsRefusal(err) {
			log.Warn("Click names an unknown request")
		} else {
			log.WithError(err).Error("Could not read a request")
		}
		if access.StoreUnavailable(err) {
			b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, b.v.explain(what, err))
			return r, false
		}
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, b.v.explain(opRead, err))
		return r, false
	}
	if cb.Container.Type == "view" {
		wctx, cancel := context.WithTimeout(ctx, cardRecordWait)
		b.home.settle(wctx, cb.User.ID)
		cancel()
	}
	o := originOf(cb, r, b.home)
	if o == orphanCard && r.MessageTS == "" {
		r, o = b.awaitCard(ctx, cb, r)
	}
	switch o {
	case ownCard, homeView:
		return r, true
	case orphanCard:
		log.WithField("message_ts", cb.Container.MessageTs).Warn("Click on an orphaned copy of the request's card")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, b.orphanText(ctx, r))
	default:
		if cb.Container.Type == "view" {
			log.WithField("view_id", cb.Container.ViewID).Warn("Click on a view the bot did not publish to the clicker with this request")
			b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, staleHome)
			break
		}
		log.Warn("Click on a message that is not the request's card")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, notThisRequest)
	}
	return r, false
}

// awaitCard waits, up to cardRecordWait, for the ts of r's card to be recorded, and decides the
// click's origin again. A click on a card of r while r has none recorded is most often a click on
// the very card a delivery posted a moment ago and is recording now; refusing it would make a
// person click twice. Its delivery may run in another replica, so the store is read again.
func (b *Bot) awaitCard(ctx context.Context, cb slack.InteractionCallback, r approval.Request) (approval.Request, origin) {
	ctx, cancel := context.WithTimeout(ctx, cardRecordWait)
	defer cancel()
	tick := time.NewTicker(cardRecordPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return r, originOf(cb, r, b.home)
		case <-tick.C:
		}
		cur, err := b.core.Request(ctx, r.ID)
		if err != nil {
			continue
		}
		if r = cur; r.MessageTS != "" {
			return r, originOf(cb, r, b.home)
		}
	}
}

// denyClicked asks for a reason in a form when it can; otherwise it denies at once.
func (b *Bot) denyClicked(ctx context.Context, cb slack.InteractionCallback, r approval.Request) {
	if ok, err := b.dir.IsApprover(ctx, cb.User.ID); err != nil || !ok {
		if err == nil {
			err = &access.Refusal{Code: access.NotApprover}
		} else {
			err = errors.Join(access.ErrDirectory, err)
		}
		b.refused(ctx, cb.Channel.ID, cb.User.ID, opDeny, err)
		return
	}
	if r.State != approval.Pending {
		b.refused(ctx, cb.Channel.ID, cb.User.ID, opDeny, &access.Refusal{Code: access.AlreadyDecided, Request: r})
		return
	}
	if cb.TriggerID != "" && (forms{b}).openDenyForm(ctx, cb.TriggerID, r) {
		return
	}
	if b.cfg.DenyReasonRequired {
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not open the form for a reason; please click Deny again.")
		return
	}
	if _, err := b.core.Deny(ctx, r.ID, cb.User.ID, ""); err != nil {
		b.refused(ctx, cb.Channel.ID, cb.User.ID, opDeny, err)
	}
}
