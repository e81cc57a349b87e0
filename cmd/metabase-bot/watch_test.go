package main

import (
	"strconv"
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

	// Deactivated in Metabase and reactivated again: a new reactivation, reported once more.
	h.deactivateBehindTheBot(jane.ID)
	h.moreChecks(st, 2)
	h.mb.ReactivateBySSO(jane.ID)
	h.eventually("the second report", func() bool { n, a := h.reports(card, "reactivated outside the bot"); return n == 2 && a == 2 })
	h.moreChecks(st, 3)
	if n, a := h.reports(card, "reactivated outside the bot"); n != 2 || a != 2 {
		t.Fatalf("two reactivations reported %d times in the thread and %d in the audit channel, want twice each", n, a)
	}
}

// janeWithSSO is the usual target (addJane), signing in through source.
func janeWithSSO(source string) metabasetest.User {
	return metabasetest.User{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true, SSOSource: source,
		DateJoined: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
}

// reactivated disables jane through the bot, brings her back behind its back, and waits for
// the report in the thread; it returns the card and the report.
func (h *harness) reactivated(id int) (card, report slacktest.Message) {
	h.t.Helper()
	card = h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
	h.mb.ReactivateBySSO(id)
	return card, h.thread(card, "reactivated outside the bot")
}

// TestWatchKeepActive: only an approver may keep a reactivated user active; it is audited as
// `reactivation accepted by @x`, the watch stops reporting the user, and the report's other
// button no longer applies.
func TestWatchKeepActive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval})
	jane := h.addJane()
	h.start()
	st := h.openStore()
	card, report := h.reactivated(jane.ID)

	h.click(outsider, report, "mb_keep_active")
	h.ephemeral(outsider, "Only approvers")
	h.click(approver, report, "mb_keep_active")
	h.thread(card, "reactivation accepted")
	h.audit("reactivation accepted", "reactivation accepted by <@"+approver+">", "jane@example.com")

	// Deactivated and reactivated again in Metabase: accepted, so not reported again.
	h.deactivateBehindTheBot(jane.ID)
	h.mb.ReactivateBySSO(jane.ID)
	h.moreChecks(st, 3)
	if n, a := h.reports(card, "reactivated outside the bot"); n != 1 || a != 1 {
		t.Fatalf("after Keep active: %d reports in the thread and %d in the audit channel, want the first one only", n, a)
	}
	h.click(approver, report, "mb_disable_again")
	h.ephemeral(approver, "no longer applies")
	if n := h.count(func(m slacktest.Message) bool { return m.Channel == opsChannel && m.ThreadTS == "" }); n != 1 {
		t.Fatalf("%d cards, want only the original: Disable again after Keep active opened a request", n)
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Fatal("jane was disabled although an approver kept her active")
	}
}

// TestWatchDisableAgain: an approver's Disable again opens a normal request for the user in the
// original channel, naming the original request in its reason, which takes the usual approval;
// others are refused. Once it ran, a new reactivation is a new report.
func TestWatchDisableAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval})
	jane := h.addJane()
	h.start()
	card, report := h.reactivated(jane.ID)
	orig := requestIDPattern.FindString(card.AllText())

	h.click(outsider, report, "mb_disable_again")
	h.ephemeral(outsider, "Only approvers")
	h.click(approver, report, "mb_disable_again")
	again, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == opsChannel && m.ThreadTS == "" && m.TS != card.TS && m.HasAction("mb_approve")
	})
	if err != nil {
		t.Fatalf("Disable again opened no request: %v\nmessages: %v", err, texts(h.slack.Messages()))
	}
	for _, want := range []string{"jane@example.com", "reactivated outside the bot after " + orig, "Left the company"} {
		if !strings.Contains(again.AllText(), want) {
			t.Errorf("the new card lacks %q:\n%s", want, again.AllText())
		}
	}
	againID := requestIDPattern.FindString(again.AllText())
	h.thread(card, "opened request "+againID)
	// A second click while that request is open opens no other.
	h.click(approver2, report, "mb_disable_again")
	h.ephemeral(approver2, againID)
	if n := h.count(func(m slacktest.Message) bool { return m.Channel == opsChannel && m.ThreadTS == "" }); n != 2 {
		t.Fatalf("%d cards after a second Disable again, want the original and one new request", n)
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Fatal("jane was disabled before the new request was approved")
	}
	// The usual approval: the requester of the new request is the approver who clicked, so
	// another approver decides.
	h.click(approver2, again, "mb_approve")
	h.thread(again, "jane@example.com: disabled")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Fatal("jane is active after the approved Disable again request")
	}
	h.mb.ReactivateBySSO(jane.ID)
	h.thread(again, "reactivated outside the bot")
}

