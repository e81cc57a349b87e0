package bot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Block and action ids. Every actions block carries a block_id: without one slack-go decodes a
// click as an attachment action and block-action routing never sees it.
const (
	blockDecision      = "mb_decision"
	blockThreadActions = "mb_thread_actions"
	actionApprove      = "mb_approve"
	actionDeny         = "mb_deny"
	actionCancel       = "mb_cancel"
	actionRetry        = "mb_retry"
	actionCancelReturn = "mb_cancel_return"
)

// Slack's Block Kit limits (docs/slack.md#block-kit-limits).
const (
	maxSectionText = 3000
	maxFieldText   = 2000
	maxHeaderText  = 150
	maxBlocks      = 50
	// maxCardTargets is how many targets a card lists before "and N more"; the full list goes
	// to the thread.
	maxCardTargets = 15
)

// targetsSummary names the targets for one-line mrkdwn texts: "jane@example.com" or
// "jane@example.com and 4 more".
func targetsSummary(r approval.Request) string { return escape(targetsSummaryPlain(r)) }

func (v *view) dryRunTag(r approval.Request) string {
	if r.DryRun {
		return " [DRY RUN: Metabase will not be changed]"
	}
	return ""
}

// cardText is the card's notification text and its text form (shown by clients that cannot
// render blocks, and in the README).
//
// A pending card's text mentions the approvers: Slack notifies the people a message's text
// mentions, and the text is also what the notification shows (docs/slack.md#mentions). Edits
// notify nobody, so later states need no mention.
func (v *view) cardText(r approval.Request) string {
	if r.IsBreakGlass() {
		return v.breakGlassCardText(r)
	}
	text := fmt.Sprintf("Metabase %s request %s for %s by %s: %s%s", r.Action, r.ID, targetsSummary(r),
		mention(r.Requester), stateWords(r), v.dryRunTag(r))
	if r.State == approval.Pending {
		text += " · " + v.approverMention()
	}
	return text
}

// stateWords says where a request stands, for the card and its text form.
func stateWords(r approval.Request) string {
	switch r.State {
	case approval.Pending:
		return fmt.Sprintf("waiting for approval (%d of %d)", len(r.Approvals), r.RequiredApprovals)
	case approval.Approved, approval.Executing:
		return "approved, working on it"
	case approval.Scheduled:
		return "scheduled for " + slackDate(r.NotBefore)
	case approval.Succeeded:
		return verbPast(r.Action)
	case approval.Partial:
		return "partly done, some users failed"
	case approval.Failed:
		return "failed"
	case approval.Denied:
		return "denied"
	case approval.Expired:
		return "expired"
	case approval.Cancelled:
		return "cancelled"
	}
	return string(r.State)
}

// renderCard builds the approval card from the stored request. The card is rendered afresh on
// every update, so it always shows the request's current state and never trusts a payload.
func (v *view) renderCard(r approval.Request) []slack.Block {
	var blocks []slack.Block
	title := breakGlassTitle(r, fmt.Sprintf("Metabase %s request %s", r.Action, r.ID))
	if r.DryRun {
		title = "DRY RUN · " + title
	}
	blocks = append(blocks, slack.NewHeaderBlock(plain(clip(title, maxHeaderText))))
	if r.DryRun {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":test_tube: *Dry run:* approving this changes nothing in Metabase."), nil, nil))
	}
	ask := fmt.Sprintf("%s asks to *%s* Metabase access for %s:", mention(r.Requester), r.Action, plural(len(r.Targets), "user", "users"))
	if r.ParentID != "" {
		ask = fmt.Sprintf("Automatic return from leave (request %s): *%s* Metabase access for %s:", r.ParentID, r.Action, plural(len(r.Targets), "user", "users"))
	}
	if r.Action == approval.HandOver {
		ask = handoverAsk(r)
	}
	if r.IsBreakGlass() {
		ask = fmt.Sprintf("%s used break-glass to *disable* Metabase access for %s at once, without approval:", mention(r.Requester), plural(len(r.Targets), "user", "users"))
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(ask), nil, nil))
	if len(r.Instances) > 0 {
		// Several instances: one line per instance for each person, where they are not too.
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipLines(instanceLines(r), maxSectionText)), nil, nil))
	} else if len(r.Targets) == 1 {
		t := r.Targets[0]
		sso := "none (password)"
		if t.SSOSource != "" {
			sso = escape(t.SSOSource)
		}
		fields := []*slack.TextBlockObject{
			mrkdwn("*Name*\n" + clip(escape(nonEmpty(t.Name, "-")), maxFieldText-10)),
			mrkdwn("*Email*\n" + clip(escape(t.Email), maxFieldText-10)),
			mrkdwn("*Metabase id*\n" + strconv.Itoa(t.UserID)),
			mrkdwn("*Admin*\n" + yesNo(t.Superuser)),
			mrkdwn("*Last login*\n" + lastLogin(t)),
			mrkdwn("*SSO*\n" + sso),
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	} else {
		var lines []string
		for i, t := range r.Targets {
			if i == maxCardTargets {
				lines = append(lines, fmt.Sprintf("…and %d more (full list in the thread)", len(r.Targets)-maxCardTargets))
				break
			}
			lines = append(lines, "• "+targetLine(t))
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipLines(lines, maxSectionText)), nil, nil))
	}
	reason := "_no reason given_"
	if r.Reason != "" {
		reason = escape(r.Reason)
	}
	details := "*Reason:* " + reason
	if r.ReturnAt != nil {
		details += "\n*Returns:* " + slackDate(*r.ReturnAt) + " (re-enabled automatically; admin rights restored unless they are changed in Metabase meanwhile)"
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(details), nil, nil))
	blocks = append(blocks, v.consequenceBlocks(r)...)
	blocks = append(blocks, v.leftoverBlocks(r)...)
	if w := append(v.warnings(r), disabledElsewhereLines(r)...); len(w) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(strings.Join(w, "\n")), nil, nil))
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(v.contextLine(r))))
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(v.statusLine(r)), nil, nil))
	if r.State == approval.Pending {
		blocks = append(blocks, v.decisionButtons(r))
	}
	if review, ok := v.reviewButtons(r); ok {
		blocks = append(blocks, review)
	}
	return blocks
}

