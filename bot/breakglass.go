package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Break-glass on the Slack side (issue 27): `/metabase disable now <user>... <reason>`, its card
// marked ⚡ break-glass with Confirm and Reverse, and the words of its review. The rules live in
// the core (access/breakglass.go) and the lifecycle in approval/breakglass.go.

// The review buttons of a break-glass card.
const (
	blockReview   = "mb_review"
	actionConfirm = "mb_bg_confirm"
	actionReverse = "mb_bg_reverse"
)

// breakGlassMark marks break-glass actions in card headers, notification texts and audit lines.
const breakGlassMark = "⚡ break-glass"

// nowWord is the word after `disable` that asks for break-glass.
const nowWord = "now"

// breakGlassUsage is the grammar shown when `now` is misplaced.
func breakGlassUsage() error {
	return usagef("`now` goes right after `disable`, before the users: `disable now <user>... <reason>`. It is for responders in a security incident; anyone else makes an ordinary request with `disable <user>... <reason>`.")
}

// parseNow reads `now` right after `disable`, and returns the words that follow it.
func parseNow(verb Verb, words []string) (bool, []string, error) {
	if len(words) == 0 || !strings.EqualFold(plainWord(words[0]), nowWord) {
		return false, words, nil
	}
	if verb != VerbDisable {
		return false, nil, usagef("`now` only goes with `disable`: re-enabling always needs approval.")
	}
	if len(words) == 1 {
		return false, nil, usagef("`disable now` needs the users and a reason: `disable now <user>... <reason>`.")
	}
	return true, words[1:], nil
}

// checkNow refuses what break-glass does not take, and `now` after the targets, which would
// otherwise start the reason of an ordinary request the person did not mean to make.
func checkNow(cmd Command, words []string, i int) error {
	if !cmd.Now && i < len(words) && strings.EqualFold(plainWord(words[i]), nowWord) {
		return breakGlassUsage()
	}
	if cmd.Now && cmd.Until != "" {
		return usagef("`disable now` takes no `until`: a leave is not an incident. Use `disable <user>... until DATE <reason>`.")
	}
	return nil
}

// IsResponder reads the incident group (INCIDENT_GROUP) when the command arrives, so a removal
// takes effect at once. It implements access.Responders.
func (d *Directory) IsResponder(ctx context.Context, user string) (bool, error) {
	if d.cfg.IncidentGroup == "" {
		return false, nil
	}
	members, err := d.groupMembers(ctx, d.cfg.IncidentGroup)
	if err != nil {
		return false, fmt.Errorf("read incident group: %w", err)
	}
	return slices.Contains(members, user), nil
}

var _ access.Responders = (*Directory)(nil)

// breakGlass answers `disable now`: the core disables at once for a responder; the person hears
// privately when they were refused or when the command became a request for approval.
func (b *Bot) breakGlass(ctx context.Context, sc slack.SlashCommand, cmd Command) {
	c := access.ChangeRequest{Action: approval.Disable, Targets: cmd.Targets, Reason: cmd.Reason,
		Requester: sc.UserID, Channel: sc.ChannelID, SourceKey: "cmd:" + sc.TriggerID, Handover: cmd.handover(),
		RevokeKeys: cmd.RevokeKeys, Unshare: cmd.Unshare}
	r, err := b.core.SubmitNow(ctx, c)
	if err != nil {
		b.answerSubmit(ctx, c, r, err)
		return
	}
	log := b.logger(ctx).WithFields(logrus.Fields{"request_id": r.ID, "targets": access.TargetEmails(r)})
	if r.BreakGlass != nil && r.BreakGlass.FellBack != "" {
		log.WithField("fell_back", r.BreakGlass.FellBack).Warn("Break-glass command posted for approval instead")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, fellBackText(r, b.cfg.Policy.IncidentMaxUsers))
		return
	}
	log.WithField("state", string(r.State)).Warn("Break-glass action taken")
}

// fellBackText tells a responder why their command became a request for approval.
func fellBackText(r approval.Request, maxUsers int) string {
	switch r.BreakGlass.FellBack {
	case access.FellBackLimit:
		return fmt.Sprintf("Break-glass limit reached (%d users per hour): posted for approval instead.", maxUsers)
	case access.FellBackUnreadable:
		return "I could not read the incident group to check that you are a responder: posted for approval instead (request " + r.ID + ")."
	}
	return "Posted for approval instead."
}

