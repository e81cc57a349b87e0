package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// handleCommand answers one slash command. It runs after the ack, so it may take its time.
func (b *Bot) handleCommand(ctx context.Context, sc slack.SlashCommand) {
	ctx = withReplyURL(ctx, sc.ChannelID, sc.UserID, sc.ResponseURL)
	ctx = withDelayNotice(ctx, func(wait time.Duration) {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, fmt.Sprintf(
			"Slack asked me to wait %s before I can check who may make requests; I'll answer then.", waitWords(wait)))
	})
	log := b.log.WithFields(logrus.Fields{"slack_user_id": sc.UserID, "channel_id": sc.ChannelID, "command": sc.Command})
	cmd, err := ParseCommand(sc.Text)
	if err != nil {
		log.WithField("error_message", err.Error()).Info("Refused a command that does not parse")
		// The message quotes what was typed: escape it, or a typed <!channel> would ping.
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, escape(err.Error())+"\n\n"+b.v.helpText())
		return
	}
	log = log.WithField("verb", string(cmd.Verb))
	ctx = access.WithLogger(ctx, log)
	switch cmd.Verb {
	case VerbHelp:
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.helpText())
	case VerbDisable, VerbEnable:
		if len(cmd.Targets) == 0 {
			forms{b}.openRequestForm(ctx, sc, cmd.Verb)
			return
		}
		if cmd.Now {
			b.breakGlass(ctx, sc, cmd)
			return
		}
		b.submit(ctx, access.ChangeRequest{
			Action: cmd.action(), Targets: cmd.Targets, Until: cmd.Until, Reason: cmd.Reason,
			Requester: sc.UserID, Channel: sc.ChannelID, SourceKey: "cmd:" + sc.TriggerID, Handover: cmd.handover(),
			RevokeKeys: cmd.RevokeKeys, Unshare: cmd.Unshare,
		})
	case VerbStatus:
		b.status(ctx, sc, cmd)
	case VerbHistory:
		b.history(ctx, sc, cmd)
	case VerbInactive:
		b.inactiveReport(ctx, sc, cmd)
	case VerbOrphans:
		b.orphansReport(ctx, sc)
	case VerbLeavers:
		leavers{b}.report(ctx, sc)
	case VerbPending:
		b.pending(ctx, sc)
	}
}

// submit hands a change request to the core and answers the requester when it is refused.
func (b *Bot) submit(ctx context.Context, c access.ChangeRequest) {
	r, err := b.core.Submit(ctx, c)
	b.answerSubmit(ctx, c, r, err)
}

// answerSubmit tells the requester why a request was not created; a created request speaks for
// itself through its card.
func (b *Bot) answerSubmit(ctx context.Context, c access.ChangeRequest, r approval.Request, err error) {
	log := b.logger(ctx)
	switch {
	case err == nil:
		log.WithFields(logrus.Fields{"request_id": r.ID, "action": string(r.Action), "targets": access.TargetEmails(r)}).Info("Request created")
	case errors.Is(err, access.ErrRedelivered):
		log.Info("Ignoring a redelivered command")
	case access.IsRefusal(err):
		text := b.v.explain(opValidate, err)
		log.WithField("error_message", text).Info("Refused a request")
		b.ephemeral(ctx, c.Channel, c.Requester, text)
	case errors.Is(err, access.ErrNotSaved):
		log.WithError(err).Error("Could not store a request")
		b.ephemeral(ctx, c.Channel, c.Requester, b.v.explain(opSave, err))
	default:
		log.WithError(err).Error("Could not validate a request")
		b.ephemeral(ctx, c.Channel, c.Requester, b.v.explain(opValidate, err))
	}
}

// status answers `status <user>` privately: the user's Metabase state and any open request or
// scheduled return.
func (b *Bot) status(ctx context.Context, sc slack.SlashCommand, cmd Command) {
	log := b.logger(ctx)
	st, err := b.core.Status(ctx, sc.UserID, sc.ChannelID, cmd.Targets[0])
	if err != nil {
		if !access.IsRefusal(err) {
			log.WithError(err).Error("Could not look a user up for status")
			b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opLookUp, err))
			return
		}
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opCheck, err))
		return
	}
	if st.HistoryErr != nil {
		log.WithError(st.HistoryErr).Error("Could not read requests for status")
	}
	b.ephemeral(ctx, sc.ChannelID, sc.UserID, statusText(st))
}

