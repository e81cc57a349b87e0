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

const optRevokeKeys = "revoke-keys"

// parseRevokeOptions reads `revoke-keys` at words[i], if there. With `enable` it is refused, and
// so is a reason that starts with it again (a repeat) or with `unshare`, which is not built.
func parseRevokeOptions(cmd *Command, words []string, i int) (int, error) {
	if i < len(words) && strings.EqualFold(plainWord(words[i]), optRevokeKeys) {
		if cmd.Verb != VerbDisable {
			return 0, usagef("`revoke-keys` only goes with `disable`: an enable never restores or deletes API keys.")
		}
		cmd.RevokeKeys = true
		i++
	}
	if i < len(words) {
		switch w := strings.ToLower(plainWord(words[i])); w {
		case optRevokeKeys:
			return 0, usagef("`revoke-keys` may be given once, before the reason: `disable <user>... [handover <user> [archive]] [revoke-keys] <reason>`.")
		case "unshare":
			return 0, usagef("`unshare` is not available yet: remove public links in Admin > Settings > Public sharing. A reason may not start with it.")
		}
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
	}
	return "", false
}

// revokePlanLine is the card's sentence on what the approval will revoke, "" without revoke-keys.
func revokePlanLine(r approval.Request) string {
	if !r.RevokeKeys {
		return ""
	}
	var names []string
	n := 0
	for _, t := range r.Targets {
		if t.Leftovers == nil {
			continue
		}
		for _, k := range t.Leftovers.Keys {
			n++
			if len(names) < 10 {
				names = append(names, escape(k.Name))
			}
		}
	}
	if n == 0 {
		return ":key: `revoke-keys`: no API key is shown as theirs, so approving deletes none."
	}
	more := ""
	if n > len(names) {
		more = fmt.Sprintf(" and %d more", n-len(names))
	}
	return fmt.Sprintf(":key: *Approving also deletes %s:* %s%s, each only if they are still the last to have changed it. Keys they change after this card are listed, not deleted; this bot's own key is never deleted.",
		plural(n, "API key", "API keys"), strings.Join(names, ", "), more)
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
