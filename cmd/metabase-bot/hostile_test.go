package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Hostile input: whatever a user types or Slack (or an attacker on the socket) sends, the bot
// answers with a clear private reply or ignores it with a log line. It never panics, never
// lets a channel-wide ping through, and never acts (no card, no Metabase write).

// pings are Slack's channel-wide mentions; the bot must never post one unescaped.
var pings = []string{"<!channel", "<!here", "<!everyone"}

// requestIDRe finds a request id on a card.
var requestIDRe = regexp.MustCompile(`MB-[2-9A-Z]{8}`)

func TestHostileInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	t.Cleanup(func() { h.checkNoPings() })

	commands := []struct {
		name, text string
		want       string // a phrase of the ephemeral reply
	}{
		{"empty", "", "Metabase access, with approval"},
		{"whitespace", " \t\n  ", "Metabase access, with approval"},
		{"13000 characters", strings.Repeat("a", 13000), "the limit is 12000"},
		{"1000-character reason", "disable jane@example.com " + strings.Repeat("é", 1000), "the limit is 500"},
		{"right-to-left override in the email", "disable jane\u202e@example.com moc.elpmaxe", "is not a valid email"},
		{"right-to-left override before the verb", "\u202edisable jane@example.com bye", "I don't know the command"},
		{"zero-width space in the email", "disable jane\u200b@example.com bye", "is not a valid email"},
		{"full-width digits", "disable \uff15 bye", "is not a user"},
		{"emoji and combining marks", "disable 🙂\u0301@example.com bye", "is not a valid email"},
		{"channel ping as the target", "disable <!channel> bye", "is not a user"},
		{"here ping as the verb", "<!here>", "I don't know the command"},
		{"everyone ping as a mention", "disable <!everyone|everyone> bye", "is not a user"},
		{"forged mention with a ping label", "disable <@UAPP|<!channel>> bye", "not a Slack user mention"},
		{"forged mention, malformed id", "disable <@notanid> bye", "not a Slack user mention"},
		{"mention of an unknown user", "disable <@U999999> bye", "is not a Slack user I can see"},
		{"mention of an approver without Metabase account", "disable <@UAPP|jane> bye", "has no Metabase account"},
		{"markdown around the email", "disable *jane@example.com* _bye_", "is not a valid email"},
		{"code span around the email", "disable `jane@example.com` bye", "is not a valid email"},
		{"link markup as the target", "disable <https://evil.example|jane@example.com> bye", "is not a valid email"},
		{"double at", "disable jane@@example.com bye", "is not a valid email"},
		{"bare at", "disable @ bye", "is not a valid email"},
		{"email without domain dot label", "disable jane@-example.com bye", "is not a valid email"},
		{"negative id", "disable -5 bye", "is not a valid Metabase user id"},
		{"zero id", "disable 0 bye", "is not a valid Metabase user id"},
		{"id above int32", "disable 2147483648 bye", "is not a valid Metabase user id"},
		{"huge id", "disable 99999999999999999999999999 bye", "is not a valid Metabase user id"},
		{"unknown id", "disable 2147483647 bye", "No Metabase user has the id"},
		{"status with a huge id", "status 99999999999999999999", "is not a valid Metabase user id"},
		{"unknown verb", "delete jane@example.com bye", `I don't know the command "delete"`},
		{"SQL as the verb", "'; DROP TABLE requests; --", "I don't know the command"},
		{"reason only", "disable because I said so", `"because" is not a user`},
		{"until garbage", "disable jane@example.com until <!channel> bye", "can't read the return date"},
		{"inactive with a ping", "inactive <!here>", "takes a number of days"},
		{"too many targets", "disable " + manyIDs(101) + " bye", "at most 100"},
		{"reason starting with a number", "disable jane@example.com 3 months sabbatical", "a reason may not start with a number"},
	}
	// Sent raw: these are what Slack (or a forged payload) may carry, entities included.
	for _, tc := range commands {
		before := len(h.slack.Ephemerals())
		h.commandRaw(requester, tc.text)
		m, err := h.slack.WaitEphemeral(h.ctx(), func(m slacktest.Message) bool {
			return m.User == requester && strings.Contains(m.AllText(), tc.want)
		})
		if err != nil {
			t.Errorf("%s: no ephemeral with %q: %v\nephemerals since: %v", tc.name, tc.want, err, texts(h.slack.Ephemerals()[before:]))
			continue
		}
		if m.Channel != opsChannel {
			t.Errorf("%s: the reply went to %s, not privately to the requester in %s", tc.name, m.Channel, opsChannel)
		}
	}
	h.assertNothingActed("bad commands")

	// The bot's own messages never carry a ping, even when the reason is full of them: a valid
	// request whose reason pings shows it escaped.
	h.commandRaw(requester, "disable jane@example.com <!channel> <!here> <!everyone> *urgent* <@UAPP> please")
	card := h.card("jane@example.com")
	for _, want := range []string{"&lt;!channel&gt;", "&lt;!here&gt;", "&lt;!everyone&gt;", "&lt;@UAPP&gt;"} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("the card does not show %q escaped:\n%s", want, card.AllText())
		}
	}
	h.audit("requested", "&lt;!channel&gt;")
	janeID := requestIDRe.FindString(card.AllText())

	// A second request, in another channel, whose id a forged button will name.
	const otherChannel = "COTHER"
	h.slack.AddChannel(otherChannel, "other", true)
	h.mb.AddUser(metabaseUser("joe@example.com"))
	ctx := h.ctx()
	if _, err := h.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: otherChannel, Text: "disable joe@example.com Contract ended"}); err != nil {
		t.Fatal(err)
	}
	other, err := h.slack.WaitMessage(ctx, func(m slacktest.Message) bool { return m.Channel == otherChannel && m.HasAction("mb_approve") })
	if err != nil {
		t.Fatalf("no card in %s: %v", otherChannel, err)
	}
	otherID := requestIDRe.FindString(other.AllText())
	if janeID == "" || otherID == "" || janeID == otherID {
		t.Fatalf("request ids not found on the cards: %q, %q", janeID, otherID)
	}

	clicks := []struct {
		name, value, want string
	}{
		{"a request from another channel", otherID, "does not belong to this request"},
		{"a nonexistent request", "MB-ZZZZZZZZ", "does not exist"},
		{"an empty value", "", "does not exist"},
		{"a ping as the value", "<!channel>", "does not exist"},
		{"SQL as the value", "' OR 1=1 --", "does not exist"},
		{"10000 characters", strings.Repeat("M", 10000), "does not exist"},
	}
	for _, tc := range clicks {
		for _, action := range []string{"mb_approve", "mb_deny", "mb_cancel"} {
			id, err := h.slack.ClickWithValue(ctx, slacktest.Click{UserID: approver, ChannelID: card.Channel, MessageTS: card.TS, ActionID: action}, tc.value)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, action, err)
			}
			if _, err := h.slack.WaitAck(ctx, id); err != nil {
				t.Fatalf("%s %s: no ack: %v", tc.name, action, err)
			}
			if _, err := h.slack.WaitEphemeral(h.ctx(), func(m slacktest.Message) bool {
				return m.User == approver && strings.Contains(m.AllText(), tc.want)
			}); err != nil {
				t.Errorf("%s %s: no ephemeral with %q: %v", tc.name, action, tc.want, err)
			}
		}
	}
	// A button of one card naming the other card's request, in the same channel.
	h.command(requester, "disable "+h.mb.AddUser(metabaseUser("kim@example.com")).Email+" Moved teams")
	kim := h.card("kim@example.com")
	id, err := h.slack.ClickWithValue(ctx, slacktest.Click{UserID: approver, ChannelID: kim.Channel, MessageTS: kim.TS, ActionID: "mb_approve"}, janeID)
	if err != nil {
		t.Fatal(err)
	}
	h.slack.WaitAck(ctx, id)
	h.ephemeral(approver, "does not belong to this request")

	// An envelope from another workspace is acked and ignored with a log line.
	id, err = h.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel, TeamID: "TOTHER", Text: "disable jane@example.com from elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		t.Fatalf("the other team's command was not acked: %v", err)
	}
	id, err = h.slack.Click(ctx, slacktest.Click{UserID: approver, ChannelID: card.Channel, MessageTS: card.TS, ActionID: "mb_approve", TeamID: "TOTHER"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		t.Fatalf("the other team's click was not acked: %v", err)
	}
	h.waitLog(h.ctx(), "slash command from another team")
	h.waitLog(h.ctx(), "interaction from another team")

	// A replayed command creates one card.
	before := h.count(func(m slacktest.Message) bool { return m.HasAction("mb_approve") })
	id = h.commandEnvelope(requester, "disable "+h.mb.AddUser(metabaseUser("lee@example.com")).Email+" Replayed")
	if err := h.slack.Redeliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.slack.Redeliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.card("lee@example.com")
	if acks := h.waitAckCount(id, 3); len(acks) != 3 {
		t.Errorf("%d acks for three deliveries, want 3", len(acks))
	}

	// Raw frames that are not valid envelopes.
	for _, frame := range []string{
		"not json at all",
		`{}`,
		`{"type":"slash_commands"}`,
		`{"type":"slash_commands","envelope_id":"e-garbage-1","payload":"a string"}`,
		`{"type":"slash_commands","envelope_id":"e-garbage-2","payload":{"command":42,"text":["x"]}}`,
		`{"type":"interactive","envelope_id":"e-garbage-3","payload":{"type":"block_actions","actions":null,"user":null}}`,
		`{"type":"interactive","envelope_id":"e-garbage-4","payload":{"type":"block_actions","team":{"id":"T1"},"actions":[null,{"action_id":"mb_approve"}]}}`,
		`{"type":"events_api","envelope_id":"e-garbage-5","payload":{"event":{"type":"message","text":"<!channel>"}}}`,
		`{"type":"hello","num_connections":-1}`,
		`[1,2,3]`,
		strings.Repeat("[", 10000),
	} {
		if err := h.slack.SendRaw(ctx, []byte(frame)); err != nil {
			t.Fatalf("send raw frame %.40q: %v", frame, err)
		}
	}

	// slack-go reports the undecodable ones as events without an envelope; the bot logs and
	// skips them, and acks-and-logs envelopes and events it does not serve (it serves only
	// app_home_opened of the Events API).
	h.waitLog(h.ctx(), `"event_type":"error_bad_message","level":"warning","msg":"Ignoring an event without an envelope"`)
	h.waitLog(h.ctx(), `"envelope_id":"e-garbage-5","event_type":"events_api","level":"warning","msg":"Ignoring envelope: event type the bot does not use"`)

	// Let everything above settle (the replay's card and any late replies), then check that
	// nothing acted beyond the valid requests.
	h.audit("requested", "lee@example.com")
	if n := h.count(func(m slacktest.Message) bool { return m.HasAction("mb_approve") }); n != before+1 {
		t.Errorf("%d cards after a command delivered three times, want %d", n, before+1)
	}
	if n := h.mb.Count("DELETE", ""); n != 0 {
		t.Errorf("DELETE calls = %d after hostile input, want 0", n)
	}
	if n := h.mb.Count("PUT", ""); n != 0 {
		t.Errorf("PUT calls = %d after hostile input, want 0", n)
	}
	if strings.Contains(h.logs.String(), "panicked") {
		t.Errorf("a handler panicked:\n%s", h.logs.String())
	}

	// And the bot still serves a normal request from start to end.
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.audit("executed", "jane@example.com")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
}

