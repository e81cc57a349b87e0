package bot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// What a target leaves running in Metabase, in words: on the card before anyone approves, in
// full with links in the card's thread, and, after execution, what the hand-over did with each
// item. Everything here renders from the stored request: no Metabase call.

const (
	// maxCardItems is how many items a single-target card lists; the thread has them all.
	maxCardItems = 5
	// maxThreadItems bounds the item lines one request posts in its thread (before approval, and
	// again after the hand-over): a bulk request of many users with many items each would
	// otherwise post more replies than Slack's rate limits let one delivery finish.
	maxThreadItems = 400
)

// consequenceBlocks are the card's sections about what the targets leave running and about the
// hand-over: none for a request without a lookup, or whose targets leave nothing.
func (v *view) consequenceBlocks(r approval.Request) []slack.Block {
	var blocks []slack.Block
	if text := v.consequenceText(r); text != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, nil))
	}
	if text := v.handoverText(r); text != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, nil))
	}
	return blocks
}

// consequenceText summarises what each target leaves running.
func (v *view) consequenceText(r approval.Request) string {
	lk := r.Lookup
	if lk == nil {
		return ""
	}
	var lines []string
	if lk.Error != "" {
		lines = append(lines, ":grey_question: I could not list the subscriptions and alerts they leave running: "+escape(lk.Error))
	}
	var with []approval.Target
	for _, t := range r.Targets {
		if !t.Consequences.Empty() {
			with = append(with, t)
		}
	}
	switch {
	case len(r.Targets) == 1 && len(with) == 1:
		t := with[0]
		lines = append(lines, fmt.Sprintf(":inbox_tray: *What %s leaves running in Metabase:* %s", escape(t.Email), consequenceSummary(t.Consequences)))
		for i, it := range t.Consequences.Items {
			if i == maxCardItems {
				lines = append(lines, fmt.Sprintf("…and %d more", t.Consequences.Running()-maxCardItems))
				break
			}
			lines = append(lines, "• "+v.itemLine(it))
		}
		if t.Consequences.Running() > 0 {
			lines = append(lines, "_The full list, with links, is in the thread._")
		}
	case len(with) > 0:
		lines = append(lines, ":inbox_tray: *What they leave running in Metabase:*")
		for i, t := range with {
			if i == maxCardTargets {
				lines = append(lines, fmt.Sprintf("…and %d more users (all in the thread)", len(with)-maxCardTargets))
				break
			}
			lines = append(lines, "• "+escape(t.Email)+": "+consequenceSummary(t.Consequences))
		}
		lines = append(lines, "_The full list, with links, is in the thread._")
	}
	if len(lines) > 0 && lk.CollectionsNotCounted > 0 {
		lines = append(lines, fmt.Sprintf("_The personal collections of %s were not counted._", plural(lk.CollectionsNotCounted, "user", "users")))
	}
	return clipLines(lines, maxSectionText)
}

// consequenceSummary is "2 subscriptions and 1 alert (1 failing) · 12 items in their personal
// collection".
func consequenceSummary(c *approval.Consequences) string {
	var parts []string
	switch {
	case c.Subscriptions > 0 && c.Alerts > 0:
		parts = append(parts, plural(c.Subscriptions, "subscription", "subscriptions")+" and "+plural(c.Alerts, "alert", "alerts"))
	case c.Subscriptions > 0:
		parts = append(parts, plural(c.Subscriptions, "subscription", "subscriptions"))
	case c.Alerts > 0:
		parts = append(parts, plural(c.Alerts, "alert", "alerts"))
	default:
		parts = append(parts, "no subscription or alert")
	}
	if c.Failing > 0 {
		parts[0] += fmt.Sprintf(" (%d failing)", c.Failing)
	}
	if c.CollectionItems > 0 {
		parts = append(parts, plural(c.CollectionItems, "item", "items")+" in their personal collection")
	}
	return strings.Join(parts, " · ")
}