// TestWatchNeverReportsTheBotsOwnEnable: a user the bot enabled (the watch running while the
// enable's reactivation has taken effect and its result is not recorded yet), or brought back
// at a leave's end, is never reported.
func TestWatchNeverReportsTheBotsOwnEnable(t *testing.T) {
	t.Parallel()
	t.Run("enable", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval})
		jane := h.addJane()
		h.start()
		st := h.openStore()
		card := h.disableApproved("disable jane@example.com Sabbatical", "jane@example.com")
		release := h.mb.HoldReply("PUT", "/api/user/:id/reactivate")
		defer release()
		h.command(requester, "enable jane@example.com back")
		enable := h.card("enable")
		h.click(approver, enable, "mb_approve")
		if err := h.mb.WaitForRequests(h.ctx(), "PUT", "/api/user/"+strconv.Itoa(jane.ID)+"/reactivate", 1); err != nil {
			t.Fatal(err)
		}
		if u, _ := h.mb.UserByID(jane.ID); !u.Active {
			t.Fatal("the held reactivation has not taken effect")
		}
		// Checks while the enable's result is not recorded.
		h.moreChecks(st, 3)
		release()
		h.thread(enable, "jane@example.com: enabled")
		h.moreChecks(st, 3)
		if n, a := h.reports(card, "reactivated outside the bot"); n+a != 0 {
			t.Fatalf("the bot's own enable was reported: %d thread, %d audit", n, a)
		}
	})
	t.Run("return", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval})
		h.addAdminJane()
		h.start()
		st := h.openStore()
		card, _, _ := h.leave("jane@example.com", 3*time.Second)
		h.thread(card, "jane@example.com: enabled")
		h.moreChecks(st, 3)
		if n, a := h.reports(card, "reactivated outside the bot"); n+a != 0 {
			t.Fatalf("the leave's return was reported: %d thread, %d audit", n, a)
		}
	})
}

// TestWatchDisablesAgainOnce: with REACTIVATION_POLICY=disable and two replicas watching, a
// reactivated admin on leave is disabled again at once, once, and told; the leave's return
// still runs on its date, and does not restore admin from the re-disable.
func TestWatchDisablesAgainOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval, "REACTIVATION_POLICY": "disable",
		"DATABASE_URL": postgresDatabaseURL(t)})
	jane := h.addAdminJane()
	h.mb.AddUser(metabasetest.User{Email: "boss@example.com", FirstName: "Boss", Active: true, Superuser: true})
	h.startReplicas(2)
	st := h.openStore()
	// The return is far enough out for the reactivation, the re-disable and its checks to come
	// first on a loaded machine (at 5 s the return once re-enabled jane before the check of her).
	card, _, at := h.leave("jane@example.com", 12*time.Second)
	deletes := h.exactCount("DELETE", "/api/user/"+strconv.Itoa(jane.ID))

	h.mb.ReactivateBySSO(jane.ID)
	report := h.thread(card, "disabled them again automatically")
	if !strings.Contains(report.AllText(), "Admin now: yes") || report.HasAction("mb_keep_active") {
		t.Errorf("the report should say admin now and offer no Keep active:\n%s", report.AllText())
	}
	h.audit("reactivated outside the bot", "jane@example.com", "disabled again automatically")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Fatal("jane is active after the automatic re-disable")
	}
	h.moreChecks(st, 4)
	if n := h.exactCount("DELETE", "/api/user/"+strconv.Itoa(jane.ID)) - deletes; n != 1 {
		t.Fatalf("%d DELETEs of jane after her reactivation, want 1", n)
	}
	if n, a := h.reports(card, "reactivated outside the bot"); n != 1 || a != 1 {
		t.Fatalf("%d reports in the thread and %d in the audit channel, want one each", n, a)
	}

	reply := h.thread(card, "jane@example.com: enabled")
	if time.Now().Before(at) {
		t.Errorf("returned before the return date %s", at)
	}
	if !strings.Contains(reply.AllText(), "admin not restored") {
		t.Errorf("the return does not say admin was not restored:\n%s", reply.AllText())
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active || u.Superuser {
		t.Fatalf("after the return: active=%v superuser=%v, want active without admin", u.Active, u.Superuser)
	}
	h.moreChecks(st, 3)
	if n, _ := h.reports(card, "reactivated outside the bot"); n != 1 {
		t.Fatalf("the return was reported as a reactivation (%d reports)", n)
	}
}

