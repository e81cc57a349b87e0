package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// handleCommand answers one slash command. It runs after the ack, so it may take its time.
func (b *Bot) handleCommand(ctx context.Context, sc slack.SlashCommand) {
	ctx = withReplyURL(ctx, sc.ChannelID, sc.UserID, sc.ResponseURL)
	log := b.log.WithFields(logrus.Fields{"slack_user_id": sc.UserID, "channel_id": sc.ChannelID, "command": sc.Command})
	cmd, err := ParseCommand(sc.Text)
	if err != nil {
		log.WithField("error_message", err.Error()).Info("Refused a command that does not parse")
		// The message quotes what was typed: escape it, or a typed <!channel> would ping.
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, escape(err.Error())+"\n\n"+b.helpText())
		return
	}
	log = log.WithField("verb", string(cmd.Verb))
	switch cmd.Verb {
	case VerbHelp:
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.helpText())
	case VerbDisable, VerbEnable:
		if len(cmd.Targets) == 0 {
			b.openRequestForm(ctx, sc, cmd.Verb, log)
			return
		}
		b.requestChange(ctx, requestInput{
			cmd: cmd, userID: sc.UserID, channelID: sc.ChannelID, sourceKey: "cmd:" + sc.TriggerID,
		}, log)
	case VerbStatus:
		b.status(ctx, sc, cmd, log)
	case VerbInactive:
		b.inactiveReport(ctx, sc, cmd, log)
	}
}

// requestInput is a change request from the text command or the form.
type requestInput struct {
	cmd       Command
	userID    string
	channelID string
	// sourceKey makes a redelivered command create nothing new.
	sourceKey string
	// resolved, when set, are targets already looked up (the inactive report's button).
	resolved []metabase.User
}

// problem is a validation failure for the requester; the text names what they typed.
type problem struct{ msg string }

func (p *problem) Error() string { return p.msg }

func problemf(format string, args ...any) error { return &problem{msg: fmt.Sprintf(format, args...)} }

// requestChange validates a disable or enable and, when everything holds, creates the request
// and its card. Any failure gets an ephemeral reply naming the problem and creates nothing.
func (b *Bot) requestChange(ctx context.Context, in requestInput, log logrus.FieldLogger) {
	r, err := b.buildRequest(ctx, in)
	if errors.Is(err, errRedelivered) {
		log.Info("Ignoring a redelivered command")
		return
	}
	if err != nil {
		var p *problem
		if errors.As(err, &p) {
			log.WithField("error_message", p.msg).Info("Refused a request")
			b.ephemeral(ctx, in.channelID, in.userID, p.msg)
			return
		}
		log.WithError(err).Error("Could not validate a request")
		b.ephemeral(ctx, in.channelID, in.userID, "I could not check that request: "+userMessage(err))
		return
	}
	if err := b.createRequest(ctx, r); err != nil {
		if errors.Is(err, store.ErrExists) {
			log.WithField("request_id", r.ID).Info("Ignoring a redelivered command")
			return
		}
		log.WithError(err).Error("Could not store a request")
		b.ephemeral(ctx, in.channelID, in.userID, "I could not save that request; nothing was changed. Please try again.")
		return
	}
	log.WithFields(logrus.Fields{"request_id": r.ID, "action": string(r.Action), "targets": targetEmails(r)}).Info("Request created")
}

// createRequest stores r with its card and its first audit message in one transaction.
func (b *Bot) createRequest(ctx context.Context, r approval.Request) error {
	extra := ""
	if r.Reason != "" {
		extra = "reason: " + escape(r.Reason)
	}
	out := []store.Outbox{outbox(r.ID, kindCard, message{})}
	out = append(out, targetListThread(r)...)
	out = append(out, b.audit(r, "requested", r.Requester, extra))
	if err := b.store.Create(ctx, r, out...); err != nil {
		return err
	}
	b.cfg.Metrics.requestCreated(r)
	b.kick()
	return nil
}

// targetListThread puts the full target list of a request too long for its card into the
// card's thread (the card shows the first maxCardTargets and says "and N more").
func targetListThread(r approval.Request) []store.Outbox {
	if len(r.Targets) <= maxCardTargets {
		return nil
	}
	lines := make([]string, 0, len(r.Targets)+1)
	lines = append(lines, fmt.Sprintf("All %d users of request %s:", len(r.Targets), r.ID))
	for _, t := range r.Targets {
		lines = append(lines, "• "+targetLine(t))
	}
	var out []store.Outbox
	for _, c := range chunkLines(lines, maxSectionText) {
		out = append(out, thread(r, c))
	}
	return out
}

