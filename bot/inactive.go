package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// actionInactiveRequest is the report's "Request disable of these N users" button.
const actionInactiveRequest = "mb_inactive_request"

// maxReportLines bounds the report's listing; the count and total are always exact.
const maxReportLines = 40

// inactiveReport answers `inactive [DAYS]` privately, with a button that turns the list into
// one bulk request.
func (b *Bot) inactiveReport(ctx context.Context, sc slack.SlashCommand, cmd Command) {
	log := b.logger(ctx)
	users, total, unreachable, err := b.core.Inactive(ctx, sc.UserID, sc.ChannelID, cmd.Days)
	if err != nil {
		if access.IsRefusal(err) {
			b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opCheck, err))
			return
		}
		log.WithError(err).Error("Could not list users for the inactive report")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opListUsers, err))
		return
	}
	head := fmt.Sprintf("*%d of %d active Metabase users* have not logged in for %d days (oldest first):", len(users), total, cmd.Days)
	missing := ""
	if len(unreachable) > 0 {
		missing = fmt.Sprintf("\n:warning: Not included: %s did not answer.", escape(strings.Join(unreachable, ", ")))
		head += missing
	}
	if len(users) == 0 {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, fmt.Sprintf("All %d active Metabase users logged in within the last %d days.", total, cmd.Days)+missing)
		return
	}
	lines := make([]string, 0, min(len(users), maxReportLines)+1)
	for i, iu := range users {
		u := iu.User
		if i == maxReportLines {
			lines = append(lines, fmt.Sprintf("…and %d more (the request lists them all)", len(users)-maxReportLines))
			break
		}
		login := "never logged in (joined " + u.DateJoined.UTC().Format("2006-01-02") + ")"
		if u.LastLogin != nil {
			login = "last login " + u.LastLogin.UTC().Format("2006-01-02")
		}
		where := ""
		if b.core.MultiInstance() {
			where = escape(iu.Instance) + ": "
		}
		lines = append(lines, fmt.Sprintf("• %s%s · %s · %s", where, escape(u.Name()), escape(u.Email), login))
	}
	btn := slack.NewButtonBlockElement(actionInactiveRequest, strconv.Itoa(cmd.Days),
		plain(clip(fmt.Sprintf("Request disable of these %d users", len(users)), 75)))
	btn.Style = slack.StyleDanger
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(head), nil, nil),
		slack.NewSectionBlock(mrkdwn(clipLines(lines, maxSectionText)), nil, nil),
		slack.NewActionBlock(blockThreadActions, btn),
	}
	// Through the command's response_url: it reaches the person even in a channel without the bot.
	b.ephemeral(ctx, sc.ChannelID, sc.UserID, head, slack.MsgOptionBlocks(blocks...))
}

// inactiveRequestClicked opens the form that asks for the bulk request's reason.
func (b *Bot) inactiveRequestClicked(ctx context.Context, cb slack.InteractionCallback, value string) {
	log := b.logger(ctx)
	days, err := strconv.Atoi(value)
	if err != nil || days < 1 || days > 3650 {
		log.Warn("Ignoring an inactive-report click with a bad value")
		return
	}
	reason := textInput(blockFormReason, actionFormReason, "Reason", fmt.Sprintf("licence clean-up: no login for %d days", days), true, !b.cfg.Policy.RequireReason)
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackInactiveForm, Title: plain("Licence clean-up"),
		Submit: plain("Request"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn(fmt.Sprintf("Request one approval to disable every active user with no login for %d days.", days)), nil, nil),
			reason}},
		PrivateMetadata: formMeta{Channel: cb.Channel.ID, Days: days}.encode(),
	}
	if _, err := b.slack.OpenViewContext(ctx, cb.TriggerID, view); err != nil {
		b.cfg.Metrics.slackError("views.open", err)
		log.WithError(err).Warn("Could not open the clean-up form")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not open the form; please click again.")
	}
}

// inactiveRequest turns the inactive report into one bulk disable. The form's view id makes a
// redelivered submission create nothing new, while a later request from a new form (after a
// denial, say) is a request of its own.
func (b *Bot) inactiveRequest(ctx context.Context, meta formMeta, user, viewID, reason string) {
	log := b.logger(ctx)
	if reason == "" {
		reason = fmt.Sprintf("licence clean-up: no login for %d days", meta.Days)
	}
	c := access.ChangeRequest{Reason: reason, Requester: user, Channel: meta.Channel, SourceKey: "inactive:" + viewID}
	r, n, err := b.core.SubmitInactive(ctx, c, meta.Days)
	switch {
	case err == nil && n == 0:
		b.ephemeral(ctx, meta.Channel, user, fmt.Sprintf("No active user has been inactive for %d days any more; nothing to request.", meta.Days))
	case errors.Is(err, access.ErrListUsers):
		log.WithError(err).Error("Could not list inactive users")
		b.ephemeral(ctx, meta.Channel, user, b.v.explain(opListInactive, err))
	default:
		b.answerSubmit(ctx, c, r, err)
	}
}