// breakGlassRefusalText words the core's break-glass refusals.
func (v *view) breakGlassRefusalText(rf *access.Refusal) (string, bool) {
	switch rf.Code {
	case access.BreakGlassOff:
		return "Break-glass is not set up (INCIDENT_GROUP is empty). Make an ordinary request: `" + v.cfg.SlashCommand + " disable <user>... <reason>`.", true
	case access.NotResponder:
		return "Only incident responders (<!subteam^" + v.cfg.IncidentGroup + ">) can disable without approval. Nothing was done; make an ordinary request with `" +
			v.cfg.SlashCommand + " disable <user>... <reason>`.", true
	case access.NotBreakGlass:
		return "That request was not a break-glass action; there is nothing to review.", true
	case access.AlreadyReviewed:
		if bg := rf.Request.BreakGlass; bg != nil {
			return fmt.Sprintf("This break-glass action was already %s by %s.", bg.Review, mention(bg.ReviewedBy)), true
		}
		return "This break-glass action was already reviewed.", true
	case access.SelfReview:
		return "You took this break-glass action, so another approver must review it.", true
	case access.StillRunning:
		return "The break-glass action is still running; review it once it has finished.", true
	}
	return "", false
}

// breakGlassTitle marks the card's header.
func breakGlassTitle(r approval.Request, title string) string {
	if r.IsBreakGlass() {
		return breakGlassMark + " · " + title
	}
	return title
}

// breakGlassCardText is the notification text of a break-glass card: marked, and mentioning the
// approvers while the review is open (the text is what notifies, docs/slack.md#mentions).
func (v *view) breakGlassCardText(r approval.Request) string {
	text := fmt.Sprintf("%s: Metabase disable %s of %s by %s without approval: %s%s", breakGlassMark, r.ID, targetsSummary(r),
		mention(r.Requester), stateWords(r), v.dryRunTag(r))
	if r.BreakGlass.Review == approval.ReviewOpen {
		text += " · review needed from " + v.approverMention()
	}
	return text
}

// breakGlassStatus is the status line of a break-glass card, with where its review stands.
func (v *view) breakGlassStatus(r approval.Request) string {
	bg := r.BreakGlass
	var head string
	switch r.State {
	case approval.Approved, approval.Executing:
		head = ":zap: *Break-glass* by " + mention(r.Requester) + " · disabling without approval…"
	default:
		head = fmt.Sprintf(":zap: *Break-glass* by %s at %s, no approval · %s%s", mention(r.Requester), slackDate(r.DecidedAt), resultSummary(r), v.dryRunTag(r))
	}
	switch bg.Review {
	case approval.ReviewConfirmed:
		return head + fmt.Sprintf("\n:white_check_mark: *Reviewed: confirmed* by %s at %s", mention(bg.ReviewedBy), slackDate(bg.ReviewedAt))
	case approval.ReviewReversed:
		return head + fmt.Sprintf("\n:leftwards_arrow_with_hook: *Reviewed: reversed* by %s at %s · request %s re-enables them",
			mention(bg.ReviewedBy), slackDate(bg.ReviewedAt), access.ReversalID(r.ID))
	}
	review := fmt.Sprintf("\n:mag: *Review* by %s due %s: Confirm takes one approver other than %s; Reverse takes %s",
		v.approverMention(), slackDate(bg.ReviewBy), mention(r.Requester), plural(max(bg.ReverseRequired, 1), "approver", "approvers"))
	if bg.Handover != nil {
		review += ". Confirm also hands over what they leave running (" + escape(handoverWords(bg.Handover)) + "); Reverse does not"
	}
	if r.RevokeKeys || r.Unshare {
		review += ". Reverse re-enables the users only: it does not restore the API keys or public links this action removed"
	}
	if n := len(bg.ReverseVotes); n > 0 {
		voters := make([]string, n)
		for i, vt := range bg.ReverseVotes {
			voters[i] = mention(vt.UserID)
		}
		review += fmt.Sprintf(" (%d so far: %s)", n, strings.Join(voters, ", "))
	}
	if bg.Flagged {
		review += "\n:warning: *Unreviewed* when the window ended; the users stay disabled and the review is still open."
	}
	return head + review
}