// TestHundredEmailsAsSlackSendsThem: one command may name 100 users, and Slack sends each email
// as <mailto:…|…>, more than doubling its length; the limit counts targets, not escaped text.
func TestHundredEmailsAsSlackSendsThem(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var words []string
	for i := range 100 {
		email := fmt.Sprintf("user%03d-abcdefghijkl@example.com", i)
		h.mb.AddUser(metabasetest.User{Email: email, FirstName: "U", Active: true})
		words = append(words, email) // the fake sends each as Slack does: <mailto:…|…>
	}
	h.start()
	h.command(requester, "disable "+strings.Join(words, " ")+" licence clean-up")
	h.card("user000-abcdefghijkl@example.com")
}

// manyIDs returns n distinct Metabase ids separated by spaces.
func manyIDs(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(i + 1)
	}
	return strings.Join(ids, " ")
}

// assertNothingActed fails the test if any approval card was posted or Metabase was written.
func (h *harness) assertNothingActed(what string) {
	h.t.Helper()
	if n := h.count(func(m slacktest.Message) bool { return m.HasAction("mb_approve") }); n != 0 {
		h.t.Errorf("%s: %d approval cards were posted", what, n)
	}
	for _, method := range []string{"DELETE", "PUT", "POST"} {
		n := h.mb.Count(method, "/api/user")
		if n != 0 {
			h.t.Errorf("%s: %d Metabase %s calls, want 0", what, n, method)
		}
	}
}

