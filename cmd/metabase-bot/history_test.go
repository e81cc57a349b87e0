package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestHistory: `history <user>` lists, privately, every request that named the user, newest
// first, with who asked, who approved or denied, when it ran and the result; it follows the
// requester rules, so someone outside REQUESTER_GROUP sees nothing of it.
func TestHistory(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUESTER_GROUP": "SREQUESTERS"})
	h.slack.SetUserGroup("SREQUESTERS", requester)
	jane := h.addJane()
	h.start()

	h.reply(requester, "history jane@example.com", "No request has named this user")

	h.command(requester, "disable jane@example.com Left the company")
	first := h.card("jane@example.com")
	deniedID := requestID(t, first)
	h.deny(approver, first, "still needed for the Q3 close")
	h.cardState(first, "denied")

	h.command(requester, "disable jane@example.com Left the company, confirmed by HR")
	second := h.card("confirmed by HR")
	executedID := requestID(t, second)
	h.click(approver2, second, "mb_approve")
	h.thread(second, "jane@example.com: disabled")

	got := h.reply(requester, "history "+strconv.Itoa(jane.ID), "History of Jane Doe").Text
	lines := strings.Split(got, "\n")
	if len(lines) != 4 || lines[1] != "2 requests named this user, newest first:" {
		t.Fatalf("history of jane:\n%s", got)
	}
	for _, c := range []struct {
		line  string
		wants []string
	}{
		{lines[2], []string{"`" + executedID + "`", "*disable*", "disabled", "asked by <@" + requester + ">", "approved by <@" + approver2 + ">",
			"ran <!date^", "result: disabled"}},
		{lines[3], []string{"`" + deniedID + "`", "*disable*", "denied", "asked by <@" + requester + ">",
			"denied by <@" + approver + ">: still needed for the Q3 close", "not run"}},
	} {
		for _, w := range c.wants {
			if !strings.Contains(c.line, w) {
				t.Errorf("history line lacks %q:\n%s", w, c.line)
			}
		}
	}
	if !strings.Contains(lines[0], "jane@example.com") || !strings.Contains(lines[0], "now deactivated") {
		t.Errorf("history header: %s", lines[0])
	}

	h.reply(outsider, "history jane@example.com", "Only members of <!subteam^SREQUESTERS>")
	for _, m := range h.slack.Ephemerals() {
		if m.User == outsider && (strings.Contains(m.AllText(), executedID) || strings.Contains(m.AllText(), "History of")) {
			t.Fatalf("an outsider saw jane's history: %s", m.AllText())
		}
	}
	h.reply(requester, "history", "`history` takes exactly one user")
}
