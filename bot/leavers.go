package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// The leavers report's button and form.
const (
	actionLeaversRequest = "mb_leavers_request"
	callbackLeaversForm  = "mb_leavers_form"
)

const (
	// membersPageSize is users.list's page: Slack recommends no more than 200
	// (https://api.slack.com/methods/users.list).
	membersPageSize = 200
	// membersSpacing is the least time between two users.list pages: Tier 2, about 20 calls a
	// minute (https://api.slack.com/methods/users.list, docs/slack.md#rate-limits).
	membersSpacing = 3 * time.Second
	// progressEvery is how many pages pass between two progress lines; a command's response_url
	// takes five messages, so there are at most maxProgress of them.
	progressEvery = 10
	maxProgress   = 2
	// leaversTimeout bounds reading the member list and Metabase for one report: a workspace of
	// 10,000 people is 50 pages, two and a half minutes at Tier 2.
	leaversTimeout = 10 * time.Minute
	// maxMembersPages bounds one read of the member list (200,000 people).
	maxMembersPages = 1000
)

// membersPager is the users.list call of slack-go's client.
type membersPager interface {
	GetUsersPaginated(options ...slack.GetUsersOption) slack.UserPagination
}

// leavers is `/metabase leavers`: people whose Slack account is deactivated and who are still
// active in Metabase, the backstop for deactivations the bot missed while it was down
// (deactivation.go handles them as they happen).
type leavers struct{ *Bot }

// report answers `leavers` privately, with a button that turns the list into one bulk request.
// Who may run it follows the rules of `inactive`.
func (b leavers) report(ctx context.Context, sc slack.SlashCommand) {
	log := b.logger(ctx)
	// Checked before the member list is read, so nobody else can make the bot read it.
	if err := b.dir.MayRequest(ctx, sc.UserID, sc.ChannelID); err != nil {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opCheck, err))
		return
	}
	ctx, cancel := untilShutdown(ctx, leaversTimeout)
	defer cancel()
	b.ephemeral(ctx, sc.ChannelID, sc.UserID, "Reading Slack's member list for deactivated accounts…")
	shown := 0
	emails, err := b.deactivatedEmails(ctx, func(pages, read int) {
		if pages%progressEvery == 0 && shown < maxProgress {
			shown++
			b.ephemeral(ctx, sc.ChannelID, sc.UserID, fmt.Sprintf("Still reading Slack's member list: %d members so far…", read))
		}
	})
	if err != nil {
		log.WithError(err).Warn("Could not read Slack's member list for the leavers report")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, "I could not read Slack's member list: "+escape(slackCode(err))+". Please try again later.")
		return
	}
	users, unreachable, err := b.core.Leavers(ctx, sc.UserID, sc.ChannelID, emails)
	if err != nil {
		if access.IsRefusal(err) {
			b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opCheck, err))
			return
		}
		log.WithError(err).Error("Could not list users for the leavers report")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opListUsers, err))
		return
	}
	missing := ""
	if len(unreachable) > 0 {
		missing = fmt.Sprintf("\n:warning: Not included: %s did not answer.", escape(strings.Join(unreachable, ", ")))
	}
	if len(users) == 0 {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, fmt.Sprintf("None of the %s deactivated in Slack is active in Metabase.",
			plural(len(emails), "person", "people"))+missing)
		return
	}
	verb := "are"
	if len(users) == 1 {
		verb = "is"
	}
	head := fmt.Sprintf("*%s* deactivated in Slack %s still active in Metabase:", plural(len(users), "account", "accounts"), verb) + missing
	lines := make([]string, 0, min(len(users), maxReportLines)+1)
	for i, iu := range users {
		if i == maxReportLines {
			lines = append(lines, fmt.Sprintf("…and %d more (the request lists them all)", len(users)-maxReportLines))
			break
		}
		where := ""
		if b.core.MultiInstance() {
			where = escape(iu.Instance) + ": "
		}
		lines = append(lines, fmt.Sprintf("• %s%s · %s", where, escape(iu.User.Name()), escape(iu.User.Email)))
	}
	btn := slack.NewButtonBlockElement(actionLeaversRequest, "leavers",
		plain(clip(fmt.Sprintf("Request disable of these %d users", len(users)), 75)))
	btn.Style = slack.StyleDanger
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(head), nil, nil),
		slack.NewSectionBlock(mrkdwn(clipLines(lines, maxSectionText)), nil, nil),
		slack.NewActionBlock(blockThreadActions, btn),
	}
	b.ephemeral(ctx, sc.ChannelID, sc.UserID, head, slack.MsgOptionBlocks(blocks...))
}

