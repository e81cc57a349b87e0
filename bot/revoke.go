package bot

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// What outlives a disable, in words: API keys, public links, secrets an admin could read, and
// the sign-ins that may undo it (docs/metabase.md#api-key-listing, #public-links and
// #sign-in-settings). Rendered from the stored request: no Metabase call.

// leftoverBlocks are the card's section about what outlives the disable: in full for one
// target, summarised in one section for several (a card has at most 50 blocks).
func (v *view) leftoverBlocks(r approval.Request) []slack.Block {
	if r.Action != approval.Disable {
		return nil
	}
	var with []approval.Target
	for _, t := range r.Targets {
		if !t.Leftovers.Empty() {
			with = append(with, t)
		}
	}
	var lines []string
	switch {
	case len(with) == 0:
		var plan []string
		for _, line := range []string{revokePlanLine(r), unsharePlanLine(r)} {
			if line != "" {
				plan = append(plan, line)
			}
		}
		if len(plan) > 0 {
			return []slack.Block{slack.NewSectionBlock(mrkdwn(strings.Join(plan, "\n")), nil, nil)}
		}
		return nil
	case len(r.Targets) == 1:
		lines = leftoverLines(with[0])
	default:
		lines = leftoverSummary(with)
	}
	for _, line := range []string{revokePlanLine(r), unsharePlanLine(r)} {
		if line != "" {
			lines = append(lines, line)
		}
	}
	return []slack.Block{slack.NewSectionBlock(mrkdwn(clipLines(lines, maxSectionText)), nil, nil)}
}

// leftoverSummary is what outlives the disable of several targets: one line per target with
// keys, links or secrets, the notes once, and each warning once with the users it applies to.
func leftoverSummary(ts []approval.Target) []string {
	lines := []string{":unlock: *What disabling them does not end* (their sessions end at once):"}
	var failed []approval.Target
	holds := map[string][]approval.Target{}
	var adminMayReturn, keys, sharingOff bool
	unknown := -1
	listed := 0
	for _, t := range ts {
		l := t.Leftovers
		if l.Error != "" {
			failed = append(failed, t)
			continue
		}
		for _, h := range l.Holds {
			holds[h] = append(holds[h], t)
		}
		adminMayReturn = adminMayReturn || l.AdminMayReturn
		sharingOff = sharingOff || l.SharingOff
		if l.UnknownSharer > 0 && unknown < 0 {
			unknown = l.UnknownSharer
		}
		var parts []string
		if len(l.Keys) > 0 {
			keys = true
			p := plural(len(l.Keys), "API key", "API keys")
			if n := adminKeys(l.Keys); n > 0 {
				p += fmt.Sprintf(" (%d in the Admin group)", n)
			}
			parts = append(parts, p)
		}
		if l.OwnKey {
			parts = append(parts, "this bot's own key (rotate it by hand)")
		}
		if len(l.Links) > 0 {
			parts = append(parts, plural(len(l.Links), "public link", "public links"))
		}
		for _, sec := range l.Secrets {
			parts = append(parts, secretName(sec))
		}
		if len(parts) == 0 {
			continue
		}
		if listed == maxCardTargets {
			lines = append(lines, "…and more users (each user's own card or `status` has the rest)")
			listed++
			continue
		}
		if listed < maxCardTargets {
			lines = append(lines, "• "+escape(t.Email)+": "+strings.Join(parts, " · "))
			listed++
		}
	}
	if keys {
		lines = append(lines, "_Keys are matched by who last changed them: a key someone made that another admin changed since is not shown. SCIM keys are never listed._")
	}
	if sharingOff {
		lines = append(lines, "*Public links:* Public sharing is off. Links made earlier come back if it is turned on, and cannot be listed or removed while it is off.")
	} else if unknown > 0 {
		lines = append(lines, fmt.Sprintf("*Public links:* Metabase does not say who shared %s. Review them in Admin > Settings > Public sharing.", plural(unknown, "public link", "public links")))
	}
	if ts := holds["scim"]; len(ts) > 0 {
		lines = append(lines, fmt.Sprintf(":warning: %s provisioned by SCIM (%s): the identity provider can re-activate them at its next push. Deactivate them there too.", plural(len(ts), "user was", "users were"), warnedList(ts, false)))
	}
	for _, m := range []struct{ hold, name string }{{"jwt", "JWT"}, {"saml", "SAML"}} {
		ts := holds[m.hold]
		if len(ts) == 0 {
			continue
		}
		admin := ""
		if adminMayReturn {
			admin = " and may restore admin rights (unverified)"
		}
		lines = append(lines, fmt.Sprintf(":warning: A %s sign-in with their email re-activates %s%s: %s. Block them in the identity provider too.", m.name, plural(len(ts), "of these users", "of these users"), admin, holdList(ts)))
	}
	if ts := holds["not_known"]; len(ts) > 0 {
		lines = append(lines, fmt.Sprintf(":grey_question: Whether an SSO sign-in re-activates %s is not known: %s. Block them in the identity provider too.", plural(len(ts), "of these users", "of these users"), holdList(ts)))
	}
	if len(failed) > 0 {
		lines = append(lines, fmt.Sprintf(":grey_question: I could not look up the API keys, public links and sign-in settings for %s: %s", plural(len(failed), "user", "users"), warnedList(failed, false)))
	}
	return lines
}

// holdList names the users a warning applies to, with their SSO source where they have one.
func holdList(ts []approval.Target) string {
	const shown = 10
	var names []string
	for i, t := range ts {
		if i == shown {
			names = append(names, fmt.Sprintf("and %d more", len(ts)-shown))
			break
		}
		n := escape(clip(t.Email, 100))
		if t.SSOSource != "" {
			n += " " + escape(clip(t.SSOSource, 20))
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

func adminKeys(keys []approval.LeftKey) int {
	n := 0
	for _, k := range keys {
		if k.Admin {
			n++
		}
	}
	return n
}

func secretName(s string) string {
	if s == "jwt" {
		return "knew the JWT shared secret"
	}
	return "knew the embedding secret key"
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
