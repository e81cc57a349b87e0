package bot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/metabase"
)

// actionInactiveRequest is the report's "Request disable of these N users" button.
const actionInactiveRequest = "mb_inactive_request"

// maxReportLines bounds the report's listing; the count and total are always exact.
const maxReportLines = 40

// inactiveUsers lists active users with no login for days (or who never logged in and joined
// more than days ago), oldest first, leaving out protected accounts and the bot's own.
func (b *Bot) inactiveUsers(ctx context.Context, days int) ([]metabase.User, error) {
	all, err := b.mb.ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		return nil, err
	}
	return selectInactive(all, b.now().AddDate(0, 0, -days), b.protected), nil
}

// selectInactive is the report's rule, apart from I/O so it can be tested and benchmarked.
func selectInactive(all []metabase.User, cutoff time.Time, protected func(metabase.User) bool) []metabase.User {
	var out []metabase.User
	for _, u := range all {
		if !u.IsActive || protected(u) {
			continue
		}
		if seen := lastSeen(u); seen.Before(cutoff) {
			out = append(out, u)
		}
	}
	slices.SortStableFunc(out, func(a, b metabase.User) int { return lastSeen(a).Compare(lastSeen(b)) })
	return out
}

// lastSeen is the last login, or the join date for someone who never logged in.
func lastSeen(u metabase.User) time.Time {
	if u.LastLogin != nil {
		return *u.LastLogin
	}
	return u.DateJoined
}

// inactiveReport answers `inactive [DAYS]` privately, with a button that turns the list into
// one bulk request.
func (b *Bot) inactiveReport(ctx context.Context, sc slack.SlashCommand, cmd Command, log logrus.FieldLogger) {
	if err := b.mayRequest(ctx, sc.UserID, sc.ChannelID); err != nil {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, problemText(err))
		return
	}
	all, err := b.mb.ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		log.WithError(err).Error("Could not list users for the inactive report")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, "I could not list Metabase users: "+userMessage(err))
		return
	}
	users := selectInactive(all, b.now().AddDate(0, 0, -cmd.Days), b.protected)
	head := fmt.Sprintf("*%d of %d active Metabase users* have not logged in for %d days (oldest first):", len(users), len(all), cmd.Days)
	if len(users) == 0 {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, fmt.Sprintf("All %d active Metabase users logged in within the last %d days.", len(all), cmd.Days))
		return
	}
	lines := make([]string, 0, min(len(users), maxReportLines)+1)
	for i, u := range users {
		if i == maxReportLines {
			lines = append(lines, fmt.Sprintf("…and %d more (the request lists them all)", len(users)-maxReportLines))
			break
		}
		login := "never logged in (joined " + u.DateJoined.UTC().Format("2006-01-02") + ")"
		if u.LastLogin != nil {
			login = "last login " + u.LastLogin.UTC().Format("2006-01-02")
		}
		lines = append(lines, fmt.Sprintf("• %s · %s · %s", escape(u.Name()), escape(u.Email), login))
	}
	btn := slack.NewButtonBlockElement(actionInactiveRequest, strconv.Itoa(cmd.Days),
		plain(clip(fmt.Sprintf("Request disable of these %d users", len(users)), 75)))
	btn.Style = slack.StyleDanger
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(head), nil, nil),
		slack.NewSectionBlock(mrkdwn(clipLines(lines, maxSectionText)), nil, nil),
		slack.NewActionBlock(blockThreadActions, btn),
	}
	_, err = b.slack.PostEphemeralContext(ctx, sc.ChannelID, sc.UserID,
		slack.MsgOptionText(head, false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		b.cfg.Metrics.slackError("chat.postEphemeral", err)
		log.WithError(err).Warn("Could not send the inactive report")
	}
}

// inactiveRequestClicked opens the form that asks for the bulk request's reason.
func (b *Bot) inactiveRequestClicked(ctx context.Context, cb slack.InteractionCallback, value string, log logrus.FieldLogger) {
	days, err := strconv.Atoi(value)
	if err != nil || days < 1 || days > 3650 {
		log.Warn("Ignoring an inactive-report click with a bad value")
		return
	}
	reason := textInput(blockFormReason, actionFormReason, "Reason", fmt.Sprintf("licence clean-up: no login for %d days", days), true, !b.cfg.RequireReason)
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
