package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// TestTypedTextIsEscapedExactlyOnce: Slack sends a slash command's &, < and > escaped
// (should_escape: true); the bot shows what the person typed, escaped once, and nothing typed
// ever notifies anyone.
func TestTypedTextIsEscapedExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.mb.AddUser(metabaseUser("joe@example.com"))
	h.start()
	t.Cleanup(func() { h.checkNoPings() })

	h.command(requester, "disable jane@example.com R&D budget <b>cut</b> @channel ask @bob")
	card := h.card("jane@example.com")
	const want = "R&amp;D budget &lt;b&gt;cut&lt;/b&gt; &lt;!channel&gt; ask @bob"
	if !strings.Contains(card.AllText(), want) || strings.Contains(card.AllText(), "&amp;amp;") {
		t.Errorf("the card shows the reason as %q, want %q (escaped once):\n%s", reasonOf(card.AllText()), want, card.AllText())
	}
	audit := h.audit("requested", "jane@example.com")
	if !strings.Contains(audit.Text, "reason: "+want) {
		t.Errorf("the audit line shows the reason escaped other than once:\n%s", audit.Text)
	}
	// The card pings the approvers, and a typed @channel pings nobody.
	if !slices.Contains(card.Notified, approver) || !slices.Contains(card.Notified, approver2) {
		t.Errorf("the card notified %v, want the approver group (%s, %s)", card.Notified, approver, approver2)
	}
	if slices.Contains(card.Notified, outsider) {
		t.Errorf("the card notified %v: a typed @channel reached %s", card.Notified, outsider)
	}

	// A form's reason arrives unescaped; it is escaped once too, and a bare @here stays text.
	view := h.openForm("disable")
	if errs := h.submit(requester, view, requestForm("joe@example.com", "R&D <i> @here", "", "")); errs != nil {
		t.Fatalf("form refused: %v", errs)
	}
	card = h.card("joe@example.com")
	if !strings.Contains(card.AllText(), "R&amp;D &lt;i&gt; @here") || strings.Contains(card.AllText(), "&amp;amp;") {
		t.Errorf("the form's reason is not escaped exactly once:\n%s", card.AllText())
	}
	if slices.Contains(card.Notified, outsider) {
		t.Errorf("the form's card notified %v: a typed @here reached %s", card.Notified, outsider)
	}

	// A word that is not a user is quoted as typed.
	h.command(requester, "disable R&D")
	h.ephemeral(requester, `"R&amp;D" is not a user`)
}

// reasonOf picks the reason line out of a card's text, for failure messages.
func reasonOf(text string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "*Reason:*") {
			return l
		}
	}
	return ""
}

// TestCardMentionsReachTheApprovers: with APPROVER_USERS the card mentions each approver where
// Slack notifies.
func TestCardMentionsReachTheApprovers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"APPROVER_GROUP": "", "APPROVER_USERS": approver + "," + approver2})
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left")
	card := h.card("jane@example.com")
	for _, u := range []string{approver, approver2} {
		if !slices.Contains(card.Notified, u) {
			t.Errorf("the card notified %v, not approver %s", card.Notified, u)
		}
	}
	if n := h.count(func(m slacktest.Message) bool { return slices.Contains(m.Notified, outsider) }); n != 0 {
		t.Errorf("%d messages notified %s, who has nothing to do with the request", n, outsider)
	}
}
