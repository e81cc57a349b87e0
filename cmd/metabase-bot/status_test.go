package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	login := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	jane := h.mb.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true,
		Superuser: true, GroupIDs: []int{5}, SSOSource: "saml", LastLogin: &login})
	gone := h.mb.AddUser(metabasetest.User{Email: "gone@example.com", FirstName: "Gone", Active: false})
	h.start()

	st := h.reply(requester, "status jane@example.com", "Jane Doe").AllText()
	for _, want := range []string{"jane@example.com", "Metabase id " + strconv.Itoa(jane.ID), "State: *active*", "Admin: yes",
		"Last login: <!date^" + strconv.FormatInt(login.Unix(), 10), "2025-03-04", "SSO: saml", "Groups: 1, 2, 5"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if strings.Contains(st, "Open request") || strings.Contains(st, "Scheduled return") {
		t.Errorf("status shows a request that does not exist:\n%s", st)
	}

	// By id, and a deactivated user who never logged in.
	st = h.reply(requester, "status "+strconv.Itoa(gone.ID), "gone@example.com").AllText()
	for _, want := range []string{"State: *deactivated*", "Admin: no", "Last login: never", "SSO: none"} {
		if !strings.Contains(st, want) {
			t.Errorf("status of gone lacks %q:\n%s", want, st)
		}
	}

	// A pending request shows up, with its id.
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	id := requestID(t, card)
	st = h.reply(approver, "status jane@example.com", "Open request").AllText()
	if !strings.Contains(st, id) || !strings.Contains(st, "waiting for approval") {
		t.Errorf("status does not show pending request %s:\n%s", id, st)
	}
	h.reply(requester, "status nobody@example.com", "No Metabase user has the email")
	if n := h.mb.Count("DELETE", ""); n != 0 {
		t.Errorf("status made %d DELETE calls", n)
	}
}

// requestID reads the MB-… id from a card's header.
func requestID(t *testing.T, card slacktest.Message) string {
	t.Helper()
	for _, w := range strings.Fields(card.Text) {
		if strings.HasPrefix(w, "MB-") {
			return w
		}
	}
	t.Fatalf("no request id in %q", card.Text)
	return ""
}

func TestSlackMentionTargets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addJane()
	h.slack.AddUser(slacktest.User{ID: "UJANE", Name: "jane", RealName: "Jane Doe", Email: "Jane@Example.com"})
	h.slack.AddUser(slacktest.User{ID: "UNOMAIL", Name: "nomail", RealName: "No Mail"})
	h.slack.AddUser(slacktest.User{ID: "UOTHER", Name: "other", RealName: "Other", Email: "other@example.com"})
	h.start()

	h.reply(requester, "disable @nomail Left", "<@UNOMAIL> has no email I can see in Slack")
	h.reply(requester, "disable @other Left", "other@example.com has no Metabase account")
	// Nobody can type a mention of someone Slack does not know; a forged payload can carry one.
	h.commandRaw(requester, "disable <@UNOBODY> Left")
	h.ephemeral(requester, "<@UNOBODY> is not a Slack user I can see")
	h.reply(requester, "status @jane", "Metabase id "+strconv.Itoa(jane.ID))

	h.command(requester, "disable @jane Left the company")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active")
	}
	if n := h.count(func(m slacktest.Message) bool {
		return m.HasAction("mb_approve") || strings.HasPrefix(m.Text, "Metabase disable")
	}); n != 1 {
		t.Errorf("%d cards, want 1 (the refused mentions create none)", n)
	}
}

func TestStatusFollowsRequesterRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUESTER_GROUP": "SREQUESTERS"})
	h.slack.SetUserGroup("SREQUESTERS", requester)
	h.addJane()
	h.start()
	// Status shows admin rights and groups, so only those who may request may look.
	h.command(outsider, "status jane@example.com")
	h.ephemeral(outsider, "Only members of <!subteam^SREQUESTERS>")
	h.command(requester, "status jane@example.com")
	h.ephemeral(requester, "State: *active*")
	for _, m := range h.slack.Ephemerals() {
		if m.User == outsider && strings.Contains(m.AllText(), "jane@example.com") {
			t.Fatalf("an outsider saw jane's status: %s", m.AllText())
		}
	}
}
