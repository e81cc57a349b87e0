package bot

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// `revoke-keys` asks an approved disable to delete the API keys its card shows as the target's:
//
//	disable <user>... [until DATE] [--instance NAME] [handover <user> [archive]] [revoke-keys] <reason>
//
// Every replica must understand the option before anyone uses it: an older replica would read
// it as the first word of the reason (README, "Termination").

const (
	optRevokeKeys = "revoke-keys"
	optUnshare    = "unshare"
)

// parseRevokeOptions reads `revoke-keys` and `unshare` at words[i], in either order, each at
// most once. With `enable` they are refused, and so is a reason that starts with one of them
// again.
func parseRevokeOptions(cmd *Command, words []string, i int) (int, error) {
	for ; i < len(words); i++ {
		w := strings.ToLower(plainWord(words[i]))
		var seen *bool
		switch w {
		case optRevokeKeys:
			seen = &cmd.RevokeKeys
		case optUnshare:
			seen = &cmd.Unshare
		default:
			return i, nil
		}
		if cmd.Verb != VerbDisable {
			return 0, usagef("`%s` only goes with `disable`: an enable never restores or removes anything.", w)
		}
		if *seen {
			return 0, usagef("`%s` may be given once, before the reason: `disable <user>... [handover <user> [archive]] [revoke-keys] [unshare] <reason>`.", w)
		}
		*seen = true
	}
	return i, nil
}

// revokeRefusalText words the refusals of revoke-keys; ok is false for other codes.
func revokeRefusalText(rf *access.Refusal) (string, bool) {
	switch rf.Code {
	case access.RevokeOnlyDisable:
		return "`revoke-keys` only goes with `disable`.", true
	case access.RevokeKeysUnavailable:
		return fmt.Sprintf("This bot cannot list or delete API keys in %s.", escape(rf.Subject)), true
	case access.UnshareUnavailable:
		return fmt.Sprintf("This bot cannot remove public links in %s.", escape(rf.Subject)), true
	case access.UnshareSharerUnknown:
		return "Metabase does not say who shared a link; review them in Admin > Settings > Public sharing.", true
	case access.UnshareSharingOff:
		return "Public sharing is off, so no link can be removed: links made earlier come back if it is turned on. Review them in Admin > Settings > Public sharing.", true
	case access.UnshareNotLookedUp:
		msg := fmt.Sprintf("I could not look up the API keys and public links of %s, so `revoke-keys` and `unshare` cannot say what they would remove", escape(rf.Subject))
		if rf.Other != "" {
			msg += ": " + escape(rf.Other)
		}
		return msg + ".", true
	}
	return "", false
}

// revokePlanLine is the card's sentence on what the approval will revoke, "" without revoke-keys.
func revokePlanLine(r approval.Request) string {
	if !r.RevokeKeys {
		return ""
	}
	n, names := planned(r, func(l *approval.Leftovers) []string {
		var out []string
		for _, k := range l.Keys {
			out = append(out, escape(k.Name))
		}
		return out
	})
	if n == 0 {
		return ":key: `revoke-keys`: no API key is shown as theirs, so approving deletes none."
	}
	return fmt.Sprintf(":key: *Approving also deletes %s:* %s%s, each only if they are still the last to have changed it. Keys they change after this card are listed, not deleted; this bot's own key is never deleted.",
		plural(n, "API key", "API keys"), strings.Join(names, ", "), andMore(n, len(names)))
}

// keyLines are the thread lines of what revoke-keys did, one per key.
func keyLines(r approval.Request) []string {
	var lines []string
	for _, t := range r.Targets {
		k := t.KeysRevoked
		if k == nil {
			continue
		}
		who := escape(t.Email)
		verb := "revoked"
		if k.DryRun {
			verb = "would be revoked (dry run)"
		}
		for _, key := range k.Revoked {
			lines = append(lines, fmt.Sprintf("• %s: API key %s %s", who, escape(key.Name), verb))
		}
		for _, nr := range k.NotRevoked {
			switch nr.Why {
			case approval.KeyOwn:
				lines = append(lines, fmt.Sprintf("• %s: not revoked: this bot's own key, rotate it by hand", who))
			case approval.KeyChanged:
				lines = append(lines, fmt.Sprintf("• %s: API key %s not revoked: someone else changed it after the card was made", who, escape(nr.Name)))
			case approval.KeyNew:
				lines = append(lines, fmt.Sprintf("• %s: API key %s not revoked: they changed it after the card was made, so nobody approved deleting it", who, escape(nr.Name)))
			default:
				lines = append(lines, fmt.Sprintf("• %s: API key %s not revoked: %s. Delete it by hand", who, escape(nr.Name), escape(nr.Error)))
			}
		}
	}
	return lines
}

