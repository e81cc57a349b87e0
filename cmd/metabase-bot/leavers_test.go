package main

import (
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Leavers, end to end: Slack's user_change events (docs/slack.md#deactivations) and
// `/metabase leavers`, against the fake Slack and the fake Metabase.

// janeSlack is jane's Slack account, the one deactivated in these tests.
const janeSlack = "UJANE"

// deactivationEnv turns deactivation requests on, posted in the ops channel.
func deactivationEnv(extra map[string]string) map[string]string {
	env := map[string]string{"SLACK_DEACTIVATION_CHANNEL": opsChannel}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// changeUser makes a change in Slack and waits until a bot acked its user_change event, which it
// does only once the change is handled (recorded, and its request opened or found unneeded).
func (h *harness) changeUser(u slacktest.User) string {
	h.t.Helper()
	ctx := h.ctx()
	id, err := h.slack.ChangeUser(ctx, u)
	if err != nil || id == "" {
		h.t.Fatalf("ChangeUser sent %q: %v", id, err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		h.t.Fatalf("user_change was not acked: %v\nlogs:\n%s", err, h.logs.String())
	}
	return id
}

// TestSlackDeactivationOpensOneRequest: a deactivation and its redelivery to the other replica open
// exactly one request, posted in the channel with the usual approval, asked by "Slack
// deactivation". Once it is denied, an edit of the deactivated account (Slack sends user_change
// with deleted true again) opens nothing; a reactivation followed by a new deactivation opens a
// request of its own.
func TestSlackDeactivationOpensOneRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, deactivationEnv(map[string]string{"DATABASE_URL": postgresDatabaseURL(t)}))
	jane := h.addJane()
	account := slacktest.User{ID: janeSlack, Name: "jane", Email: "Jane@example.com"}
	h.slack.AddUser(account)
	h.startReplicas(2)
	st := h.openStore()

	deleted := account
	deleted.Deleted = true
	id := h.changeUser(deleted)
	// Redeliver goes to the next socket round robin: the other replica.
	if err := h.slack.Redeliver(h.ctx(), id); err != nil {
		t.Fatal(err)
	}
	h.eventually("the redelivery to be acked", func() bool { return len(h.slack.Acks(id)) == 2 })
	card := h.card("jane@example.com")
	text := card.AllText()
	for _, want := range []string{"Slack deactivation", "Slack account deactivated on " + time.Now().UTC().Format("2006-01-02")} {
		if !strings.Contains(text, want) {
			t.Errorf("the card lacks %q:\n%s", want, text)
		}
	}
	h.drained(st)
	if n := h.cards("jane@example.com"); n != 1 {
		t.Fatalf("%d cards, want 1", n)
	}
	if rs, err := st.List(h.ctx()); err != nil || len(rs) != 1 || rs[0].Requester != access.RequesterChatDeactivation {
		t.Fatalf("stored requests %+v (%v), want one asked by the deactivation", rs, err)
	}
	if n := h.audits("requested"); n != 1 {
		t.Errorf("%d audit lines requested, want 1", n)
	}

	// Denied: jane stays active in Metabase, with no open request.
	h.click(approver, card, "mb_deny")
	view, err := h.slack.WaitView(h.ctx(), func(v slacktest.View) bool { return v.CallbackID == "mb_deny_form" })
	if err != nil {
		t.Fatal(err)
	}
	h.submit(approver, view, formValues{"mb_form_reason": {"reason": {Value: "Contractor, keeps access"}}})
	h.cardState(card, "Denied")
	edited := deleted
	edited.RealName = "Jane (left)"
	h.changeUser(edited)
	h.drained(st)
	if rs, err := st.List(h.ctx()); err != nil || len(rs) != 1 {
		t.Fatalf("%d stored requests (%v) after an edit of the deactivated account, want still 1", len(rs), err)
	}

	// Reactivated, then deactivated again: a new deactivation, a new request.
	h.changeUser(account)
	h.changeUser(deleted)
	h.eventually("a second card", func() bool { return h.cards("jane@example.com") == 2 })
	second, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == opsChannel && m.TS != card.TS && m.HasAction("mb_approve")
	})
	if err != nil {
		t.Fatal(err)
	}
	h.click(approver, second, "mb_approve")
	h.thread(second, "jane@example.com: disabled")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active")
	}
}

