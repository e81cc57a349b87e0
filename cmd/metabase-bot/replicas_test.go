package main

import (
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// Several replicas, quorum, expiry, reminders and cancellation, end to end: the real run() against the fake
// Slack (real slack-go Socket Mode client over a WebSocket) and the fake Metabase.

// startReplicas runs n bot processes sharing h's database and Slack app.
func (h *harness) startReplicas(n int) {
	h.t.Helper()
	for range n {
		h.start()
	}
	if err := h.slack.WaitSockets(h.ctx(), n); err != nil {
		h.t.Fatalf("%d replicas not all connected: %v", n, err)
	}
}

// TestTwoReplicasOnPostgres: Slack may hand the same envelope to both replicas, or two approvers' clicks to
// different replicas; the compare-and-set in the shared store lets exactly one of them execute.
func TestTwoReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		click func(h *harness, card slacktest.Message)
	}{
		{"same click delivered to both", func(h *harness, card slacktest.Message) {
			id, n, err := h.slack.ClickAll(h.ctx(), slacktest.Click{UserID: approver, ChannelID: card.Channel, MessageTS: card.TS, ActionID: "mb_approve"})
			if err != nil || n != 2 {
				h.t.Fatalf("ClickAll reached %d sockets (%v), want 2", n, err)
			}
			h.eventually("both replicas to ack", func() bool { return len(h.slack.Acks(id)) == 2 })
		}},
		{"two approvers at once on different replicas", func(h *harness, card slacktest.Message) {
			// Click goes to one socket, round robin: the two clicks land on different replicas.
			h.clickOn(approver, card, "mb_approve")
			h.clickOn(approver2, card, "mb_approve")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, map[string]string{"DATABASE_URL": postgresDatabaseURL(t)})
			jane := h.addJane()
			h.startReplicas(2)
			st := h.openStore()
			h.command(requester, "disable jane@example.com Left the company")
			card := h.card("jane@example.com")
			// Make the Metabase call slow so a second executor, if any, would overlap the first.
			h.mb.SetLatency("DELETE", "/api/user/:id", 200*time.Millisecond)

			tt.click(h, card)
			h.thread(card, "jane@example.com: disabled")
			h.cardState(card, "Approved")
			h.audit("executed", "jane@example.com")
			h.drained(st)

			if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
				t.Errorf("DELETE calls = %d, want exactly 1", n)
			}
			if u, _ := h.mb.UserByID(jane.ID); u.Active {
				t.Error("jane is still active")
			}
			if n := h.inThread(card, "disabled"); n != 1 {
				t.Errorf("%d outcome replies, want 1", n)
			}
			for _, event := range []string{"requested", "approved", "executed"} {
				if n := h.audits(event); n != 1 {
					t.Errorf("%d audit lines %q, want 1", n, event)
				}
			}
			if r := h.requestOf(st, card); r.State != approval.Succeeded || r.Attempts != 1 {
				t.Errorf("request is %s after %d attempts, want succeeded after 1", r.State, r.Attempts)
			}
		})
	}
}

// TestTwoReplicasRedeliveredCommandCreatesOneRequest: a slash command redelivered to the other replica is
// recognised by its trigger id and creates nothing, whether the two deliveries race or the redelivery comes
// after the card is up; the requester hears nothing about it.
func TestTwoReplicasRedeliveredCommandCreatesOneRequest(t *testing.T) {
	t.Parallel()
	for _, afterCard := range []bool{false, true} {
		name := map[bool]string{false: "racing", true: "after the card"}[afterCard]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, map[string]string{"DATABASE_URL": postgresDatabaseURL(t)})
			h.addJane()
			h.startReplicas(2)
			st := h.openStore()
			ctx := h.ctx()
			id, err := h.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel, Text: "disable jane@example.com Left the company"})
			if err != nil {
				t.Fatal(err)
			}
			var card slacktest.Message
			if afterCard {
				card = h.card("jane@example.com")
			}
			// Redeliver goes to the next socket round robin: the other replica.
			if err := h.slack.Redeliver(ctx, id); err != nil {
				t.Fatal(err)
			}
			h.eventually("both deliveries to be acked", func() bool { return len(h.slack.Acks(id)) == 2 })
			if !afterCard {
				card = h.card("jane@example.com")
			}
			// The second delivery is handled after its ack; wait until it is done with.
			h.eventually("the redelivery to be handled", func() bool {
				logs := h.logs.String()
				return strings.Count(logs, `"Request created"`) == 1 &&
					(strings.Contains(logs, "Ignoring a redelivered command") || strings.Contains(logs, "Refused a request"))
			})
			h.drained(st)
			if n := h.cards("jane@example.com"); n != 1 {
				t.Fatalf("%d cards, want 1", n)
			}
			if n := h.audits("requested"); n != 1 {
				t.Errorf("%d audit lines requested, want 1", n)
			}
			if rs, err := st.List(h.ctx()); err != nil || len(rs) != 1 {
				t.Errorf("%d stored requests (%v), want 1", len(rs), err)
			}
			for _, e := range h.slack.Ephemerals() {
				if e.User == requester {
					t.Errorf("the requester was told something about a redelivery they never made: %s", e.AllText())
				}
			}
			h.click(approver, card, "mb_approve")
			h.thread(card, "jane@example.com: disabled")
		})
	}
}