// TestWatchCouldNotDisableAgain: with REACTIVATION_POLICY=disable, a re-disable a check refuses
// (here: the account was made protected after the bot disabled it) is not made; the thread and
// the audit channel say `could not disable again: <reason>`, and Disable again is offered.
func TestWatchCouldNotDisableAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval, "REACTIVATION_POLICY": "disable"})
	jane := h.addJane()
	first := h.start()
	card := h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
	first.stop(t)
	h.env["PROTECTED_USERS"] = "jane@example.com"
	h.start()
	h.mb.ReactivateBySSO(jane.ID)
	report := h.thread(card, "could not disable them again")
	if !report.HasAction("mb_disable_again") || report.HasAction("mb_keep_active") {
		t.Errorf("the report should offer Disable again only:\n%s", report.AllText())
	}
	h.audit("reactivated outside the bot", "could not disable again: protected")
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Fatal("a protected account was disabled again")
	}
}

// TestWatchDryRunNeverDisablesAgain: a DRY_RUN process with REACTIVATION_POLICY=disable reports
// a user a real disable left inactive, and does not disable them again.
func TestWatchDryRunNeverDisablesAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval, "REACTIVATION_POLICY": "disable"})
	jane := h.addJane()
	first := h.start()
	card := h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
	first.stop(t)
	h.env["DRY_RUN"] = "true"
	h.start()
	deletes := h.exactCount("DELETE", "/api/user/"+strconv.Itoa(jane.ID))
	h.mb.ReactivateBySSO(jane.ID)
	report := h.thread(card, "reactivated outside the bot")
	if strings.Contains(report.AllText(), "disabled them again") || !report.HasAction("mb_disable_again") {
		t.Errorf("a dry-run process should report with Disable again, not disable again:\n%s", report.AllText())
	}
	if n := h.exactCount("DELETE", "/api/user/"+strconv.Itoa(jane.ID)); n != deletes {
		t.Fatalf("a dry-run process called DELETE %d times", n-deletes)
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Fatal("a dry-run process disabled jane again")
	}
}

// TestWatchIntervalFloor: WATCH_INTERVAL is 0 (off) or at least a second.
func TestWatchIntervalFloor(t *testing.T) {
	t.Parallel()
	for d, ok := range map[time.Duration]bool{0: true, time.Second: true, 5 * time.Minute: true, 500 * time.Millisecond: false, -time.Second: false} {
		if got := checkWatchInterval(d, watchIntervalFloor) == ""; got != ok {
			t.Errorf("WATCH_INTERVAL=%s accepted=%v, want %v", d, got, ok)
		}
	}
}

// TestWatchEditsPendingCard: a target someone deactivates in Metabase while the request waits is
// named on the pending card within an interval; approving still skips them as already inactive.
func TestWatchEditsPendingCard(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"WATCH_INTERVAL": testWatchInterval})
	jane := h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	h.deactivateBehindTheBot(jane.ID)
	edited, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.TS == card.TS && m.HasAction("mb_approve") && strings.Contains(m.AllText(), "disabled in Metabase by someone else")
	})
	if err != nil {
		cur, _ := h.slack.Message(card.Channel, card.TS)
		t.Fatalf("the pending card never said jane was disabled elsewhere: %v\ncard: %s", err, cur.AllText())
	}
	h.click(approver, edited, "mb_approve")
	h.thread(card, "skipped: already inactive")
}