// statusText is the status of a user; with several instances, a block per instance where they
// exist and a line for each where they are not (or that did not answer).
func statusText(st access.Status) string {
	if st.Instance == "" {
		return instanceStatusText(st)
	}
	blocks := []string{instanceStatusText(st)}
	for _, also := range st.Also {
		blocks = append(blocks, instanceStatusText(also))
	}
	var notes []string
	for _, n := range st.Notes {
		notes = append(notes, fmt.Sprintf("*%s*: %s", escape(n.Instance), escape(n.Note)))
	}
	if len(notes) > 0 {
		blocks = append(blocks, strings.Join(notes, "\n"))
	}
	return strings.Join(blocks, "\n\n")
}

func instanceStatusText(st access.Status) string {
	u := st.User
	state := "active"
	if !u.IsActive {
		state = "deactivated"
	}
	login := "never"
	if u.LastLogin != nil {
		login = slackDate(*u.LastLogin)
	}
	sso := "none (password)"
	if u.SSOSource != "" {
		sso = escape(u.SSOSource)
	}
	groups := make([]string, 0, len(u.Groups()))
	for _, g := range u.Groups() {
		groups = append(groups, strconv.Itoa(g))
	}
	head := fmt.Sprintf("*%s* · %s · Metabase id %d", escape(u.Name()), escape(u.Email), u.ID)
	if st.Instance != "" {
		head = fmt.Sprintf("*%s:* *%s* · %s · Metabase id %s:%d", escape(st.Instance), escape(u.Name()), escape(u.Email), escape(st.Instance), u.ID)
	}
	lines := []string{
		head,
		"State: *" + state + "*",
		"Admin: " + yesNo(u.IsSuperuser),
		"Last login: " + login,
		"SSO: " + sso,
		"Groups: " + nonEmpty(strings.Join(groups, ", "), "none"),
	}
	if st.Protected {
		lines = append(lines, "Protected: the bot never changes this account.")
	}
	for _, r := range st.Open {
		switch r.State {
		case approval.Scheduled:
			lines = append(lines, fmt.Sprintf("Scheduled return: %s (request %s)", slackDate(r.NotBefore), r.ParentID))
		default:
			lines = append(lines, fmt.Sprintf("Open request: %s to %s, %s, requested by %s", r.ID, r.Action, stateWords(r), mention(r.Requester)))
		}
	}
	lines = append(lines, watchStatusLines(st.Watch)...)
	return strings.Join(lines, "\n")
}

// helpText is the usage shown for help and for commands that do not parse.
func (v *view) helpText() string {
	c := v.cfg.SlashCommand
	lines := []string{
		"*Metabase access, with approval*",
		"`" + c + " disable <user>... [until YYYY-MM-DD] [handover <user> [archive]] [revoke-keys] [unshare] <reason>`: ask to deactivate users (a date re-enables them then; `handover` moves their alerts to that user, and `archive` archives what cannot move instead of listing it; `revoke-keys` also deletes the API keys the card shows as theirs, `unshare` the public links)",
		"`" + c + " enable <user>... <reason>`: ask to reactivate users (admin rights the bot recorded are restored)",
	}
	if v.cfg.IncidentGroup != "" {
		lines = append(lines, "`"+c+" disable now <user>... <reason>`: security incident, responders (<!subteam^"+v.cfg.IncidentGroup+
			">) only: deactivate at once, approvers review afterwards")
	}
	lines = append(lines,
		"`"+c+" status <user>`: show a user's Metabase state and any open request",
		"`"+c+" history <user>`: list every request that named a user, newest first, with who asked, who approved and what happened",
		"`"+c+" inactive [DAYS]`: list active users who have not logged in for DAYS (default 90)",
		"`"+c+" leavers`: list people whose Slack account is deactivated and who are still active in Metabase, and request their deactivation",
		"`"+c+" pending`: list what waits for you: requests waiting for a decision (approvers), your own open requests and scheduled returns, with links to their cards; the app's Home tab shows the same",
		"`"+c+" orphans`: list subscriptions and alerts whose creator is deactivated, and request their hand-over",
		"`"+c+" disable` with nothing else opens a form.",
		"A user is an email, a Metabase user id, or a Slack @mention. Approvers: "+v.approverMention()+".",
	)
	return strings.Join(lines, "\n")
}