// reviewButtons are Confirm and Reverse while the review is open and the action has finished.
func (v *view) reviewButtons(r approval.Request) (slack.Block, bool) {
	if !r.IsBreakGlass() || !r.State.Final() || r.BreakGlass.Review != approval.ReviewOpen {
		return nil, false
	}
	confirm := slack.NewButtonBlockElement(actionConfirm, r.ID, plain("Confirm"))
	confirm.Style = slack.StylePrimary
	reverse := slack.NewButtonBlockElement(actionReverse, r.ID, plain("Reverse"))
	reverse.Style = slack.StyleDanger
	text := fmt.Sprintf("Re-enable %s? Admin status comes back only where the bot recorded it and nobody changed the user since.", targetsSummaryPlain(r))
	if r.DryRun {
		text = "This was a dry run: nothing was disabled, so nothing is re-enabled."
	}
	reverse.Confirm = slack.NewConfirmationBlockObject(plain("Reverse "+r.ID), plain(clip(text, 300)), plain("Yes, reverse"), plain("Back"))
	return slack.NewActionBlock(blockReview, confirm, reverse), true
}

// breakGlassThread words the thread replies of break-glass events.
func (v *view) breakGlassThread(n access.Notice) ([]threadMessage, bool) {
	e := n.Event
	r := e.Request
	one := func(text string) ([]threadMessage, bool) { return []threadMessage{{text: text}}, true }
	switch e.Type {
	case access.BrokeGlass:
		lines := make([]string, 0, len(r.Targets)+1)
		lines = append(lines, fmt.Sprintf("All %d users of break-glass %s:", len(r.Targets), r.ID))
		for _, t := range r.Targets {
			lines = append(lines, "• "+targetLine(t))
		}
		return chunked(chunkLines(lines, maxSectionText)), true
	case access.ReviewConfirmed:
		return one(":white_check_mark: Reviewed: confirmed by " + mention(e.Actor) + ".")
	case access.ReviewReversed:
		if r.DryRun {
			return one(":leftwards_arrow_with_hook: Reviewed: reversed by " + mention(e.Actor) + ". It was a dry run: nothing to re-enable.")
		}
		return one(":leftwards_arrow_with_hook: Reviewed: reversed by " + mention(e.Actor) + ". Request " + access.ReversalID(r.ID) + " re-enables the users.")
	case access.ReviewReminded:
		return one(v.approverMention() + " reminder: this break-glass action still needs a review (Confirm or Reverse on the card) by " + slackDate(r.BreakGlass.ReviewBy) + ".")
	case access.Unreviewed:
		return one(":warning: Nobody reviewed this break-glass action in time. The users stay disabled; Confirm and Reverse still work.")
	}
	return nil, false
}

// breakGlassHistory is what `history` says of a break-glass action: that it was one, and where
// its review stands.
func breakGlassHistory(r approval.Request) string {
	bg := r.BreakGlass
	switch bg.Review {
	case approval.ReviewConfirmed:
		return breakGlassMark + ", no approval · reviewed: confirmed by " + mention(bg.ReviewedBy) + " " + slackDate(bg.ReviewedAt)
	case approval.ReviewReversed:
		return breakGlassMark + ", no approval · reviewed: reversed by " + mention(bg.ReviewedBy) + " " + slackDate(bg.ReviewedAt) +
			" (`" + access.ReversalID(r.ID) + "`)"
	}
	if bg.Flagged {
		return breakGlassMark + ", no approval · unreviewed (window ended " + slackDate(bg.ReviewBy) + ")"
	}
	return breakGlassMark + ", no approval · review due " + slackDate(bg.ReviewBy)
}

// handoverWords is the hand-over a break-glass action keeps for its confirmation.
func handoverWords(h *approval.Handover) string {
	switch {
	case h.SuccessorEmail != "" && h.Archive:
		return "alerts to " + h.SuccessorEmail + ", the rest archived"
	case h.SuccessorEmail != "":
		return "alerts to " + h.SuccessorEmail
	}
	return "archived"
}
