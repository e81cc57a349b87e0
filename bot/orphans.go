package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// `orphans` reports what users deactivated outside the bot (before it, or in Metabase's own
// admin pages) left running, and turns the report into one hand-over request.

const (
	// actionOrphansRequest is the report's "Hand over or archive" button.
	actionOrphansRequest = "mb_orphans_request"
	// callbackOrphansForm is the form that button opens.
	callbackOrphansForm = "mb_orphans_form"
	// maxOrphanItemsShown is how many items the report names under each user.
	maxOrphanItemsShown = 3
)

// orphansReport answers `orphans` privately: the deactivated creators and what they still run,
// bounded in size, with a button that asks for their hand-over.
func (b *Bot) orphansReport(ctx context.Context, sc slack.SlashCommand) {
	log := b.logger(ctx)
	o, err := b.core.Orphans(ctx, sc.UserID, sc.ChannelID)
	if err != nil {
		if access.IsRefusal(err) {
			b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opCheck, err))
			return
		}
		log.WithError(err).Error("Could not list what deactivated users left running")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, "I could not list Metabase's subscriptions and alerts: "+access.FailureText(err))
		return
	}
	if len(o.Groups) == 0 {
		text := "No subscription or alert runs under a deactivated user."
		if o.Creatorless > 0 {
			text += fmt.Sprintf(" %s no creator at all; only Metabase's admin pages can deal with them.", plural(o.Creatorless, "item has", "items have"))
		}
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, text)
		return
	}
	head, lines := b.v.orphansText(o)
	btn := slack.NewButtonBlockElement(actionOrphansRequest, "orphans",
		plain(clip(fmt.Sprintf("Hand over or archive these %d items", o.Items), 75)))
	btn.Style = slack.StylePrimary
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(head), nil, nil),
		slack.NewSectionBlock(mrkdwn(clipLines(lines, maxSectionText)), nil, nil),
		slack.NewActionBlock(blockThreadActions, btn),
	}
	// Through the command's response_url: it reaches the person even in a channel without the bot.
	b.ephemeral(ctx, sc.ChannelID, sc.UserID, head, slack.MsgOptionBlocks(blocks...))
}

// orphansText is the report's heading and its lines: each deactivated user with counts and their
// first few items, within maxReportLines.
func (v *view) orphansText(o access.Orphans) (string, []string) {
	var all []metabase.Notification
	for _, g := range o.Groups {
		all = append(all, g.Items...)
	}
	total := access.ConsequencesOf(all)
	total.Items = nil
	run := "still run"
	if total.Running() == 1 {
		run = "still runs"
	}
	head := fmt.Sprintf("*%s* %s under %s:", consequenceSummary(total), run, plural(len(o.Groups), "deactivated user", "deactivated users"))
	var lines []string
	for gi, g := range o.Groups {
		if len(lines) >= maxReportLines {
			lines = append(lines, fmt.Sprintf("…and %d more users (the request covers them)", len(o.Groups)-gi))
			break
		}
		c := access.ConsequencesOf(g.Items)
		lines = append(lines, fmt.Sprintf("*%s* · %s (deactivated) · %s", escape(g.User.Name()), escape(g.User.Email), consequenceSummary(c)))
		for i, it := range c.Items {
			if i == maxOrphanItemsShown {
				lines = append(lines, fmt.Sprintf("    …and %d more", c.Running()-maxOrphanItemsShown))
				break
			}
			lines = append(lines, "    ◦ "+v.itemLine(it))
		}
	}
	if o.Creatorless > 0 {
		lines = append(lines, fmt.Sprintf("%s no creator at all; no request can hand them over.", plural(o.Creatorless, "item has", "items have")))
	}
	if !o.Capabilities.MoveAlerts {
		lines = append(lines, fmt.Sprintf("This Metabase (%s) cannot move alerts: a hand-over lists them, or archives them if you choose.", escape(o.Capabilities.Version.String())))
	}
	if len(o.Groups) > access.MaxOrphanTargets {
		lines = append(lines, fmt.Sprintf("One request covers the first %d users; ask again afterwards for the rest.", access.MaxOrphanTargets))
	}
	return head, lines
}