// buildRequest checks who asks, where, and about whom, and returns the request to create.
func (b *Bot) buildRequest(ctx context.Context, in requestInput) (approval.Request, error) {
	cmd := in.cmd
	if err := b.mayRequest(ctx, in.userID, in.channelID); err != nil {
		return approval.Request{}, err
	}
	if b.cfg.RequireReason && strings.TrimSpace(cmd.Reason) == "" {
		return approval.Request{}, problemf("Please give a reason after the users, e.g. `%s %s %s Left the company`.",
			b.cfg.SlashCommand, cmd.Verb, escape(cmd.Targets[0].Raw))
	}
	now := b.now()
	var returnAt *time.Time
	if cmd.Until != "" {
		t, err := parseReturnDate(cmd.Until, b.cfg.ReturnLocation, now, b.cfg.MaxReturnAhead)
		if err != nil {
			return approval.Request{}, err
		}
		returnAt = &t
	}
	action := approval.Disable
	if cmd.Verb == VerbEnable {
		action = approval.Enable
	}
	users := in.resolved
	if users == nil {
		var problems []string
		for _, ref := range cmd.Targets {
			u, err := b.resolve(ctx, ref)
			if err != nil {
				var p *problem
				if !errors.As(err, &p) {
					return approval.Request{}, err
				}
				problems = append(problems, p.msg)
				continue
			}
			users = append(users, *u)
		}
		if len(problems) > 0 {
			return approval.Request{}, &problem{msg: strings.Join(problems, "\n")}
		}
	}
	var problems []string
	targets := make([]approval.Target, 0, len(users))
	seen := map[int]bool{}
	required := b.cfg.RequiredApprovals
	for _, u := range users {
		if seen[u.ID] {
			continue
		}
		seen[u.ID] = true
		if b.protected(u) {
			problems = append(problems, fmt.Sprintf("%s is protected: the bot never changes this account.", escape(u.Email)))
			continue
		}
		// One read of the user's requests serves the open-request, scheduled-return and
		// recorded-access checks below.
		history, err := b.store.ByTarget(ctx, u.ID)
		if err != nil {
			return approval.Request{}, fmt.Errorf("look up the requests of user %d: %w", u.ID, err)
		}
		// Before the state checks: a redelivery of a command that already disabled the user must
		// stay silent, not report "already deactivated".
		open, err := openRequestIn(history, in.sourceKey)
		if err != nil {
			return approval.Request{}, err
		}
		switch {
		case action == approval.Disable && !u.IsActive:
			problems = append(problems, fmt.Sprintf("%s is already deactivated in Metabase.", escape(u.Email)))
			continue
		case action == approval.Enable && u.IsActive:
			problems = append(problems, fmt.Sprintf("%s is already active in Metabase.", escape(u.Email)))
			continue
		}
		if open != "" {
			problems = append(problems, fmt.Sprintf("%s already has an open request, %s.", escape(u.Email), open))
			continue
		}
		if action == approval.Enable {
			// Enabling now and letting the return run later would re-grant admin status and
			// groups that may have been changed in between.
			if ret, ok := scheduledReturnIn(history); ok {
				problems = append(problems, fmt.Sprintf("%s already comes back automatically %s (%s). To bring them back sooner, an approver first cancels that return with the button in the leave's thread.",
					escape(u.Email), slackDate(ret.NotBefore), ret.ID))
				continue
			}
		}
		t := approval.Target{UserID: u.ID, Email: u.Email, Name: u.Name(), Superuser: u.IsSuperuser,
			GroupIDs: u.Groups(), SSOSource: u.SSOSource, LastLogin: u.LastLogin}
		if action == approval.Enable {
			t.Superuser, t.GroupIDs = false, nil
			if rec, ok := recordedAccessIn(history, u.ID); ok {
				t.Superuser, t.GroupIDs, t.Restore = rec.Superuser, rec.GroupIDs, true
			}
		}
		if action == approval.Disable && u.IsSuperuser {
			required = max(required, b.cfg.AdminRequiredApprovals)
		}
		targets = append(targets, t)
	}
	if len(problems) > 0 {
		return approval.Request{}, &problem{msg: strings.Join(problems, "\n") + "\nNo request was created."}
	}
	if action == approval.Disable {
		if err := b.lastAdminCheck(ctx, targets); err != nil {
			return approval.Request{}, err
		}
	}
	return approval.Request{
		ID: newRequestID(), SourceKey: in.sourceKey, Action: action, State: approval.Pending,
		Requester: in.userID, Targets: targets, Reason: cmd.Reason, ReturnAt: returnAt,
		ChannelID: in.channelID, RequiredApprovals: required,
		CreatedAt: now, ExpiresAt: now.Add(b.cfg.RequestTTL), FinalReminder: b.finalReminder(),
		DryRun: b.cfg.DryRun,
	}, nil
}

