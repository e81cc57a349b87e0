package main

import (
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// TestCardFailureIsAudited: a request whose card Slack refuses is cancelled, and like every
// other state change that cancellation reaches the audit channel, after its "requested" line, so
// the audit trail does not show a request left pending forever.
func TestCardFailureIsAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.slack.AddChannel("CPRIVATE", "private-ops", false)
	h.start()
	if _, err := h.slack.SlashCommand(h.ctx(), slacktest.SlashCommand{UserID: requester, ChannelID: "CPRIVATE", Text: "disable jane@example.com gone"}); err != nil {
		t.Fatal(err)
	}
	requested := h.audit("requested", "jane@example.com")
	cancelled := h.audit("cancelled", "jane@example.com")
	var order []string
	for _, m := range h.slack.Messages() {
		if m.Channel == auditChannel && (m.TS == requested.TS || m.TS == cancelled.TS) {
			order = append(order, m.Text)
		}
	}
	if len(order) != 2 || !strings.Contains(order[0], "requested") {
		t.Fatalf("audit lines out of order: %q", order)
	}
	if !strings.Contains(cancelled.Text, "not_in_channel") {
		t.Errorf("the audit line does not say why the request was cancelled: %s", cancelled.Text)
	}
}