func (v *view) contextLine(r approval.Request) string {
	parts := []string{"Request " + r.ID}
	if r.State == approval.Pending {
		parts = append(parts, "expires "+slackDate(r.ExpiresAt))
		// The approvers are mentioned in the status line below: a section, where a mention surely
		// notifies (docs/slack.md#mentions).
		parts = append(parts, "needs "+plural(r.RequiredApprovals, "approval", "approvals"))
	} else {
		parts = append(parts, "requested "+slackDate(r.CreatedAt))
	}
	return strings.Join(parts, " · ")
}

// approverMention notifies the approvers: a user-group mention pings its members.
func (v *view) approverMention() string {
	if v.cfg.ApproverGroup != "" {
		return "<!subteam^" + v.cfg.ApproverGroup + ">"
	}
	ms := make([]string, len(v.cfg.ApproverUsers))
	for i, u := range v.cfg.ApproverUsers {
		ms[i] = mention(u)
	}
	return strings.Join(ms, ", ")
}

// statusLine is the decision line of the card.
func (v *view) statusLine(r approval.Request) string {
	if r.IsBreakGlass() {
		return v.breakGlassStatus(r)
	}
	approvers := make([]string, len(r.Approvals))
	for i, v := range r.Approvals {
		approvers[i] = mention(v.UserID)
	}
	progress := fmt.Sprintf("%d of %d approvals", len(r.Approvals), r.RequiredApprovals)
	if len(approvers) > 0 {
		progress += ": " + strings.Join(approvers, ", ")
	}
	switch r.State {
	case approval.Pending:
		return ":hourglass_flowing_sand: *Waiting for approval* from " + v.approverMention() + " · " + progress
	case approval.Approved, approval.Executing:
		return ":gear: *Approved* by " + strings.Join(approvers, ", ") + " · working on it…"
	case approval.Scheduled:
		return ":calendar: *Scheduled* for " + slackDate(r.NotBefore)
	case approval.Succeeded:
		return fmt.Sprintf(":white_check_mark: *Approved* by %s at %s · %s%s", strings.Join(approvers, ", "),
			slackDate(r.DecidedAt), resultSummary(r), v.dryRunTag(r))
	case approval.Partial, approval.Failed:
		return fmt.Sprintf(":x: *Approved* by %s at %s · %s (details in the thread)%s", strings.Join(approvers, ", "),
			slackDate(r.DecidedAt), resultSummary(r), v.dryRunTag(r))
	case approval.Denied:
		s := fmt.Sprintf(":no_entry: *Denied* by %s at %s", mention(r.DecidedBy), slackDate(r.DecidedAt))
		if r.DenyReason != "" {
			s += " · reason: " + escape(r.DenyReason)
		}
		return s
	case approval.Expired:
		return ":hourglass: *Expired* at " + slackDate(r.ExpiresAt) + " without a decision · " + progress
	case approval.Cancelled:
		return ":heavy_minus_sign: *Cancelled* by " + mention(r.CancelledBy) + " at " + slackDate(r.DecidedAt)
	}
	return string(r.State)
}

// resultSummary counts outcomes: "disabled 3, skipped 1, failed 1".
func resultSummary(r approval.Request) string {
	done, skipped, failed := r.Counts()
	if len(r.Targets) == 1 {
		t := r.Targets[0]
		switch t.Result.Outcome {
		case approval.Done:
			return escape(t.Email) + " " + verbPast(r.Action)
		case approval.Skipped:
			return escape(t.Email) + " skipped: " + escape(t.Result.Message)
		default:
			return escape(t.Email) + " failed: " + escape(t.Result.Message)
		}
	}
	return fmt.Sprintf("%s %d, skipped %d, failed %d", verbPast(r.Action), done, skipped, failed)
}