// deactivatedEmails reads every page of users.list, paced under its tier, and returns the emails
// of the deactivated people (bots have none that matter). progress is told after each page.
func (b leavers) deactivatedEmails(ctx context.Context, progress func(pages, read int)) ([]string, error) {
	api, ok := b.slack.(membersPager)
	if !ok {
		return nil, errors.New("this Slack client cannot list members")
	}
	spacing := b.cfg.MembersSpacing
	if spacing <= 0 {
		spacing = membersSpacing
	}
	var emails []string
	cursor, read := "", 0
	var last time.Time
	for pages := 1; ; pages++ {
		if pages > maxMembersPages {
			return nil, fmt.Errorf("users.list: more than %d pages", maxMembersPages)
		}
		var page slack.UserPagination
		for {
			if err := sleepUntil(ctx, last.Add(spacing)); err != nil {
				return nil, err
			}
			last = time.Now()
			var err error
			page, err = api.GetUsersPaginated(slack.GetUsersOptionLimit(membersPageSize), slack.GetUsersOptionCursor(cursor),
				slack.GetUsersOptionIncludeLocale(false)).Next(ctx)
			if err == nil {
				break
			}
			b.cfg.Metrics.slackError("users.list", err)
			var rl *slack.RateLimitedError
			if !errors.As(err, &rl) {
				return nil, err
			}
			// Wait as Slack asked, and never less than the spacing.
			last = time.Now().Add(max(rl.RetryAfter-spacing, 0))
		}
		for _, u := range page.Users {
			if u.Deleted && !u.IsBot && u.Profile.Email != "" {
				emails = append(emails, u.Profile.Email)
			}
		}
		read += len(page.Users)
		progress(pages, read)
		if page.Cursor == "" {
			return emails, nil
		}
		cursor = page.Cursor
	}
}

// sleepUntil waits until t, or returns ctx's error.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// clicked opens the form that asks for the bulk request's reason.
func (b leavers) clicked(ctx context.Context, cb slack.InteractionCallback) {
	reason := textInput(blockFormReason, actionFormReason, "Reason", "Slack account deactivated", true, !b.cfg.Policy.RequireReason)
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackLeaversForm, Title: plain("Leavers"),
		Submit: plain("Request"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn("Request one approval to disable every person deactivated in Slack who is still active in Metabase."), nil, nil),
			reason}},
		PrivateMetadata: formMeta{Channel: cb.Channel.ID}.encode(),
	}
	if _, err := b.slack.OpenViewContext(ctx, cb.TriggerID, view); err != nil {
		b.cfg.Metrics.slackError("views.open", err)
		b.logger(ctx).WithError(err).Warn("Could not open the leavers form")
		b.ephemeral(ctx, cb.Channel.ID, cb.User.ID, "I could not open the form; please click again.")
	}
}

// submitted turns the leavers report into one bulk disable, reading Slack and Metabase again so
// the request reflects the moment it is made. The form's view id makes a redelivered submission
// create nothing new.
func (b leavers) submitted(ctx context.Context, meta formMeta, user, viewID, reason string) {
	log := b.logger(ctx)
	if reason == "" {
		reason = "Slack account deactivated"
	}
	ctx, cancel := untilShutdown(ctx, leaversTimeout)
	defer cancel()
	emails, err := b.deactivatedEmails(ctx, func(int, int) {})
	if err != nil {
		log.WithError(err).Warn("Could not read Slack's member list for the leavers request")
		b.ephemeral(ctx, meta.Channel, user, "I could not read Slack's member list: "+escape(slackCode(err))+". Please try again later.")
		return
	}
	c := access.ChangeRequest{Reason: reason, Requester: user, Channel: meta.Channel, SourceKey: "leavers:" + viewID}
	r, n, err := b.core.SubmitLeavers(ctx, c, emails)
	switch {
	case err == nil && n == 0:
		b.ephemeral(ctx, meta.Channel, user, "Nobody deactivated in Slack is active in Metabase any more; nothing to request.")
	case errors.Is(err, access.ErrListUsers):
		log.WithError(err).Error("Could not list Metabase users for the leavers request")
		b.ephemeral(ctx, meta.Channel, user, b.v.explain(opListUsers, err))
	default:
		b.answerSubmit(ctx, c, r, err)
	}
}

// untilShutdown gives a handler up to timeout, longer than a handler's usual bound, for reading
// the member list, but ends it when the bot stops: the read is only a report, and a shutdown must
// not wait minutes for it.
func untilShutdown(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	run, ok := ctx.Value(runCtxKey{}).(context.Context)
	if !ok {
		return c, cancel
	}
	stop := context.AfterFunc(run, cancel)
	return c, func() { stop(); cancel() }
}