// TestSlackUserChangeOpensNothing: only a change to deleted of someone with an active Metabase
// account opens a request; every event is still acked, so Slack does not send it again.
func TestSlackUserChangeOpensNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		user slacktest.User
		log  string
	}{
		{"a profile edit", deactivationEnv(nil), slacktest.User{ID: janeSlack, Name: "jane", RealName: "Jane D.", Email: "jane@example.com"}, ""},
		{"a deactivated person with no Metabase account", deactivationEnv(nil),
			slacktest.User{ID: "UNOBODY", Name: "nobody", Email: "nobody@example.com", Deleted: true}, "has no active Metabase account"},
		{"deactivations turned off", nil, slacktest.User{ID: janeSlack, Name: "jane", Email: "jane@example.com", Deleted: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.env)
			h.addJane()
			h.slack.AddUser(slacktest.User{ID: janeSlack, Name: "jane", Email: "jane@example.com"})
			h.start()
			st := h.openStore()
			h.changeUser(tt.user)
			if tt.log != "" {
				// The handler logs after it acks: wait for the line rather than read it once.
				h.waitLog(h.ctx(), tt.log)
			}
			h.drained(st)
			if rs, err := st.List(h.ctx()); err != nil || len(rs) != 0 {
				t.Errorf("%d requests (%v), want none", len(rs), err)
			}
			if n := len(h.slack.Messages()); n != 0 {
				t.Errorf("%d messages posted, want none: %v", n, texts(h.slack.Messages()))
			}
		})
	}
}

// TestLeaversReportAndRequest: `/metabase leavers` lists exactly the people deactivated in Slack
// who are still active in Metabase, privately, and its button turns them into one request.
func TestLeaversReportAndRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	add := func(email string, active bool) metabasetest.User {
		return h.mb.AddUser(metabasetest.User{Email: email, FirstName: strings.Split(email, "@")[0], LastName: "X", Active: active})
	}
	jane, maxU := h.addJane(), add("max@example.com", true)
	add("still@example.com", true)     // active in Slack
	add("gone@example.com", false)     // deactivated in both
	add("protected@example.com", true) // never a target
	h.env["PROTECTED_USERS"] = "protected@example.com"
	for _, u := range []slacktest.User{
		{ID: janeSlack, Name: "jane", Email: "JANE@example.com", Deleted: true},
		{ID: "UMAX", Name: "max", Email: "max@example.com", Deleted: true},
		{ID: "USTILL", Name: "still", Email: "still@example.com"},
		{ID: "UGONE", Name: "gone", Email: "gone@example.com", Deleted: true},
		{ID: "UPROT", Name: "prot", Email: "protected@example.com", Deleted: true},
		{ID: "UNOMB", Name: "nomb", Email: "nomb@example.com", Deleted: true},
	} {
		h.slack.AddUser(u)
	}
	h.start()

	h.command(requester, "leavers")
	h.ephemeral(requester, "Reading Slack's member list")
	report := h.ephemeral(requester, "still active in Metabase")
	text := report.AllText()
	for _, want := range []string{"jane@example.com", "max@example.com", "*2 accounts*", "Request disable of these 2 users"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"still@", "gone@", "protected@", "nomb@"} {
		if strings.Contains(text, not) {
			t.Errorf("the report lists %s:\n%s", not, text)
		}
	}
	for _, m := range h.slack.Messages() {
		if strings.Contains(m.AllText(), "jane@example.com") {
			t.Errorf("the report was posted for everyone to see: %s", m.AllText())
		}
	}

	ctx := h.ctx()
	if _, err := h.slack.Click(ctx, slacktest.Click{UserID: requester, ChannelID: report.Channel, MessageTS: report.TS,
		ActionID: "mb_leavers_request"}); err != nil {
		t.Fatal(err)
	}
	view, err := h.slack.WaitView(ctx, func(v slacktest.View) bool { return v.CallbackID == "mb_leavers_form" })
	if err != nil {
		t.Fatalf("the leavers form was not opened: %v", err)
	}
	if errs := h.submit(requester, view, formValues{"mb_form_reason": {"reason": {Value: "Leavers sweep"}}}); errs != nil {
		t.Fatalf("field errors %v", errs)
	}
	card := h.card("Leavers sweep")
	if !strings.Contains(card.AllText(), "2 users") || !strings.Contains(card.AllText(), "<@"+requester+">") {
		t.Errorf("the card does not ask, for the requester, about 2 users:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "disabled 2, skipped 0, failed 0")
	for _, u := range []metabasetest.User{jane, maxU} {
		if got, _ := h.mb.UserByID(u.ID); got.Active {
			t.Errorf("%s is still active", u.Email)
		}
	}
	if n := h.mb.Count("DELETE", ""); n != 2 {
		t.Errorf("%d DELETE calls, want 2", n)
	}
}

// TestLeaversFollowsRequesterRules: who may run `leavers` follows the rules of `inactive`, checked
// before Slack's member list is read.
func TestLeaversFollowsRequesterRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUESTER_GROUP": "SREQ"})
	h.slack.SetUserGroup("SREQ", requester)
	h.start()
	h.command(outsider, "leavers")
	h.ephemeral(outsider, "SREQ")
	if n := h.slack.Calls("users.list"); n != 0 {
		t.Errorf("users.list was read %d times for someone who may not see the report", n)
	}
}