// The request form's revoke-keys choice.
const (
	blockFormRevoke   = "mb_form_revoke"
	actionFormRevoke  = "revoke"
	revokeOptionKeep  = "keep"
	revokeOptionKeys  = optRevokeKeys
	revokeFormDefault = "Keep them (listed on the card)"
)

// revokeInput is the request form's choice of what to do with the API keys the card shows.
func revokeInput() *slack.InputBlock {
	keep := slack.NewOptionBlockObject(revokeOptionKeep, plain(revokeFormDefault), nil)
	del := slack.NewOptionBlockObject(revokeOptionKeys, plain("Delete them on approval (revoke-keys)"), nil)
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(revokeFormDefault), actionFormRevoke, keep, del)
	in := slack.NewInputBlock(blockFormRevoke, plain("API keys they last changed"), nil, sel)
	in.Optional = true
	in.Hint = plain("The card shows them before approval. This bot's own key is never deleted.")
	return in
}

// formRevokeKeys reads the revoke-keys choice of a submitted form.
func formRevokeKeys(values map[string]map[string]slack.BlockAction) bool {
	return values[blockFormRevoke][actionFormRevoke].SelectedOption.Value == revokeOptionKeys
}

// unsharePlanLine is the card's sentence on what unshare will remove, "" without it.
func unsharePlanLine(r approval.Request) string {
	if !r.Unshare {
		return ""
	}
	n, names := planned(r, func(l *approval.Leftovers) []string {
		var out []string
		for _, link := range l.Links {
			out = append(out, linkKind(link.Kind)+" "+escape(link.Name))
		}
		return out
	})
	if n == 0 {
		return ":link: `unshare`: no public link is shown as theirs, so approving removes none."
	}
	return fmt.Sprintf(":link: *Approving also removes %s:* %s%s, each only while Metabase still names them as its sharer.",
		plural(n, "public link", "public links"), strings.Join(names, ", "), andMore(n, len(names)))
}

// linkLines are the thread lines of what unshare did, one per link.
func linkLines(r approval.Request) []string {
	var lines []string
	for _, t := range r.Targets {
		l := t.LinksRemoved
		if l == nil {
			continue
		}
		who := escape(t.Email)
		verb := "removed"
		if l.DryRun {
			verb = "would be removed (dry run)"
		}
		for _, link := range l.Removed {
			lines = append(lines, fmt.Sprintf("• %s: public link of %s %s %s", who, linkKind(link.Kind), escape(link.Name), verb))
		}
		for _, nr := range l.NotRemoved {
			what := linkKind(nr.Kind) + " " + escape(nr.Name)
			switch nr.Why {
			case approval.LinkSharedByOther:
				lines = append(lines, fmt.Sprintf("• %s: public link of %s not removed: someone else shared it again after the card was made", who, what))
			case approval.LinkSharingOff:
				lines = append(lines, fmt.Sprintf("• %s: public link of %s not removed: public sharing was turned off; it comes back if sharing is turned on", who, what))
			default:
				lines = append(lines, fmt.Sprintf("• %s: public link of %s not removed: %s. Remove it in Admin > Settings > Public sharing", who, what, escape(nr.Error)))
			}
		}
	}
	return lines
}

// The request form's unshare choice.
const (
	blockFormUnshare   = "mb_form_unshare"
	actionFormUnshare  = "unshare"
	unshareOptionKeep  = "keep"
	unshareFormDefault = "Keep them (listed on the card)"
)

// unshareInput is the request form's choice of what to do with the public links the card shows.
func unshareInput() *slack.InputBlock {
	keep := slack.NewOptionBlockObject(unshareOptionKeep, plain(unshareFormDefault), nil)
	del := slack.NewOptionBlockObject(optUnshare, plain("Remove them on approval (unshare)"), nil)
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(unshareFormDefault), actionFormUnshare, keep, del)
	in := slack.NewInputBlock(blockFormUnshare, plain("Public links they shared"), nil, sel)
	in.Optional = true
	return in
}

// formUnshare reads the unshare choice of a submitted form.
func formUnshare(values map[string]map[string]slack.BlockAction) bool {
	return values[blockFormUnshare][actionFormUnshare].SelectedOption.Value == optUnshare
}

// planNames is how many items a plan line names before "and N more".
const planNames = 10

// planned counts the items items(l) gives over r's targets' leftovers, and returns the first
// planNames of their names.
func planned(r approval.Request, items func(l *approval.Leftovers) []string) (n int, names []string) {
	for _, t := range r.Targets {
		if t.Leftovers == nil {
			continue
		}
		for _, name := range items(t.Leftovers) {
			n++
			if len(names) < planNames {
				names = append(names, name)
			}
		}
	}
	return n, names
}

// andMore is " and N more" when only shown of n are named, or "".
func andMore(n, shown int) string {
	if n <= shown {
		return ""
	}
	return fmt.Sprintf(" and %d more", n-shown)
}
