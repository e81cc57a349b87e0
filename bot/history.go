package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

const (
	// maxHistoryLines bounds the requests `history` lists; the count of the rest is always exact.
	// Fifteen lines of about 230 characters (two dates, two mentions) fit maxHistoryText.
	maxHistoryLines = 15
	// maxHistoryText keeps the reply under the 3,900 characters an ephemeral reply is clipped to,
	// so whole lines are dropped instead of one being cut in the middle.
	maxHistoryText = 3700
	// maxHistoryLine bounds one request's line (a long deny reason, many approvers).
	maxHistoryLine = 500
	// maxHistoryReason bounds a deny reason quoted in a line.
	maxHistoryReason = 120
	// maxHistoryApprovers bounds the approvers named in a line.
	maxHistoryApprovers = 5
)

// history answers `history <user>` privately: every request that named the user, newest first.
func (b *Bot) history(ctx context.Context, sc slack.SlashCommand, cmd Command) {
	log := b.logger(ctx)
	h, err := b.core.History(ctx, sc.UserID, sc.ChannelID, cmd.Targets[0])
	switch {
	case err == nil:
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, historyText(h))
	case access.IsRefusal(err):
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opCheck, err))
	case errors.Is(err, access.ErrHistory):
		log.WithError(err).Error("Could not read a user's requests for history")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, "I could not read the requests naming that user; please try again.")
	default:
		log.WithError(err).Error("Could not look a user up for history")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opLookUp, err))
	}
}

// historyText words a user's history: a header naming the user, then one line per request,
// newest first, bounded in count and length with the number left out.
func historyText(h access.History) string {
	u := h.User
	state := "active"
	if !u.IsActive {
		state = "deactivated"
	}
	head := fmt.Sprintf("*History of %s* · %s · Metabase id %d · now %s", escape(u.Name()), escape(u.Email), u.ID, state)
	if len(h.Requests) == 0 {
		return head + "\nNo request has named this user."
	}
	var b strings.Builder
	b.WriteString(head + "\n" + plural(len(h.Requests), "request", "requests") + " named this user, newest first:")
	for i, r := range h.Requests {
		line := "\n" + clip(historyLine(r, u.ID), maxHistoryLine)
		if i == maxHistoryLines || utf8.RuneCountInString(b.String())+utf8.RuneCountInString(line) > maxHistoryText {
			fmt.Fprintf(&b, "\n…and %s not shown. The audit channel has every one.", plural(len(h.Requests)-i, "older request", "older requests"))
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// historyLine is one request as it concerns the user userID: id, action, state, who asked and
// when, who decided, when it ran for them and with what result.
func historyLine(r approval.Request, userID int) string {
	parts := []string{fmt.Sprintf("• `%s` · *%s* · %s", r.ID, r.Action, stateWords(r))}
	if r.ParentID != "" {
		parts = append(parts, fmt.Sprintf("automatic return of `%s`", r.ParentID))
	}
	parts = append(parts, "asked by "+mention(r.Requester)+" "+slackDate(r.CreatedAt))
	if len(r.Approvals) > 0 {
		parts = append(parts, "approved by "+historyApprovers(r.Approvals))
	}
	if r.IsBreakGlass() {
		parts = append(parts, breakGlassHistory(r))
	}
	switch r.State {
	case approval.Denied:
		denied := "denied by " + mention(r.DecidedBy)
		if r.DenyReason != "" {
			denied += ": " + escape(truncateRunes(r.DenyReason, maxHistoryReason))
		}
		parts = append(parts, denied)
	case approval.Cancelled:
		if r.CancelledBy != "" {
			parts = append(parts, "cancelled by "+mention(r.CancelledBy))
		}
	}
	var t approval.Target
	for _, c := range r.Targets {
		if c.UserID == userID {
			t = c
			break
		}
	}
	if at := ranAt(r, t); !at.IsZero() {
		parts = append(parts, "ran "+slackDate(at))
	}
	if res := historyResult(r, t); res != "" {
		parts = append(parts, res)
	}
	if r.DryRun {
		parts = append(parts, "DRY RUN")
	}
	return strings.Join(parts, " · ")
}

// historyApprovers names the approvers, the first few by mention.
func historyApprovers(votes []approval.Vote) string {
	names := make([]string, 0, min(len(votes), maxHistoryApprovers)+1)
	for i, v := range votes {
		if i == maxHistoryApprovers {
			names = append(names, fmt.Sprintf("%d more", len(votes)-i))
			break
		}
		names = append(names, mention(v.UserID))
	}
	return strings.Join(names, ", ")
}

// ranAt is when the request ran for the user: their own result's time, else the request's end.
func ranAt(r approval.Request, t approval.Target) time.Time {
	if !t.Result.At.IsZero() {
		return t.Result.At
	}
	if t.Result.Outcome != "" {
		return r.FinishedAt
	}
	return time.Time{}
}

// historyResult is what happened to the user: their target's outcome, "not run" for a request
// that ended without running, nothing for one still open.
func historyResult(r approval.Request, t approval.Target) string {
	msg := func(m string) string {
		if m == "" {
			return ""
		}
		return ": " + escape(truncateRunes(m, maxHistoryReason))
	}
	switch t.Result.Outcome {
	case approval.Done:
		res := "result: " + verbPast(r.Action)
		if t.Result.Message != "" {
			res += " (" + escape(truncateRunes(t.Result.Message, maxHistoryReason)) + ")"
		}
		return res
	case approval.Skipped:
		return "result: skipped" + msg(t.Result.Message)
	case approval.TargetFailed:
		return "result: failed" + msg(t.Result.Message)
	}
	switch r.State {
	case approval.Pending, approval.Approved, approval.Executing, approval.Scheduled:
		return ""
	}
	return "not run"
}