// checkNoPings fails the test if any message or ephemeral the bot posted carries an unescaped
// channel-wide mention.
func (h *harness) checkNoPings() {
	for _, m := range append(h.slack.Messages(), h.slack.Ephemerals()...) {
		text := m.AllText()
		for _, p := range pings {
			if strings.Contains(text, p) {
				h.t.Errorf("a message to %s/%s pings with %s:\n%s", m.Channel, m.User, p, text)
			}
		}
	}
}

// commandEnvelope types a slash command, waits for its ack and returns its envelope id.
func (h *harness) commandEnvelope(user, text string) string {
	h.t.Helper()
	ctx := h.ctx()
	id, err := h.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: user, ChannelID: opsChannel, Text: text})
	if err != nil {
		h.t.Fatalf("slash command: %v", err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		h.t.Fatalf("no ack for %q: %v", text, err)
	}
	return id
}

// waitAckCount waits (bounded) until envelope id has n acks and returns them.
func (h *harness) waitAckCount(id string, n int) []slacktest.Ack {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		acks := h.slack.Acks(id)
		if len(acks) >= n {
			return acks
		}
		select {
		case <-ctx.Done():
			return acks
		case <-time.After(10 * time.Millisecond): // slacktest has no wait for the n-th ack
		}
	}
}