// itemLine is one item: "Alert <link|Revenue drop> · 2 recipients · #sales · last run failed: …".
func (v *view) itemLine(it approval.Item) string {
	parts := []string{itemKindWord(it.Kind) + " " + v.itemLink(it)}
	if it.Recipients > 0 || len(it.SlackChannels) == 0 {
		parts = append(parts, plural(it.Recipients, "recipient", "recipients"))
	}
	if len(it.SlackChannels) > 0 {
		chans := make([]string, len(it.SlackChannels))
		for i, c := range it.SlackChannels {
			chans[i] = escape(c)
		}
		parts = append(parts, strings.Join(chans, ", "))
	}
	if it.Failing {
		f := "*last run failed*"
		if it.FailedWith != "" {
			f += ": " + escape(clip(it.FailedWith, 100))
		}
		parts = append(parts, f)
	}
	return strings.Join(parts, " · ")
}

func itemKindWord(k approval.ItemKind) string {
	if k == approval.Subscription {
		return "Subscription"
	}
	return "Alert"
}

// itemLink links an item to its dashboard or question in Metabase (METABASE_URL/dashboard/ID,
// /question/ID), or names it without a link when there is nowhere to go.
func (v *view) itemLink(it approval.Item) string {
	name := strings.TrimSpace(it.Name)
	if name == "" {
		name = itemKindWord(it.Kind) + " " + strconv.Itoa(it.ID)
	}
	// The label ends at the first '>' Slack sees and must not hold a '|'; escape() covers '>'.
	label := escape(strings.ReplaceAll(clip(name, 100), "|", "¦"))
	path := ""
	switch {
	case it.Kind == approval.Subscription && it.DashboardID > 0:
		path = "/dashboard/" + strconv.Itoa(it.DashboardID)
	case it.Kind == approval.Alert && it.CardID > 0:
		path = "/question/" + strconv.Itoa(it.CardID)
	}
	base := strings.TrimRight(v.cfg.MetabaseURL, "/")
	if path == "" || base == "" {
		return "“" + label + "”"
	}
	return "<" + base + path + "|" + label + ">"
}

// handoverText is the card's hand-over section: who takes over, the warning about permissions,
// and what this Metabase cannot do.
func (v *view) handoverText(r approval.Request) string {
	hv := r.Handover
	if hv == nil {
		return ""
	}
	lk := r.Lookup
	known := lk != nil && lk.Error == ""
	var lines []string
	fate := "listed"
	if hv.Archive {
		fate = "archived"
	}
	if hv.SuccessorID != 0 {
		who := escape(hv.SuccessorEmail)
		if hv.SuccessorName != "" && !strings.EqualFold(hv.SuccessorName, hv.SuccessorEmail) {
			who = escape(hv.SuccessorName) + " (" + who + ")"
		}
		lines = append(lines, ":handshake: *Hand-over to "+who+"*: their alerts move to "+escape(hv.SuccessorEmail)+
			". Subscriptions cannot change creator in any Metabase; they will be "+fate+".")
		switch {
		case known && !lk.MoveAlerts && hv.Archive && lk.ArchiveAlerts:
			lines = append(lines, ":information_source: "+thisMetabase(lk)+" cannot move alerts; they will be archived.")
		case known && !lk.MoveAlerts && hv.Archive:
			lines = append(lines, ":information_source: "+thisMetabase(lk)+" cannot move or archive alerts; they will be listed.")
		case known && !lk.MoveAlerts:
			lines = append(lines, ":information_source: "+thisMetabase(lk)+" cannot move alerts; they will be listed.")
		default:
			lines = append(lines, ":warning: Moved alerts run with "+escape(hv.SuccessorEmail)+
				"'s permissions: what they cannot see, the alerts will no longer send.")
		}
	} else {
		lines = append(lines, ":file_cabinet: *Archive* everything they left running: archiving stops it.")
		if known && !lk.ArchiveAlerts {
			lines = append(lines, ":information_source: "+thisMetabase(lk)+" cannot archive alerts; they will be listed.")
		}
	}
	if known && hv.Archive && (hv.SuccessorID == 0 || !lk.MoveAlerts) && lk.ArchiveAlerts && lk.ArchiveAlertsEmails {
		lines = append(lines, archiveEmailsWarning)
	}
	if r.Action == approval.Disable && !known {
		// access.cardListed: the execution hands over only what the card showed.
		lines = append(lines, ":no_entry: What they left running could not be read, so approving disables the account only: the hand-over will end not done.")
	}
	return strings.Join(lines, "\n")
}