// finalReminder keeps the second reminder inside short lifetimes (tests, tight TTLs).
func (b *Bot) finalReminder() time.Duration {
	return min(b.cfg.FinalReminder, b.cfg.RequestTTL/10)
}

// mayRequest applies ALLOWED_CHANNELS and REQUESTER_GROUP.
func (b *Bot) mayRequest(ctx context.Context, user, channel string) error {
	if len(b.cfg.AllowedChannels) > 0 && !slices.Contains(b.cfg.AllowedChannels, channel) {
		return problemf("Requests can only be made in %s.", channelMentions(b.cfg.AllowedChannels))
	}
	if b.cfg.RequesterGroup != "" {
		members, err := b.slack.GetUserGroupMembersContext(ctx, b.cfg.RequesterGroup)
		if err != nil {
			return fmt.Errorf("read requester group: %w", err)
		}
		if !slices.Contains(members, user) {
			return problemf("Only members of <!subteam^%s> can make requests.", b.cfg.RequesterGroup)
		}
	}
	return nil
}

func channelMentions(ids []string) string {
	ms := make([]string, len(ids))
	for i, id := range ids {
		ms[i] = "<#" + id + ">"
	}
	return strings.Join(ms, ", ")
}

// resolve looks a target up in Metabase, through Slack's profile email for a mention.
func (b *Bot) resolve(ctx context.Context, ref TargetRef) (*metabase.User, error) {
	switch ref.Kind {
	case ByID:
		u, err := b.mb.User(ctx, ref.ID)
		if errors.Is(err, metabase.ErrNotFound) {
			return nil, problemf("No Metabase user has the id `%s`.", escape(ref.Raw))
		}
		return u, err
	case BySlackUser:
		su, err := b.slack.GetUserInfoContext(ctx, ref.SlackID)
		if err != nil {
			var se slack.SlackErrorResponse
			if errors.As(err, &se) && se.Err == "user_not_found" {
				return nil, problemf("%s is not a Slack user I can see.", mention(ref.SlackID))
			}
			return nil, fmt.Errorf("users.info: %w", err)
		}
		if su.Profile.Email == "" {
			return nil, problemf("%s has no email I can see in Slack (the app needs users:read.email, and bots have none). Name them by email or Metabase id.", mention(ref.SlackID))
		}
		u, err := b.mb.UserByEmail(ctx, su.Profile.Email)
		if errors.Is(err, metabase.ErrNotFound) {
			return nil, problemf("%s's email %s has no Metabase account.", mention(ref.SlackID), escape(su.Profile.Email))
		}
		return u, err
	default:
		u, err := b.mb.UserByEmail(ctx, ref.Email)
		if errors.Is(err, metabase.ErrNotFound) {
			return nil, problemf("No Metabase user has the email `%s`.", escape(ref.Raw))
		}
		return u, err
	}
}

// protected reports whether u may never be targeted: listed in PROTECTED_USERS by email or id,
// or the bot's own Metabase account (disabling it would lock the bot out).
func (b *Bot) protected(u metabase.User) bool {
	if b.cfg.BotMetabaseUserID != 0 && u.ID == b.cfg.BotMetabaseUserID {
		return true
	}
	for _, p := range b.cfg.ProtectedUsers {
		p = strings.TrimSpace(p)
		if strings.EqualFold(p, u.Email) || p == strconv.Itoa(u.ID) {
			return true
		}
	}
	return false
}

// errRedelivered: the command or form was already turned into a request; Slack delivered it
// again (to this replica or another), and it is ignored without a word to the requester.
var errRedelivered = errors.New("command already handled")

// openRequestIn returns the id of an open request among a user's requests, so the same person is not
// asked about twice at once, or errRedelivered when a request naming the user already came from
// sourceKey.
func openRequestIn(rs []approval.Request, sourceKey string) (string, error) {
	if sourceKey != "" && slices.ContainsFunc(rs, func(r approval.Request) bool { return r.SourceKey == sourceKey }) {
		return "", errRedelivered
	}
	for _, r := range rs {
		if r.State.Open() && r.ParentID == "" {
			return r.ID, nil
		}
	}
	return "", nil
}

// scheduledReturnIn returns the automatic return from leave among a user's requests, if any.
func scheduledReturnIn(rs []approval.Request) (approval.Request, bool) {
	for _, r := range rs {
		if r.State == approval.Scheduled && r.ParentID != "" {
			return r, true
		}
	}
	return approval.Request{}, false
}

