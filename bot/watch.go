package bot

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// The buttons of a reactivation report (access/watch.go). Their value names the original
// request, the user and the disable the report is about (watchValue); the core checks the rest.
const (
	actionDisableAgain = "mb_disable_again"
	actionKeepActive   = "mb_keep_active"
	blockWatchActions  = "mb_watch_actions"
)

// watchValue is a report button's value: request|instance|user id|basis.
func watchValue(f access.Finding) string {
	return strings.Join([]string{f.RequestID, f.Instance, strconv.Itoa(f.UserID), f.Basis}, "|")
}

// parseWatchValue reads watchValue; ok is false for anything else (a forged or mangled value).
func parseWatchValue(v string) (request string, user approval.UserKey, basis string, ok bool) {
	parts := strings.SplitN(v, "|", 4)
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[3] == "" {
		return "", approval.UserKey{}, "", false
	}
	id, err := strconv.Atoi(parts[2])
	if err != nil || id <= 0 {
		return "", approval.UserKey{}, "", false
	}
	return parts[0], approval.UserKey{Instance: parts[1], ID: id}, parts[3], true
}

// watchButtons are the report's buttons; Keep active only when the user is still active.
func watchButtons(f access.Finding, keep bool) slack.Block {
	again := slack.NewButtonBlockElement(actionDisableAgain, watchValue(f), plain("Disable again"))
	again.Style = slack.StyleDanger
	els := []slack.BlockElement{again}
	if keep {
		els = append(els, slack.NewButtonBlockElement(actionKeepActive, watchValue(f), plain("Keep active")))
	}
	return slack.NewActionBlock(blockWatchActions, els...)
}

// watchThreadMessages words a watch event for the original request's thread.
func (v *view) watchThreadMessages(e access.Event) []threadMessage {
	f := *e.Watch
	who := fmt.Sprintf("%s (%s)", escape(f.Email), escape(f.Instance))
	switch e.Type {
	case access.ReactivationAccepted:
		return []threadMessage{{text: fmt.Sprintf("%s kept %s active: reactivation accepted, the watch no longer reports them.", mention(e.Actor), who)}}
	case access.DisableAgainRequested:
		return []threadMessage{{text: fmt.Sprintf("%s opened request %s to disable %s again; it needs the usual approval.", mention(e.Actor), escape(e.By), who)}}
	}
	text := fmt.Sprintf(":rotating_light: %s %s was *reactivated outside the bot* after this request disabled them. Admin now: %s. Likely way back: %s.",
		v.approverMention(), who, yesNo(f.Superuser), wayBackWords(f.WayBack))
	switch {
	case f.DisabledAgain != nil:
		text += " I *disabled them again automatically*; a scheduled return still runs on its date."
		return []threadMessage{{text: text}}
	case f.NotDisabledAgain != "":
		text += " I *could not disable them again*: " + escape(f.NotDisabledAgain) + ". An approver can open a request below."
		return []threadMessage{{text: text, actions: watchButtons(f, false)}}
	}
	text += " An approver can open a request to disable them again, or keep them active."
	return []threadMessage{{text: text, actions: watchButtons(f, true)}}
}

// wayBackWords says how a reactivated user most likely came back, from their sso_source and the
// instance's settings when known (docs/metabase.md#sso-reactivation).
func wayBackWords(w access.WayBack) string {
	var text string
	switch w.SSOSource {
	case "":
		text = "an admin reactivated them in Metabase (they sign in with a password)"
	case "scim":
		text = "a SCIM push from the identity provider (sso_source scim)"
	case "jwt", "saml":
		text = fmt.Sprintf("a %s sign-in with user provisioning on, or an admin in Metabase (sso_source %s)", escape(w.SSOSource), escape(w.SSOSource))
	default:
		text = fmt.Sprintf("a %s sign-in, or an admin in Metabase (sso_source %s)", escape(w.SSOSource), escape(w.SSOSource))
	}
	var settings []string
	for _, k := range slices.Sorted(maps.Keys(w.Settings)) {
		settings = append(settings, fmt.Sprintf("`%s` %s", escape(k), escape(w.Settings[k])))
	}
	if len(settings) > 0 {
		text += "; instance settings: " + strings.Join(settings, ", ")
	}
	return text
}

// watchAuditDetail is what an audit line says about a watch event besides its name.
func watchAuditDetail(e access.Event) string {
	f := e.Watch
	switch e.Type {
	case access.ReactivationAccepted:
		return "reactivation accepted by " + mention(e.Actor)
	case access.DisableAgainRequested:
		return "request `" + escape(e.By) + "`"
	}
	d := fmt.Sprintf("%s in %s · admin now: %s · likely way back: %s", escape(f.Email), escape(f.Instance), yesNo(f.Superuser), wayBackWords(f.WayBack))
	switch {
	case f.DisabledAgain != nil:
		d += " · disabled again automatically"
	case f.NotDisabledAgain != "":
		d += " · could not disable again: " + escape(f.NotDisabledAgain)
	}
	return d
}

// watchClicked carries out Disable again or Keep active, for an approver, on a report in the
// original request's thread.
func (b *Bot) watchClicked(ctx context.Context, cb slack.InteractionCallback, action, value string) {
	id, user, basis, ok := parseWatchValue(value)
	if !ok {
		b.logger(ctx).Warn("Ignoring a reactivation button with an unreadable value")
		return
	}
	what := opDecide
	if action == actionDisableAgain {
		what = opValidate
	}
	if _, ok := b.requestForClick(ctx, cb, id, what); !ok {
		return
	}
	var err error
	if action == actionKeepActive {
		_, err = b.core.KeepActive(ctx, cb.User.ID, user, basis)
	} else {
		_, err = b.core.DisableAgain(ctx, cb.User.ID, user, basis)
	}
	if err != nil {
		b.refused(ctx, cb.Channel.ID, cb.User.ID, what, err)
	}
}

// watchStatusLines are the watch's lines in a user's status.
func watchStatusLines(ws *access.WatchStatus) []string {
	if ws == nil || !ws.On {
		return nil
	}
	checked := "not yet"
	if !ws.CheckedAt.IsZero() {
		checked = slackDate(ws.CheckedAt)
	}
	lines := []string{"Reactivation watch: last checked " + checked}
	if f := ws.Finding; f != nil {
		line := fmt.Sprintf("Found reactivated outside the bot %s (after request %s), %s", slackDate(f.FoundAt), escape(f.RequestID), ws.State)
		switch {
		case f.AcceptedBy != "":
			line += " by " + mention(f.AcceptedBy)
		case f.NotDisabledAgain != "":
			line += ": " + escape(f.NotDisabledAgain)
		case f.FollowUp != "":
			line += "; request " + escape(f.FollowUp) + " opened to disable them again"
		}
		lines = append(lines, line)
	}
	return lines
}

// disabledElsewhereLines are a pending card's lines about targets someone deactivated in
// Metabase while it waited.
func disabledElsewhereLines(r approval.Request) []string {
	var lines []string
	for _, e := range r.DisabledElsewhere {
		who := e.Key().String()
		for _, t := range r.Targets {
			if t.Key() == e.Key() {
				who = t.Email
			}
		}
		lines = append(lines, fmt.Sprintf(":information_source: %s was disabled in Metabase by someone else %s, while this request waited; approving it skips them.",
			escape(who), slackDate(e.At)))
	}
	return lines
}
