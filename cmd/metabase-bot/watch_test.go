package main

import (
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// The end-to-end tests watch every 50 ms; people may not go below watchIntervalFloor.
func init() { minWatchInterval = time.Millisecond }

const testWatchInterval = "50ms"

// watchChecks counts the watch's listings (GET /api/user?status=active) so far.
func (h *harness) watchChecks() int {
	n := 0
	for _, r := range h.mb.Requests() {
		if r.Method == "GET" && r.Path == "/api/user" && strings.Contains(r.RawQuery, "status=active") {
			n++
		}
	}
	return n
}

// moreChecks waits until the watch has listed n more times, so whatever those checks would
// report has been recorded; then the outbox is drained, so it has been posted too.
func (h *harness) moreChecks(st *store.Store, n int) {
	h.t.Helper()
	want := h.watchChecks() + n
	h.eventually("more watch checks", func() bool { return h.watchChecks() >= want })
	h.drained(st)
}

// reports counts the thread replies under card and the audit lines that contain text.
func (h *harness) reports(card slacktest.Message, text string) (thread, audit int) {
	thread = h.count(func(m slacktest.Message) bool { return m.ThreadTS == card.TS && strings.Contains(m.AllText(), text) })
	audit = h.count(func(m slacktest.Message) bool { return m.Channel == auditChannel && strings.Contains(m.Text, text) })
	return thread, audit
}

// TestWatchReportsReactivationOnce: a user the bot disabled and an SSO login brought back is
// reported once, in the request's thread and the audit channel, within one interval, naming the
// approvers, the user, whether they are an admin and the likely way back.
func TestWatchReportsReactivationOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval})
	jane := h.mb.AddUser(janeWithSSO("jwt"))
	h.start()
	st := h.openStore()
	card := h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
	h.moreChecks(st, 2)
	if n, a := h.reports(card, "reactivated outside the bot"); n+a != 0 {
		t.Fatalf("reported a user the bot disabled and nobody reactivated: %d thread, %d audit", n, a)
	}

	h.mb.ReactivateBySSO(jane.ID)
	report := h.thread(card, "reactivated outside the bot")
	for _, want := range []string{"jane@example.com", "<!subteam^" + approverGroup, "Admin now: no", "jwt sign-in"} {
		if !strings.Contains(report.AllText(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.AllText())
		}
	}
	if !report.HasAction("mb_disable_again") || !report.HasAction("mb_keep_active") {
		t.Errorf("report lacks Disable again / Keep active:\n%s", report.AllText())
	}
	h.audit("reactivated outside the bot", "jane@example.com", "admin now: no")

	h.moreChecks(st, 3)
	if n, a := h.reports(card, "reactivated outside the bot"); n != 1 || a != 1 {
		t.Fatalf("reactivation reported %d times in the thread and %d in the audit channel, want once each", n, a)
	}
	// Status shows the last check and the finding.
	h.command(requester, "status jane@example.com")
	h.ephemeral(requester, "Found reactivated outside the bot")
	h.ephemeral(requester, "Reactivation watch: last checked")
}

// janeWithSSO is the usual target (addJane), signing in through source.
func janeWithSSO(source string) metabasetest.User {
	return metabasetest.User{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true, SSOSource: source,
		DateJoined: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
}