// archiveEmailsWarning tells approvers, before they approve, that archiving an alert is not
// silent: Metabase emails each of its recipients that they were removed.
const archiveEmailsWarning = ":email: Metabase emails each recipient of an archived alert that they were removed from it."

func thisMetabase(lk *approval.Lookup) string {
	if lk.Version == "" {
		return "This Metabase"
	}
	return "This Metabase (" + escape(lk.Version) + ")"
}

// handoverAsk is the card's first line for a hand-over request.
func handoverAsk(r approval.Request) string {
	return fmt.Sprintf("%s asks to *hand over* what %s left running in Metabase:", mention(r.Requester),
		plural(len(r.Targets), "deactivated user", "deactivated users"))
}

// consequenceMessages are the thread replies that list every item of every target, with links.
func (v *view) consequenceMessages(r approval.Request) []threadMessage {
	if !access.ListsItems(r) {
		return nil
	}
	var lines []string
	budget := maxThreadItems
	for _, t := range r.Targets {
		c := t.Consequences
		if c.Running() == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("*%s* created %s:", escape(t.Email), consequenceSummary(c)))
		shown := min(len(c.Items), budget)
		for _, it := range c.Items[:shown] {
			lines = append(lines, "• "+v.itemLine(it))
		}
		budget -= shown
		if rest := c.Running() - shown; rest > 0 {
			lines = append(lines, fmt.Sprintf("…and %d more (see Metabase)", rest))
		}
	}
	if lk := r.Lookup; lk != nil && !lk.RunStatus {
		lines = append(lines, "_"+thisMetabase(lk)+" does not say whether they fail._")
	}
	return chunked(chunkLines(lines, maxSectionText))
}

// handoverMessages are the thread replies after execution: one line per item of the hand-over,
// then what it did in all.
func (v *view) handoverMessages(r approval.Request) []threadMessage {
	if r.Handover == nil && r.Action != approval.HandOver {
		return nil
	}
	var lines []string
	budget := maxThreadItems
	for _, t := range r.Targets {
		h := t.HandedOver
		if h == nil || (len(h.Items) == 0 && h.Unhandled == 0) {
			continue
		}
		lines = append(lines, fmt.Sprintf("*Hand-over of what %s left running:*", escape(t.Email)))
		for _, it := range h.Items {
			if budget == 0 {
				c := h.Counts()
				lines = append(lines, fmt.Sprintf("…and more: in all moved %d, archived %d, left in place %d, failed %d", c.Moved, c.Archived, c.Left, c.Failed))
				break
			}
			budget--
			lines = append(lines, fmt.Sprintf("• %s %s: %s", itemKindWord(it.Kind), v.itemLink(it.Item), itemOutcomeWords(it)))
		}
		if h.Unhandled > 0 {
			lines = append(lines, fmt.Sprintf("…and %d more left in place: more than one request hands over", h.Unhandled))
		}
	}
	c := r.HandoverCounts()
	summary := fmt.Sprintf("Hand-over: moved %d, archived %d, left in place %d, failed %d.", c.Moved, c.Archived, c.Left, c.Failed)
	if c.Total() == 0 {
		summary = "Hand-over: they had nothing left running."
	}
	if r.DryRun {
		summary += " DRY RUN: Metabase was not changed."
	}
	lines = append(lines, summary)
	return chunked(chunkLines(lines, maxSectionText))
}

// itemOutcomeWords says what the hand-over did with one item.
func itemOutcomeWords(it approval.ItemResult) string {
	msg := escape(it.Message)
	switch it.Outcome {
	case approval.ItemMoved:
		if strings.HasPrefix(it.Message, "to ") {
			return "moved " + msg
		}
		return joinWords("moved", msg)
	case approval.ItemArchived:
		return joinWords("archived", msg)
	case approval.ItemLeft:
		if strings.HasPrefix(it.Message, "left") {
			return msg
		}
		return joinWords("left in place", msg)
	case approval.ItemGone:
		return "gone: " + nonEmpty(msg, "no longer in Metabase")
	}
	return "failed: " + nonEmpty(msg, "not attempted")
}

func joinWords(word, msg string) string {
	if msg == "" {
		return word
	}
	return word + " (" + msg + ")"
}