// TestQuorumOfTwo: each approver counts once; the card keeps its buttons and shows progress until the quorum.
func TestQuorumOfTwo(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUIRED_APPROVALS": "2"})
	jane := h.addJane()
	h.start()
	st := h.openStore()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")

	h.click(approver, card, "mb_approve")
	progress := h.cardWithButtons(card, "1 of 2 approvals: <@"+approver+">")
	h.audit("approval 1 of 2", "by <@"+approver+">")

	h.click(approver, card, "mb_approve")
	h.ephemeral(approver, "already approved")
	h.drained(st)
	if cur, _ := h.slack.Message(card.Channel, card.TS); cur.Updates != progress.Updates || !cur.HasAction("mb_approve") {
		t.Errorf("a second approval by the same person changed the card (updates %d → %d):\n%s", progress.Updates, cur.Updates, cur.AllText())
	}
	if r := h.requestOf(st, card); r.State != approval.Pending || len(r.Approvals) != 1 {
		t.Fatalf("after the same approver twice: %s with %d approvals, want pending with 1", r.State, len(r.Approvals))
	}
	if n := h.mb.Count("DELETE", ""); n != 0 {
		t.Fatalf("DELETE calls = %d before the quorum, want 0", n)
	}

	h.click(approver2, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	final := h.cardState(card, "Approved")
	for _, who := range []string{approver, approver2} {
		if !strings.Contains(final.AllText(), "<@"+who+">") {
			t.Errorf("the final card does not name approver %s:\n%s", who, final.AllText())
		}
	}
	h.audit("executed", "jane@example.com")
	h.drained(st)
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active")
	}
	if n := h.audits("approved"); n != 1 {
		t.Errorf("%d audit lines approved, want 1", n)
	}
}

// TestQuorumOneDenyEndsTheRequest: one Deny after one approval ends the request; nothing is disabled.
func TestQuorumOneDenyEndsTheRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUIRED_APPROVALS": "2"})
	jane := h.addJane()
	h.start()
	st := h.openStore()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	h.cardWithButtons(card, "1 of 2 approvals")

	h.deny(approver2, card, "Still needed")
	h.cardState(card, "Denied")
	h.thread(card, "Denied by <@"+approver2+">")
	h.audit("denied", "jane@example.com")
	h.drained(st)
	if n := h.mb.Count("DELETE", ""); n != 0 {
		t.Errorf("DELETE calls = %d after a denial, want 0", n)
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Error("jane was disabled despite the denial")
	}
	if r := h.requestOf(st, card); r.State != approval.Denied {
		t.Errorf("request is %s, want denied", r.State)
	}
}

// TestAdminRequiredApprovals: ADMIN_REQUIRED_APPROVALS raises the quorum for Metabase admins only.
func TestAdminRequiredApprovals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_REQUIRED_APPROVALS": "2"})
	h.addJane()
	root := h.mb.AddUser(fakeAdmin())
	h.start()

	h.command(requester, "disable jane@example.com Left the company")
	janeCard := h.card("jane@example.com")
	h.click(approver, janeCard, "mb_approve")
	h.thread(janeCard, "jane@example.com: disabled")

	h.command(requester, "disable root@example.com Rotating admins")
	rootCard := h.card("root@example.com")
	if !strings.Contains(rootCard.AllText(), "0 of 2 approvals") {
		t.Errorf("the admin's card does not ask for 2 approvals:\n%s", rootCard.AllText())
	}
	h.click(approver, rootCard, "mb_approve")
	h.cardWithButtons(rootCard, "1 of 2 approvals: <@"+approver+">")
	if u, _ := h.mb.UserByID(root.ID); !u.Active {
		t.Fatal("the admin was disabled after one approval")
	}
	h.click(approver2, rootCard, "mb_approve")
	h.thread(rootCard, "root@example.com: disabled")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 2 {
		t.Errorf("DELETE calls = %d, want 2 (one per request)", n)
	}
}

