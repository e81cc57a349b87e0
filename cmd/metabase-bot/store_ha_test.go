package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Helpers of the multi-replica and crash tests (replicas_test.go, crash_test.go).

// postgresDatabaseURL returns a DATABASE_URL on a fresh schema of TEST_DATABASE_URL, dropped when the test
// ends, or skips the test when TEST_DATABASE_URL is unset.
func postgresDatabaseURL(t *testing.T) string {
	t.Helper()
	return storetest.PostgresURL(t, "e2e_")
}

// openStore opens a handle of its own on the bots' database, for assertions on the durable state.
func (h *harness) openStore() *store.Store {
	h.t.Helper()
	st, err := store.Open(h.ctx(), h.env["DATABASE_URL"])
	if err != nil {
		h.t.Fatalf("open the bots' store: %v", err)
	}
	h.t.Cleanup(func() { st.Close() })
	return st
}

// eventually polls cond until it holds or the step's context ends. Used only for conditions no fake can
// signal (the database, the log); everything observable through a fake is waited for on the fake.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	ctx := h.ctx()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			h.t.Fatalf("timed out waiting for %s\nmessages: %v\nlogs:\n%s", what, texts(h.slack.Messages()), h.logs.String())
		case <-tick.C:
		}
	}
}

// drained waits until every Slack message the bots owe is delivered (the outbox is empty), so counts taken
// afterwards are final.
func (h *harness) drained(st *store.Store) {
	h.t.Helper()
	h.eventually("the outbox to drain", func() bool {
		n, err := st.PendingOutbox(h.ctx())
		return err == nil && n == 0
	})
}

var requestIDPattern = regexp.MustCompile(`MB-[2-9A-Z]{8}`)

// requestOf returns the stored request a card shows.
func (h *harness) requestOf(st *store.Store, card slacktest.Message) approval.Request {
	h.t.Helper()
	id := requestIDPattern.FindString(card.AllText())
	if id == "" {
		h.t.Fatalf("no request id on the card:\n%s", card.AllText())
	}
	r, err := st.Get(h.ctx(), id)
	if err != nil {
		h.t.Fatalf("read request %s: %v", id, err)
	}
	return r
}

// inThread counts the replies in card's thread containing text.
func (h *harness) inThread(card slacktest.Message, text string) int {
	return h.count(func(m slacktest.Message) bool { return m.ThreadTS == card.TS && strings.Contains(m.AllText(), text) })
}

// audits counts the audit lines for event ("*executed*" etc.).
func (h *harness) audits(event string) int {
	return h.count(func(m slacktest.Message) bool {
		return m.Channel == auditChannel && strings.Contains(m.Text, "*"+event+"*")
	})
}

// cards counts approval cards (the top-level messages of requests) naming text.
func (h *harness) cards(text string) int {
	return h.count(func(m slacktest.Message) bool {
		return m.Channel == opsChannel && m.ThreadTS == "" && requestIDPattern.MatchString(m.AllText()) && strings.Contains(m.AllText(), text)
	})
}

// clickOn injects a click without waiting for the ack (for racing clicks).
func (h *harness) clickOn(user string, m slacktest.Message, action string) string {
	h.t.Helper()
	id, err := h.slack.Click(h.ctx(), slacktest.Click{UserID: user, ChannelID: m.Channel, MessageTS: m.TS, ActionID: action})
	if err != nil {
		h.t.Fatalf("click %s: %v", action, err)
	}
	return id
}

// cardWithButtons waits until the card (same ts) shows text and still has its decision buttons.
func (h *harness) cardWithButtons(card slacktest.Message, text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.TS == card.TS && m.HasAction("mb_approve") && m.HasAction("mb_deny") && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		cur, _ := h.slack.Message(card.Channel, card.TS)
		h.t.Fatalf("card never showed %q with its buttons: %v\ncard now: %s\nlogs:\n%s", text, err, cur.AllText(), h.logs.String())
	}
	return m
}

// deny clicks Deny and submits the reason form.
func (h *harness) deny(user string, card slacktest.Message, reason string) {
	h.t.Helper()
	h.click(user, card, "mb_deny")
	view, err := h.slack.WaitView(h.ctx(), func(v slacktest.View) bool { return v.CallbackID == "mb_deny_form" && v.UserID == user })
	if err != nil {
		h.t.Fatalf("deny form not opened: %v", err)
	}
	if _, err := h.slack.SubmitView(h.ctx(), slacktest.ViewSubmission{UserID: user, ViewID: view.ID,
		Values: map[string]map[string]slacktest.InputValue{"mb_form_reason": {"reason": {Value: reason}}}}); err != nil {
		h.t.Fatal(err)
	}
}

// fakeAdmin is a Metabase admin the bot may disable (the bot's own account stays the other admin).
func fakeAdmin() metabasetest.User {
	return metabasetest.User{Email: "root@example.com", FirstName: "Root", LastName: "Admin", Active: true, Superuser: true}
}

// contextUntil is a context that ends at deadline (a bound the bot must meet).
func contextUntil(deadline time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), deadline)
}

// active reports whether the fake Metabase user with this email is active.
func (h *harness) active(email string) bool {
	h.t.Helper()
	return h.mustUser(email).Active
}

// anyCard waits for the card of a request naming text, whatever its state (h.card wants its buttons).
func (h *harness) anyCard(text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == opsChannel && m.ThreadTS == "" && requestIDPattern.MatchString(m.AllText()) && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		h.t.Fatalf("no card naming %q: %v\nmessages: %v", text, err, texts(h.slack.Messages()))
	}
	return m
}
