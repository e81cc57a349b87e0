package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Fault tests: Metabase or Slack fail halfway through a flow, and the bot still reaches the
// right outcome with every message posted exactly once.

func TestMetabase503ThenRecoveryIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")

	// Two 503s, then Metabase answers: within the client's retry budget (4 attempts).
	h.mb.FailNext("DELETE", "/api/user/:id", 2, 503, "Service Unavailable")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.cardState(card, "Approved")
	h.audit("executed", "jane@example.com")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 3 {
		t.Errorf("DELETE calls = %d, want 3 (two 503s, then success)", n)
	}
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active after Metabase recovered")
	}
	if n := h.count(func(m slacktest.Message) bool { return m.ThreadTS == card.TS && strings.Contains(m.AllText(), ":x:") }); n != 0 {
		t.Errorf("%d thread replies report a failure, want none", n)
	}
}

func TestMetabaseHangTimesOutWithRetryButton(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
	jane := h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")

	// Every DELETE hangs for longer than METABASE_TIMEOUT: each attempt times out, the
	// client retries within its budget, and the bot reports the failure.
	h.mb.SetLatency("DELETE", "/api/user/:id", 5*time.Second)
	h.click(approver, card, "mb_approve")
	reply := h.thread(card, "did not answer in time")
	if !strings.Contains(reply.AllText(), "failed") {
		t.Errorf("the timeout reply does not say failed: %s", reply.AllText())
	}
	if !reply.HasAction("mb_retry") {
		t.Fatalf("the timeout reply has no Retry button: %s", reply.AllText())
	}
	h.cardState(card, "failed")
	h.audit("failed", "jane@example.com", "did not answer in time")
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Fatal("jane was disabled although every DELETE timed out")
	}

	// Metabase answers again; an approver retries from the thread.
	h.mb.SetLatency("DELETE", "/api/user/:id", 0)
	h.click(approver, reply, "mb_retry")
	h.thread(card, "jane@example.com: disabled")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active after the retry")
	}
}

func TestSlackRateLimitIsRetriedAfterRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()

	// The card post is rate limited: chat.postMessage answers 429 with Retry-After: 2.
	const retryAfter = 2 * time.Second
	h.slack.RateLimit("chat.postMessage", 1, int(retryAfter/time.Second))
	calls := h.slack.Calls("chat.postMessage")
	first := make(chan time.Time, 1)
	go func() {
		if h.slack.WaitCalls(h.ctx(), "chat.postMessage", calls+1) == nil {
			first <- time.Now()
		}
	}()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	retried := time.Now()
	var limited time.Time
	select {
	case limited = <-first:
	case <-h.ctx().Done():
		t.Fatal("the rate-limited call was never seen")
	}
	// The observer wakes a little after the 429 was counted, and the card is seen a little
	// after the retry was counted, so the gap only errs on the short side by wake-up jitter.
	if gap := retried.Sub(limited); gap < retryAfter-50*time.Millisecond {
		t.Errorf("the card was re-posted %s after the 429, sooner than Retry-After %s", gap, retryAfter)
	}

	// The outcome reply is rate limited too.
	h.slack.RateLimit("chat.postMessage", 1, 1)
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.audit("executed", "jane@example.com")

	// Nothing lost, nothing doubled.
	if n := h.count(func(m slacktest.Message) bool { return m.Channel == opsChannel && m.ThreadTS == "" }); n != 1 {
		t.Errorf("%d cards, want 1", n)
	}
	if n := h.count(func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && strings.Contains(m.AllText(), "jane@example.com: disabled")
	}); n != 1 {
		t.Errorf("%d outcome replies, want 1", n)
	}
	for _, event := range []string{"*requested*", "*approved*", "*executed*"} {
		if n := h.count(func(m slacktest.Message) bool { return m.Channel == auditChannel && strings.Contains(m.Text, event) }); n != 1 {
			t.Errorf("%d audit lines for %s, want 1", n, event)
		}
	}
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
	if !strings.Contains(h.logs.String(), "Slack rate limited a message") {
		t.Error("no log line for the rate-limited message")
	}
}

func TestSocketModeDisconnectMidFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")

	// Slack asks for a refresh between the card and the click; the click is sent right away,
	// while the bot is reconnecting, and must not be lost.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.slack.Disconnect(ctx, "refresh_requested"); err != nil {
		t.Fatal(err)
	}
	id, err := h.slack.Click(ctx, slacktest.Click{UserID: approver, ChannelID: card.Channel, MessageTS: card.TS, ActionID: "mb_approve"})
	if err != nil {
		t.Fatalf("click after the disconnect: %v", err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		t.Fatalf("the click sent during the reconnect was never acked: %v", err)
	}
	if n := h.slack.Connections(); n != 2 {
		t.Errorf("Connections() = %d, want 2 (one reconnect)", n)
	}
	h.thread(card, "jane@example.com: disabled")
	h.cardState(card, "Approved")
	h.audit("executed", "jane@example.com")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}

	// The reconnected socket keeps serving.
	h.mb.AddUser(metabaseUser("joe@example.com"))
	h.command(requester, "disable joe@example.com Contract ended")
	h.card("joe@example.com")
}

// metabaseUser is an active, non-admin Metabase user with this email.
func metabaseUser(email string) metabasetest.User {
	name, _, _ := strings.Cut(email, "@")
	return metabasetest.User{Email: email, FirstName: name, LastName: "Test", Active: true}
}