// TestExpiry: a request nobody decides is reminded twice and expired once, within 5 s of its deadline, by
// exactly one replica; a click that arrives afterwards is refused.
func TestExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		replicas int
		postgres bool
	}{
		{"one replica on SQLite", 1, false},
		{"two replicas on Postgres", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The minimum REQUEST_TTL: reminders at 5s (half-life) and 9s (REMINDER_BEFORE_EXPIRY, capped at
			// TTL/10), expiry at 10s.
			const ttl = 10 * time.Second
			env := map[string]string{"REQUEST_TTL": ttl.String()}
			if tt.postgres {
				env["DATABASE_URL"] = postgresDatabaseURL(t)
			}
			h := newHarness(t, env)
			h.addJane()
			h.startReplicas(tt.replicas)
			st := h.openStore()
			start := time.Now()
			h.command(requester, "disable jane@example.com Left the company")
			card := h.card("jane@example.com")
			deadline := h.requestOf(st, card).ExpiresAt
			if deadline.Before(start) || deadline.After(time.Now().Add(ttl)) {
				t.Fatalf("expires at %s, want about %s after the command", deadline, ttl)
			}
			// Park the card update that expiry sends, so the buttons are still there for a late click.
			release := h.slack.Hold("chat.update")
			defer release()

			ctx, cancel := contextUntil(deadline.Add(5 * time.Second))
			defer cancel()
			if err := h.slack.WaitHeld(ctx, "chat.update", 1); err != nil {
				t.Fatalf("the card was not updated within 5s of the deadline: %v\nmessages: %v", err, texts(h.slack.Messages()))
			}
			if now := time.Now(); now.Before(deadline) {
				t.Fatalf("expired at %s, before its deadline %s", now, deadline)
			}
			h.click(approver, card, "mb_approve")
			h.ephemeral(approver, "expired")
			release()

			expired := h.cardState(card, "Expired")
			if expired.HasAction("mb_deny") || expired.HasAction("mb_cancel") {
				t.Error("the expired card still has buttons")
			}
			h.thread(card, "expired")
			h.audit("expired", "jane@example.com")
			h.drained(st)

			if n := h.inThread(card, "expired without a decision"); n != 1 {
				t.Errorf("%d expiry replies, want 1", n)
			}
			if n := h.audits("expired"); n != 1 {
				t.Errorf("%d audit lines expired, want 1", n)
			}
			reminders := h.count(func(m slacktest.Message) bool {
				return m.ThreadTS == card.TS && strings.Contains(m.Text, "reminder")
			})
			if reminders != 2 {
				t.Errorf("%d reminders, want 2 (half-life, then shortly before expiry)\nmessages: %v", reminders, texts(h.slack.Messages()))
			}
			for _, m := range h.slack.Messages() {
				if m.ThreadTS == card.TS && strings.Contains(m.Text, "reminder") && !strings.Contains(m.Text, "<!subteam^"+approverGroup+">") {
					t.Errorf("a reminder does not mention the approver group: %s", m.Text)
				}
			}
			if n := h.mb.Count("DELETE", ""); n != 0 {
				t.Errorf("DELETE calls = %d on an expired request, want 0", n)
			}
			if r := h.requestOf(st, card); r.State != approval.Expired {
				t.Errorf("request is %s, want expired", r.State)
			}
		})
	}
}

// TestCancelByRequester: the requester's "Cancel request" button withdraws a pending request; nobody else's.
func TestCancelByRequester(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addJane()
	h.start()
	st := h.openStore()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")

	h.click(approver, card, "mb_cancel")
	h.ephemeral(approver, "Only the person who made the request can cancel it")
	if cur, _ := h.slack.Message(card.Channel, card.TS); !cur.HasAction("mb_approve") {
		t.Fatal("someone else's cancel removed the buttons")
	}

	h.click(requester, card, "mb_cancel")
	h.cardState(card, "Cancelled")
	h.thread(card, "Cancelled by <@"+requester+">")
	h.audit("cancelled", "jane@example.com")
	h.drained(st)
	if r := h.requestOf(st, card); r.State != approval.Cancelled || r.CancelledBy != requester {
		t.Errorf("request is %s cancelled by %q, want cancelled by %s", r.State, r.CancelledBy, requester)
	}
	if n := h.mb.Count("DELETE", ""); n != 0 {
		t.Errorf("DELETE calls = %d, want 0", n)
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Error("jane was disabled")
	}
}