// recordedAccessIn finds, among a user's requests (newest first), what the bot recorded when it
// last disabled the user: Metabase's reactivation resets is_superuser, so an enable restores this.
func recordedAccessIn(rs []approval.Request, userID int) (approval.Target, bool) {
	for _, r := range rs { // newest first
		if r.Action != approval.Disable || (r.State != approval.Succeeded && r.State != approval.Partial) || r.DryRun {
			continue
		}
		for _, t := range r.Targets {
			if t.UserID == userID && t.Result.Outcome == approval.Done {
				return t, true
			}
		}
	}
	return approval.Target{}, false
}

// lastAdminCheck refuses to deactivate every remaining active person who is a Metabase admin.
// Metabase itself refuses only when no active member of the Admin group would remain, and an API
// key in Administrators (the bot's own, usually) counts there; but a Metabase that only API keys
// can administer has nobody left to sign in and fix things, so the bot refuses earlier. GET
// /api/user lists people only, which is exactly the count wanted.
func (b *Bot) lastAdminCheck(ctx context.Context, targets []approval.Target) error {
	admins := 0
	for _, t := range targets {
		if t.Superuser {
			admins++
		}
	}
	if admins == 0 {
		return nil
	}
	active, err := b.mb.ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		return fmt.Errorf("count active admins: %w", err)
	}
	total := 0
	for _, u := range active {
		if u.IsSuperuser {
			total++
		}
	}
	if admins >= total {
		return problemf("That would deactivate the last active Metabase admin who is a person, leaving Metabase with no admin who can sign in. Make someone else an admin first.")
	}
	return nil
}

// parseReturnDate reads `until` values: a date means 00:00 in loc; an RFC 3339 time is taken as
// written. Past dates and dates further than maxAhead are refused.
func parseReturnDate(s string, loc *time.Location, now time.Time, maxAhead time.Duration) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		t, err = time.Parse(time.RFC3339, s)
	}
	if err != nil {
		return time.Time{}, problemf("I can't read the return date %s: use YYYY-MM-DD or an RFC 3339 time like 2027-01-15T09:00:00+01:00.", escape(strconv.Quote(truncateRunes(s, 40))))
	}
	if !t.After(now) {
		return time.Time{}, problemf("The return date %s is in the past.", escape(s))
	}
	if t.Sub(now) > maxAhead {
		return time.Time{}, problemf("The return date %s is more than %d days away; the limit is %d days.", escape(s),
			int(t.Sub(now).Hours()/24), int(maxAhead.Hours()/24))
	}
	return t, nil
}

func targetEmails(r approval.Request) []string {
	out := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		out[i] = t.Email
	}
	return out
}

// replyURL is a slash command's response_url, carried in the context of its handler so every
// reply to that command can use it without threading it through each validation helper.
type replyURL struct{ channel, user, url string }

type replyURLKey struct{}

func withReplyURL(ctx context.Context, channel, user, url string) context.Context {
	if url == "" {
		return ctx
	}
	return context.WithValue(ctx, replyURLKey{}, replyURL{channel, user, url})
}

// ephemeral replies privately; delivery is best effort (Slack does not guarantee ephemerals).
// A reply to a slash command goes through its response_url, which works even where the bot is
// not a member (chat.postEphemeral answers not_in_channel there); chat.postEphemeral is the
// fallback.
func (b *Bot) ephemeral(ctx context.Context, channel, user, text string, extra ...slack.MsgOption) {
	opts := append([]slack.MsgOption{slack.MsgOptionText(clip(text, 3900), false)}, extra...)
	if ru, ok := ctx.Value(replyURLKey{}).(replyURL); ok && ru.channel == channel && ru.user == user {
		_, _, err := b.slack.PostMessageContext(ctx, "", append(opts, slack.MsgOptionResponseURL(ru.url, slack.ResponseTypeEphemeral))...)
		if err == nil {
			return
		}
		// The error may quote the response_url, which lets anyone post to the channel: log the code only.
		b.log.WithField("error_code", slackCode(err)).Debug("Could not reply through response_url; trying chat.postEphemeral")
	}
	_, err := b.slack.PostEphemeralContext(ctx, channel, user, opts...)
	if err != nil {
		b.cfg.Metrics.slackError("chat.postEphemeral", err)
		b.log.WithError(err).WithFields(logrus.Fields{"channel_id": channel, "slack_user_id": user}).Warn("Could not send an ephemeral reply")
	}
}
