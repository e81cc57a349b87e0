package bot

import (
	"fmt"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// What outlives a disable, in words: API keys, public links, secrets an admin could read, and
// the sign-ins that may undo it (docs/metabase.md#api-key-listing, #public-links and
// #sign-in-settings). Rendered from the stored request: no Metabase call.

// leftoverBlocks are the card's sections about what outlives the disable, one per target that
// has something (at most maxCardTargets).
func (v *view) leftoverBlocks(r approval.Request) []slack.Block {
	if r.Action != approval.Disable {
		return nil
	}
	var blocks []slack.Block
	shown := 0
	for _, t := range r.Targets {
		if t.Leftovers.Empty() {
			continue
		}
		if shown == maxCardTargets {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn("…and more users; their API keys and public links are not shown here."), nil, nil))
			break
		}
		shown++
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipLines(leftoverLines(t), maxSectionText)), nil, nil))
	}
	return blocks
}

// leftoverLines are what outlives the disable of one target.
func leftoverLines(t approval.Target) []string {
	l := t.Leftovers
	who := escape(t.Email)
	if l.Error != "" {
		return []string{fmt.Sprintf(":grey_question: I could not look up the API keys, public links and sign-in settings that may outlive disabling %s: %s", who, escape(l.Error))}
	}
	lines := []string{fmt.Sprintf(":unlock: *What disabling %s does not end* (their sessions end at once):", who)}
	if len(l.Keys) > 0 || l.OwnKey || l.AdminKeys != nil {
		lines = append(lines, fmt.Sprintf("*API keys they last created or regenerated:* %d", len(l.Keys)))
		for _, k := range l.Keys {
			line := fmt.Sprintf("• %s (%s)", escape(k.Name), escape(nonEmpty(k.Group, "All Users")))
			if k.Admin {
				line += " · :warning: *Admin*: a full admin"
			}
			lines = append(lines, line)
		}
		if l.OwnKey {
			lines = append(lines, "• this bot's own key, which they changed last: never revoked by the bot; rotate it by hand")
		}
		if l.AdminKeys != nil {
			lines = append(lines, fmt.Sprintf("This Metabase has %s in the Admin group in all.", plural(*l.AdminKeys, "API key", "API keys")))
		}
		lines = append(lines, "_Keys are matched by who last changed them: a key they made that someone else changed since is not shown. SCIM keys are never listed._")
	}
	switch {
	case l.SharingOff:
		lines = append(lines, "*Public links:* Public sharing is off. Links made earlier come back if it is turned on, and cannot be listed or removed while it is off.")
	default:
		if len(l.Links) > 0 {
			lines = append(lines, fmt.Sprintf("*Public links they shared:* %d (anyone with a link can open it, with admin rights)", len(l.Links)))
			for _, link := range l.Links {
				lines = append(lines, fmt.Sprintf("• %s %s", linkKind(link.Kind), escape(link.Name)))
			}
		}
		if l.UnknownSharer > 0 {
			lines = append(lines, fmt.Sprintf("*Public links:* %s in this Metabase; Metabase does not say who shared %s. Review them in Admin > Settings > Public sharing.",
				plural(l.PublicLinks, "public link", "public links"), plural(l.UnknownSharer, "of them", "of them")))
		}
	}
	for _, s := range l.Secrets {
		switch s {
		case "embedding":
			lines = append(lines, ":old_key: As an admin they could read the *embedding secret key*, which signs embeds of every embedded item: regenerate it in Admin > Settings > Embedding.")
		case "jwt":
			lines = append(lines, ":old_key: As an admin they could read the *JWT shared secret*, with which anyone can sign in as anyone and, with user provisioning on, re-activate any account: regenerate it in Admin > Settings > Authentication > JWT.")
		}
	}
	for _, h := range l.Holds {
		admin := ""
		if l.AdminMayReturn {
			admin = " and may restore admin rights (unverified)"
		}
		switch h {
		case "scim":
			lines = append(lines, fmt.Sprintf(":warning: %s was provisioned by SCIM: the identity provider can re-activate them at its next push. Deactivate them there too.", who))
		case "jwt":
			lines = append(lines, fmt.Sprintf(":warning: A JWT sign-in with their email re-activates them%s. Block them in the identity provider too.", admin))
		case "saml":
			lines = append(lines, fmt.Sprintf(":warning: A SAML sign-in with their email re-activates them%s. Block them in the identity provider too.", admin))
		case "not_known":
			lines = append(lines, fmt.Sprintf(":grey_question: Whether a %s sign-in re-activates them is not known. Block them in the identity provider too.", escape(nonEmpty(t.SSOSource, "SSO"))))
		}
	}
	return lines
}

func linkKind(kind string) string {
	if kind == "card" {
		return "question"
	}
	return "dashboard"
}

// holdsKnown reports whether the card states precisely whether t's disable will hold, so the
// generic SSO warning is not needed for t.
func holdsKnown(t approval.Target) bool {
	return t.Leftovers != nil && t.Leftovers.Error == ""
}
