package main

import (
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// The fake Slack lets the bot post only where it was invited, and chat.postEphemeral reach only
// members (https://api.slack.com/methods/chat.postEphemeral#errors). Private replies must arrive
// anyway.

// TestInactiveReportWhereTheBotIsNotInvited: the report answers through the command's
// response_url, which works in any channel.
func TestInactiveReportWhereTheBotIsNotInvited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	const elsewhere = "CELSEWHERE" // the bot was never invited here
	ctx := h.ctx()
	id, err := h.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: elsewhere, Text: "inactive 30"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	report, err := h.slack.WaitEphemeral(ctx, func(m slacktest.Message) bool {
		return m.Channel == elsewhere && m.User == requester && strings.Contains(m.AllText(), "active Metabase users")
	})
	if err != nil {
		t.Fatalf("no inactive report in a channel without the bot: %v\nlogs:\n%s", err, h.logs.String())
	}
	if !report.HasAction("mb_inactive_request") {
		t.Errorf("the report lost its button:\n%s", report.AllText())
	}
}

// TestFormRefusalReachesAPersonWhereEphemeralsFail: a form's answer has no response_url. When
// the bot was removed from the channel, the refusal goes to the person's direct messages.
func TestFormRefusalReachesAPersonWhereEphemeralsFail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_deny")
	form, err := h.slack.WaitView(h.ctx(), func(v slacktest.View) bool { return v.CallbackID == "mb_deny_form" })
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile the other approver approves, and someone removes the bot from the channel.
	h.click(approver2, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.slack.Kick(opsChannel, h.slack.BotUserID())
	if errs := h.submit(approver, form, formValues{"mb_form_reason": {"reason": {Value: "not yet"}}}); errs != nil {
		t.Fatalf("deny form refused: %v", errs)
	}
	if _, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == "D"+approver && strings.Contains(m.Text, "already")
	}); err != nil {
		t.Fatalf("the refused denial never reached the approver: %v\nephemerals: %v\nlogs:\n%s", err, texts(h.slack.Ephemerals()), h.logs.String())
	}
}