func (v *view) decisionButtons(r approval.Request) slack.Block {
	approve := slack.NewButtonBlockElement(actionApprove, r.ID, plain("Approve"))
	approve.Style = slack.StylePrimary
	confirmText := fmt.Sprintf("%s Metabase access for %s?", titleCase(string(r.Action)), targetsSummaryPlain(r))
	yes := "Yes, " + string(r.Action)
	if r.Action == approval.HandOver {
		confirmText, yes = fmt.Sprintf("Hand over what %s left running?", targetsSummaryPlain(r)), "Yes, hand over"
	}
	if r.DryRun {
		confirmText += " (dry run: nothing will change)"
	}
	approve.Confirm = slack.NewConfirmationBlockObject(plain("Approve request "+r.ID),
		plain(clip(confirmText, 300)), plain(yes), plain("Back"))
	deny := slack.NewButtonBlockElement(actionDeny, r.ID, plain("Deny"))
	deny.Style = slack.StyleDanger
	cancel := slack.NewButtonBlockElement(actionCancel, r.ID, plain("Cancel request"))
	return slack.NewActionBlock(blockDecision, approve, deny, cancel)
}

// targetsSummaryPlain is targetsSummary for plain_text fields, which Slack shows literally.
func targetsSummaryPlain(r approval.Request) string {
	switch len(r.Targets) {
	case 0:
		return "nobody"
	case 1:
		return r.Targets[0].Email
	}
	return fmt.Sprintf("%s and %d more", r.Targets[0].Email, len(r.Targets)-1)
}

// warnings are the risks an approver must see before clicking. Several admins or SSO users are
// summarised in one line each, so every risk stays on the card however many targets there are.
func (v *view) warnings(r approval.Request) []string {
	if r.Action == approval.Enable {
		return v.enableWarnings(r)
	}
	var admins, sso []approval.Target
	for _, t := range r.Targets {
		if t.Superuser {
			admins = append(admins, t)
		}
		if t.SSOSource != "" && !holdsKnown(t) {
			sso = append(sso, t)
		}
	}
	var w []string
	switch len(admins) {
	case 0:
	case 1:
		w = append(w, fmt.Sprintf(":warning: %s is a *Metabase admin*.", escape(admins[0].Email)))
	default:
		w = append(w, fmt.Sprintf(":warning: %d of these users are *Metabase admins*: %s.", len(admins), warnedList(admins, false)))
	}
	const idp = "with JWT/SAML user provisioning a later SSO login can reactivate them. Block them in the identity provider too."
	switch len(sso) {
	case 0:
	case 1:
		w = append(w, fmt.Sprintf(":warning: %s signs in through SSO (%s): %s", escape(sso[0].Email), escape(sso[0].SSOSource), idp))
	default:
		w = append(w, fmt.Sprintf(":warning: %d of these users sign in through SSO (%s): %s", len(sso), warnedList(sso, true), idp))
	}
	for _, sup := range r.Supersedes {
		w = append(w, fmt.Sprintf(":calendar: Approving this cancels the automatic return on %s (request %s): the users stay disabled.", slackDate(sup.At), sup.ID))
	}
	if r.RequiredApprovals > v.cfg.Policy.RequiredApprovals {
		w = append(w, fmt.Sprintf(":closed_lock_with_key: Disabling an admin needs %d approvals.", r.RequiredApprovals))
	}
	return w
}

// enableWarnings say what an enable will grant: admin rights restored from the bot's record
// (granting admin needs the admin quorum), and records that can no longer be trusted.
func (v *view) enableWarnings(r approval.Request) []string {
	var restore []approval.Target
	var w []string
	for _, t := range r.Targets {
		if t.Restore && t.Superuser {
			restore = append(restore, t)
		}
		if t.NotRestored != nil {
			w = append(w, fmt.Sprintf(":information_source: %s was an admin when the bot disabled them on %s; changed in Metabase since, so admin is not restored.",
				escape(t.Email), slackDate(*t.NotRestored)))
		}
	}
	switch len(restore) {
	case 0:
	case 1:
		w = append([]string{fmt.Sprintf(":warning: Approving this will restore *Metabase admin rights* to %s.", escape(restore[0].Email))}, w...)
	default:
		w = append([]string{fmt.Sprintf(":warning: Approving this will restore *Metabase admin rights* to %d users: %s.", len(restore), warnedList(restore, false))}, w...)
	}
	if r.RequiredApprovals > v.cfg.Policy.RequiredApprovals {
		w = append(w, fmt.Sprintf(":closed_lock_with_key: Restoring admin rights needs %d approvals.", r.RequiredApprovals))
	}
	return w
}

// warnedList names up to ten users of a warning, with their SSO source when asked.
func warnedList(ts []approval.Target, withSSO bool) string {
	const shown = 10
	var names []string
	for i, t := range ts {
		if i == shown {
			names = append(names, fmt.Sprintf("and %d more", len(ts)-shown))
			break
		}
		n := escape(clip(t.Email, 100))
		if withSSO {
			n += " " + escape(clip(t.SSOSource, 20))
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}
