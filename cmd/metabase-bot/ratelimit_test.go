package main

import (
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// Slack's rate limits are on in the fake for every test (docs/slack.md#rate-limits); these tests
// push the bot into them on purpose.

// TestCardRefusedAsRateLimitedIsPostedLater: chat.postMessage may answer ok:false rate_limited
// (https://api.slack.com/methods/chat.postMessage#errors). That is a reason to wait, not to cancel
// the request.
func TestCardRefusedAsRateLimitedIsPostedLater(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	h.slack.FailNext("chat.postMessage", 1, "rate_limited")
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	if n := h.count(func(m slacktest.Message) bool {
		return m.Channel == auditChannel && strings.Contains(m.Text, "*cancelled*")
	}); n != 0 {
		t.Errorf("the request was cancelled because Slack asked the bot to slow down")
	}
}

// TestApproverCheckDelayedByTier2: usergroups.users.list is Tier 2, and the approver group is
// read at click time. When Slack asks the bot to wait, the approver hears so at once, and the
// approval goes through after the wait.
func TestApproverCheckDelayedByTier2(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	h.slack.RateLimit("usergroups.users.list", 1, 2)
	clicked := time.Now()
	h.click(approver, card, "mb_approve")
	h.ephemeral(approver, "Slack asked me to wait 2 seconds before I can check the approver group")
	if d := time.Since(clicked); d > 1500*time.Millisecond {
		t.Errorf("the approver heard of the delay after %s, want at once", d)
	}
	h.thread(card, "jane@example.com: disabled")
	h.cardState(card, "Approved")
}
