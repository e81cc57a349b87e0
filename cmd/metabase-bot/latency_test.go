package main

import (
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// slowMetabase is a fake Metabase answering every call in d.
func slowMetabase(d time.Duration) metabasetest.Option {
	return metabasetest.WithLatencyProfile(metabasetest.LatencyProfile{Search: d, Read: d, Write: d, Login: d, Health: d})
}

// seedLeaver adds a user who created two subscriptions and one alert.
func (h *harness) seedLeaver(email string) metabasetest.User {
	u := h.mb.AddUser(metabasetest.User{Email: email, FirstName: "Lee", LastName: "Ver", Active: true,
		DateJoined: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)})
	h.mb.AddSubscription(metabasetest.Subscription{Name: "Weekly sales", DashboardID: 7, CreatorID: u.ID, SlackChannels: []string{"#sales"}})
	h.mb.AddSubscription(metabasetest.Subscription{Name: "Daily ops", DashboardID: 8, CreatorID: u.ID, Emails: []string{"ops@example.org"}})
	h.mb.AddAlert(metabasetest.Alert{CardID: 12, CardName: "Revenue drop", CreatorID: u.ID, Emails: []string{"cfo@example.org"}})
	return u
}

// TestCardWithinTwoRoundTripsOfASlowMetabase: with every Metabase call taking 1 s, the card of a
// disable is posted within 3 s of the command, and what the target leaves running is on it or in
// its thread within 4 s. The first request after start-up is not timed: the bot learns the
// instance's version and capabilities at start, and it waits until that is done.
func TestCardWithinTwoRoundTripsOfASlowMetabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"METABASE_TIMEOUT": "5s"}, slowMetabase(time.Second))
	h.seedLeaver("first@example.com")
	h.seedLeaver("jane@example.com")
	h.start()
	h.command(requester, "disable first@example.com Left")
	h.card("first@example.com")

	start := time.Now()
	h.command(requester, "disable jane@example.com Left")
	card := h.card("jane@example.com")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("card posted %s after the command, want within 3s", took.Round(time.Millisecond))
	}
	text := card.AllText()
	if !strings.Contains(text, "2 subscriptions and 1 alert") {
		text += h.thread(card, "2 subscriptions and 1 alert").AllText()
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("subscriptions and alerts shown %s after the command, want within 4s", took.Round(time.Millisecond))
	}
	for _, want := range []string{"2 subscriptions and 1 alert", "Weekly sales"} {
		if !strings.Contains(text+h.thread(card, "Weekly sales").AllText(), want) {
			t.Errorf("neither the card nor its thread says %q:\n%s", want, text)
		}
	}
}

// TestAcksAtOnceWithAVerySlowMetabase: with every Metabase call taking 2.5 s, the slash command
// and the click on Approve are still acknowledged at once: Slack gives 3 s, and nothing waits for
// Metabase before the ack.
func TestAcksAtOnceWithAVerySlowMetabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"METABASE_TIMEOUT": "8s"}, slowMetabase(2500*time.Millisecond))
	h.seedLeaver("jane@example.com")
	h.start()
	// Well under Metabase's 2.5 s: whatever the ack waited for, it was not Metabase.
	const atOnce = time.Second
	if ack := h.command(requester, "disable jane@example.com Left"); ack.Latency > atOnce {
		t.Errorf("command acked after %s", ack.Latency)
	}
	card := h.card("jane@example.com")
	if ack := h.click(approver, card, "mb_approve"); ack.Latency > atOnce {
		t.Errorf("click acked after %s", ack.Latency)
	}
	h.cardState(card, "Approved")
}