// orphansRequestClicked opens the form that asks who takes over, what to do with what cannot move,
// and why.
func (b *Bot) orphansRequestClicked(ctx context.Context, cb slack.InteractionCallback) {
	successor := textInput(blockFormSuccessor, actionFormSuccessor, "Hand their alerts over to", "bob@example.com or a Metabase id", false, true)
	successor.Element.(*slack.PlainTextInputBlockElement).MaxLength = 254
	successor.Hint = plain("An active Metabase user; moved alerts run with their permissions. Leave it empty to archive everything.")
	reason := textInput(blockFormReason, actionFormReason, "Reason", "clean-up of what former users left running", true, !b.cfg.Policy.RequireReason)
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackOrphansForm, Title: plain("Hand-over clean-up"),
		Submit: plain("Request"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn("Request one approval to hand over, or archive, the subscriptions and alerts of every deactivated user in the report."), nil, nil),
			successor, archiveInput("What cannot be moved"), reason}},
		PrivateMetadata: formMeta{Channel: cb.Channel.ID}.encode(),
	}
	if _, err := b.slack.OpenViewContext(ctx, cb.TriggerID, view); err != nil {
		b.cfg.Metrics.slackError("views.open", err)
		b.logger(ctx).WithError(err).Warn("Could not open the hand-over form")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not open the form; please click again.")
	}
}

// orphansSubmitted validates the hand-over form (field errors keep it open), closes it and
// submits the request. The view id makes a redelivered submission create nothing new.
func (b *Bot) orphansSubmitted(ctx context.Context, sm acker, req socketmode.Request, meta formMeta, cb slack.InteractionCallback, reason string) {
	log := b.logger(ctx)
	hv, block, msg := formHandover(cb.View.State.Values, false)
	switch {
	case msg != "":
		forms{b}.ackView(ctx, sm, req, map[string]string{block: clip(msg, 150)})
		return
	case hv == nil:
		forms{b}.ackView(ctx, sm, req, map[string]string{blockFormSuccessor: "Name who takes over their alerts, or choose to archive what cannot be moved."})
		return
	case b.cfg.Policy.RequireReason && reason == "":
		forms{b}.ackView(ctx, sm, req, map[string]string{blockFormReason: "A reason is required."})
		return
	}
	c := access.ChangeRequest{Action: approval.HandOver, Reason: reason, Requester: cb.User.ID, Channel: meta.Channel,
		SourceKey: "orphans:" + cb.View.ID, Handover: hv}
	vctx, cancel := context.WithTimeout(ctx, viewValidationBudget)
	err := b.core.ValidateOrphans(vctx, c)
	cancel()
	if err != nil && access.IsRefusal(err) {
		forms{b}.ackView(ctx, sm, req, map[string]string{blockFormSuccessor: clip(b.v.explain(opCheck, err), 150)})
		return
	}
	forms{b}.ackView(ctx, sm, req, nil)
	r, n, err := b.core.SubmitOrphans(ctx, c)
	switch {
	case err == nil && n == 0:
		b.ephemeral(ctx, meta.Channel, cb.User.ID, "No subscription or alert runs under a deactivated user any more; nothing to request.")
	case errors.Is(err, access.ErrListNotifications):
		log.WithError(err).Error("Could not list what deactivated users left running")
		b.ephemeral(ctx, meta.Channel, cb.User.ID, "I could not list Metabase's subscriptions and alerts: "+access.FailureText(err))
	default:
		b.answerSubmit(ctx, c, r, err)
	}
}

// handoverRefusalText words the hand-over's refusals; ok is false for other codes.
func handoverRefusalText(rf *access.Refusal) (string, bool) {
	switch rf.Code {
	case access.HandoverUnavailable:
		return "This bot cannot read Metabase's subscriptions and alerts, so it cannot hand them over.", true
	case access.HandoverOnlyDisable:
		return "A hand-over goes with `disable` only.", true
	case access.HandoverNeedsSuccessor:
		return "Name who takes over their alerts, or choose to archive what cannot be moved.", true
	case access.SuccessorInactive:
		return fmt.Sprintf("%s is deactivated in Metabase: alerts can only be handed over to an active user.", escape(rf.Subject)), true
	case access.SuccessorIsTarget:
		return fmt.Sprintf("%s is one of the users to disable, so they cannot take over.", escape(rf.Subject)), true
	case access.SuccessorAPIKey:
		return fmt.Sprintf("%s is an API key, not a person: hand alerts over to someone who can look after them.", escape(rf.Subject)), true
	}
	return "", false
}
