package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// exactCount counts requests with exactly this method and path (Count matches a prefix, and
// /api/user/7 is a prefix of /api/user/7/reactivate and /api/user/70).
func (h *harness) exactCount(method, path string) int {
	n := 0
	for _, r := range h.mb.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// deactivateBehindTheBot deactivates a user directly in Metabase, as an admin would in its UI.
func (h *harness) deactivateBehindTheBot(id int) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.ctx(), "DELETE", h.mb.URL()+"/api/user/"+strconv.Itoa(id), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", metabasetest.AdminAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		h.t.Fatalf("DELETE user %d behind the bot: %d", id, resp.StatusCode)
	}
}

// addAdminJane seeds jane as an admin in groups 1 (All Users), 2 (Administrators) and 5.
func (h *harness) addAdminJane() metabasetest.User {
	return h.mb.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true,
		Superuser: true, GroupIDs: []int{5}, DateJoined: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)})
}

// disableApproved runs a disable command through approval and waits for its outcome reply.
func (h *harness) disableApproved(command, email string) slacktest.Message {
	h.t.Helper()
	h.command(requester, command)
	card := h.card(email)
	h.click(approver, card, "mb_approve")
	h.thread(card, email+": disabled")
	return card
}

// checkRestored checks the user is active again with admin status and groups [1 2 5].
func (h *harness) checkRestored(id int) {
	h.t.Helper()
	u, _ := h.mb.UserByID(id)
	if !u.Active || !u.Superuser {
		h.t.Errorf("after the return: active=%v superuser=%v, want both true", u.Active, u.Superuser)
	}
	if got := u.GroupIDs; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 5 {
		h.t.Errorf("after the return: groups %v, want [1 2 5]", got)
	}
}

// returnTime is an RFC 3339 time d from now: the bot refuses past times, so d is the margin.
func returnTime(d time.Duration) (string, time.Time) {
	at := time.Now().Add(d).UTC().Truncate(time.Second)
	return at.Format(time.RFC3339), at
}

// TestEnableRestoresWhatTheBotRecorded: an enable restores the admin flag the bot recorded, with
// {"is_superuser": true} alone, in both editions: rewriting group memberships fails the whole PUT
// on Pro/Enterprise with advanced permissions, and Metabase keeps non-admin groups anyway.
func TestEnableRestoresWhatTheBotRecorded(t *testing.T) {
	t.Parallel()
	metabaseEditions(t, testEnableRestoresWhatTheBotRecorded)
}

func testEnableRestoresWhatTheBotRecorded(t *testing.T, opts ...metabasetest.Option) {
	h := newHarness(t, nil, opts...)
	jane := h.addAdminJane()
	h.start()
	h.disableApproved("disable jane@example.com Sabbatical", "jane@example.com")
	h.audit("executed", "disable jane@example.com")

	h.command(requester, "enable jane@example.com back")
	card := h.card("enable")
	if !strings.Contains(card.AllText(), "jane@example.com") {
		t.Errorf("enable card does not name jane:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	reply := h.thread(card, "jane@example.com: enabled")
	if !strings.Contains(reply.AllText(), "admin status restored") {
		t.Errorf("the thread does not say admin status was restored: %s", reply.AllText())
	}
	h.audit("executed", "enable jane@example.com")
	base := "/api/user/" + strconv.Itoa(jane.ID)
	if n := h.exactCount("PUT", base+"/reactivate"); n != 1 {
		t.Errorf("reactivate calls = %d, want 1", n)
	}
	if n := h.exactCount("PUT", base); n != 1 {
		t.Errorf("PUT %s calls = %d, want 1", base, n)
	}
	h.checkRestored(jane.ID)
}

func TestEnableActiveUserIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	h.reply(requester, "enable jane@example.com back", "jane@example.com is already active in Metabase")
	// A following valid command's card proves the first created none.
	h.mb.AddUser(metabasetest.User{Email: "gone@example.com", FirstName: "Gone", Active: false})
	h.command(requester, "enable gone@example.com back")
	h.card("gone@example.com")
	if n := h.count(func(m slacktest.Message) bool { return m.HasAction("mb_approve") }); n != 1 {
		t.Fatalf("%d cards, want only the one for gone@example.com", n)
	}
	if n := h.mb.Count("PUT", ""); n != 0 {
		t.Fatalf("PUT calls = %d before any approval", n)
	}
}

// leave disables jane until a return time d ahead and returns the card and the thread reply
// announcing the return.
func (h *harness) leave(email string, d time.Duration) (slacktest.Message, slacktest.Message, time.Time) {
	h.t.Helper()
	until, at := returnTime(d)
	h.command(requester, "disable "+email+" until "+until+" Parental leave")
	card := h.card(email)
	if !strings.Contains(card.AllText(), "Returns") {
		h.t.Errorf("the card does not show the return date:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, email+": disabled")
	sched := h.thread(card, "will be re-enabled automatically")
	if !sched.HasAction("mb_cancel_return") {
		h.t.Errorf("the return announcement has no Cancel automatic return button: %s", sched.AllText())
	}
	return card, sched, at
}

func TestLeaveReturnsOnTime(t *testing.T) {
	t.Parallel()
	metabaseEditions(t, testLeaveReturnsOnTime)
}

func testLeaveReturnsOnTime(t *testing.T, opts ...metabasetest.Option) {
	h := newHarness(t, nil, opts...)
	jane := h.addAdminJane()
	h.start()
	// Far enough out that the leave is approved and checked before it ends on a loaded machine.
	card, _, at := h.leave("jane@example.com", 8*time.Second)
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Fatal("jane is still active after the approved leave")
	}
	h.audit("return scheduled", "jane@example.com")

	reply := h.thread(card, "jane@example.com: enabled")
	if now := time.Now(); now.Before(at) {
		t.Errorf("re-enabled at %s, before the return time %s", now.Format(time.RFC3339Nano), at.Format(time.RFC3339))
	}
	if !strings.Contains(reply.AllText(), "admin status restored") {
		t.Errorf("the return reply does not mention admin status: %s", reply.AllText())
	}
	h.audit("executed", "enable jane@example.com")
	h.checkRestored(jane.ID)
	if n := h.exactCount("PUT", "/api/user/"+strconv.Itoa(jane.ID)+"/reactivate"); n != 1 {
		t.Errorf("reactivate calls = %d, want exactly 1", n)
	}
	if n := h.count(func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && strings.Contains(m.Text, "jane@example.com: enabled")
	}); n != 1 {
		t.Errorf("%d return replies in the thread, want 1", n)
	}
}

func TestLeaveReturnsAcrossRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	first := h.start()
	card, _, _ := h.leave("jane@example.com", 8*time.Second)
	first.stop(t)
	if n := h.exactCount("PUT", "/api/user/"+strconv.Itoa(jane.ID)+"/reactivate"); n != 0 {
		t.Fatalf("the return ran before the restart (%d reactivate calls); the margin is too small", n)
	}
	h.start()
	h.thread(card, "jane@example.com: enabled")
	h.audit("executed", "enable jane@example.com")
	h.checkRestored(jane.ID)
	if n := h.exactCount("PUT", "/api/user/"+strconv.Itoa(jane.ID)+"/reactivate"); n != 1 {
		t.Errorf("reactivate calls = %d, want exactly 1", n)
	}
}

func TestCancelScheduledReturn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	john := h.mb.AddUser(metabasetest.User{Email: "john@example.com", FirstName: "John", Active: true})
	h.start()
	// Two leaves ending at the same second: john's return is the observable proof that the
	// timer reached jane's return time. The return is far enough out for two requests, two
	// approvals and a status to happen before it on a loaded 2-core machine under -race (5 s
	// was not: the return fell due before the cancel); the test waits on the timer only, in
	// parallel with the others.
	until, _ := returnTime(12 * time.Second)
	h.command(requester, "disable jane@example.com until "+until+" Parental leave")
	janeCard := h.card("jane@example.com")
	h.click(approver, janeCard, "mb_approve")
	sched := h.thread(janeCard, "will be re-enabled automatically")
	h.command(requester, "disable john@example.com until "+until+" Sabbatical")
	johnCard := h.card("john@example.com")
	h.click(approver, johnCard, "mb_approve")
	h.thread(johnCard, "will be re-enabled automatically")

	h.reply(requester, "status jane@example.com", "Scheduled return")

	// Only approvers may cancel.
	h.click(outsider, sched, "mb_cancel_return")
	h.ephemeral(outsider, "Only approvers")
	h.click(approver2, sched, "mb_cancel_return")
	h.thread(janeCard, "Automatic return cancelled by <@"+approver2+">")
	h.audit("return cancelled", "jane@example.com")

	h.thread(johnCard, "john@example.com: enabled")
	if u, _ := h.mb.UserByID(john.ID); !u.Active {
		t.Error("john was not re-enabled")
	}
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane was re-enabled although her return was cancelled")
	}
	if n := h.mb.Count("PUT", "/api/user/"+strconv.Itoa(jane.ID)); n != 0 {
		t.Errorf("%d PUT calls for jane after the cancel, want 0", n)
	}
	st := h.reply(approver, "status jane@example.com", "Metabase id")
	if strings.Contains(st.Text, "Scheduled return") || !strings.Contains(st.Text, "deactivated") {
		t.Errorf("status after the cancel: %s", st.Text)
	}
	// A second click is answered, not acted on.
	h.click(approver, sched, "mb_cancel_return")
	h.ephemeral(approver, "no longer scheduled")
}

func TestBadReturnDatesAreRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	past, _ := returnTime(-time.Hour)
	tests := []struct{ until, want string }{
		{"2020-01-01", "is in the past"},
		{past, "is in the past"},
		{"tomorrow", "can't read the return date"},
		{"2027-13-45", "can't read the return date"},
		{time.Now().AddDate(2, 0, 0).Format("2006-01-02"), "the limit is 366 days"},
	}
	for _, tt := range tests {
		h.reply(requester, "disable jane@example.com until "+tt.until+" Parental leave", tt.want)
	}
	h.reply(requester, "enable jane@example.com until 2030-01-01 back", "`until` only goes with `disable`")
	if n := h.count(func(m slacktest.Message) bool { return m.HasAction("mb_approve") }); n != 0 {
		t.Fatalf("%d cards for refused dates", n)
	}
}

// reply types a command and waits for a NEW ephemeral to user containing want (ephemeral
// matches any earlier one too, which is too weak when several commands get similar answers).
func (h *harness) reply(user, text, want string) slacktest.Message {
	h.t.Helper()
	seen := map[string]bool{}
	for _, m := range h.slack.Ephemerals() {
		seen[m.Channel+"/"+m.TS] = true
	}
	h.command(user, text)
	m, err := h.slack.WaitEphemeral(h.ctx(), func(m slacktest.Message) bool {
		return !seen[m.Channel+"/"+m.TS] && m.User == user
	})
	if err != nil {
		h.t.Fatalf("no reply to %q: %v\nlogs:\n%s", text, err, h.logs.String())
	}
	if !strings.Contains(m.AllText(), want) {
		h.t.Fatalf("reply to %q is %q, want it to contain %q", text, m.AllText(), want)
	}
	return m
}

// TestLeaveRetriedUserAlsoReturns: a leave for two users where one disable fails at first; after
// the retry disables them too, both come back at the return time.
func TestLeaveRetriedUserAlsoReturns(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	john := h.mb.AddUser(metabasetest.User{ID: 61, Email: "john@example.com", FirstName: "John", Active: true})
	h.start()
	until, at := returnTime(12 * time.Second)
	h.command(requester, "disable jane@example.com john@example.com until "+until+" Team sabbatical")
	card := h.card("john@example.com")
	h.mb.FailNext("DELETE", "/api/user/61", -1, 400, "Try again later")
	h.click(approver, card, "mb_approve")
	summary := h.thread(card, "disabled 1, skipped 0, failed 1")
	h.thread(card, "will be re-enabled automatically")
	h.mb.ClearFailures()
	h.click(approver, summary, "mb_retry")
	h.thread(card, "disabled 2, skipped 0, failed 0")
	h.thread(card, "john@example.com will also be re-enabled automatically")
	if time.Now().After(at) {
		t.Fatal("the retry finished after the return time; the margin is too small")
	}
	h.thread(card, "john@example.com: enabled")
	h.thread(card, "jane@example.com: enabled")
	h.checkRestored(jane.ID)
	if u, _ := h.mb.UserByID(john.ID); !u.Active {
		t.Error("john, disabled by the retry, did not come back")
	}
}

// TestEnableDuringLeaveIsRefused: while an automatic return is scheduled, a manual enable is
// refused with the way out; after cancelling the return it goes through.
func TestEnableDuringLeaveIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	h.start()
	_, sched, _ := h.leave("jane@example.com", 30*24*time.Hour)
	h.reply(requester, "enable jane@example.com back early", "already comes back automatically")
	h.click(approver, sched, "mb_cancel_return")
	h.thread(slacktest.Message{TS: sched.ThreadTS}, "Automatic return cancelled")
	h.command(requester, "enable jane@example.com back early")
	card := h.card("enable")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: enabled (admin status restored")
	h.checkRestored(jane.ID)
}

// TestTerminationDuringLeaveCancelsTheReturn: admin jane goes on leave with a return date, an SSO
// login reactivates her, and a termination is approved. The leave's return must not re-enable
// her: the termination's card says it cancels the return, and its approval cancels it in the same
// transaction (audit "return cancelled" naming the termination).
func TestTerminationDuringLeaveCancelsTheReturn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	h.start()
	leaveCard, _, _ := h.leave("jane@example.com", time.Hour)
	h.mb.ReactivateBySSO(jane.ID)

	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("Left the company")
	if !strings.Contains(card.AllText(), "cancels the automatic return") {
		t.Errorf("the termination's card does not say it cancels the return:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	id := requestIDRe.FindString(card.AllText())
	h.audit("return cancelled", "superseded by request `"+id+"`")

	// The return is cancelled in the database, so no timer on any replica can run it.
	st, err := store.Open(context.Background(), h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leaveID := requestIDRe.FindString(leaveCard.AllText())
	ret, err := st.Get(t.Context(), leaveID+"-R")
	if err != nil || ret.State != approval.Cancelled || ret.SupersededBy != id {
		t.Fatalf("the leave's return is %s superseded by %q (err %v), want cancelled by %s", ret.State, ret.SupersededBy, err, id)
	}
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Fatal("jane is active after her termination")
	}
}

// TestLostReplyThenRetryKeepsTheReturn: jane's DELETE takes effect but its reply is held past
// METABASE_TIMEOUT, so the leave ends "failed: Metabase did not answer in time". Retry finds her
// inactive: that counts as done, not "skipped: already inactive", so the leave's return is
// scheduled and what she had is kept for it.
func TestLostReplyThenRetryKeepsTheReturn(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
	jane := h.addAdminJane()
	h.start()
	release := h.mb.HoldReply("DELETE", "/api/user/:id")
	until, _ := returnTime(72 * time.Hour)
	h.command(requester, "disable jane@example.com until "+until+" Sabbatical")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	failed := h.thread(card, "did not answer in time")
	release()
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Fatal("the held DELETE did not take effect; the test's premise is wrong")
	}
	h.click(approver, failed, "mb_retry")
	h.thread(card, "confirmed inactive")
	h.thread(card, "will be re-enabled automatically")
	h.audit("return scheduled", "jane@example.com")
}

// metabaseAdmin is a Metabase admin acting in Metabase's own UI, behind the bot's back.
func (h *harness) metabaseAdmin() *metabase.Client {
	h.t.Helper()
	c, err := metabase.New(h.mb.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// demoteAndDeactivate is a Metabase admin taking away user's admin rights and deactivating them
// in Metabase's own UI.
func (h *harness) demoteAndDeactivate(user int) {
	h.t.Helper()
	mb := h.metabaseAdmin()
	no := false
	if _, err := mb.UpdateUser(h.ctx(), user, metabase.UserUpdate{IsSuperuser: &no}); err != nil {
		h.t.Fatal(err)
	}
	if err := mb.DisableUser(h.ctx(), user); err != nil {
		h.t.Fatal(err)
	}
}

// enableApproved asks to enable email, checks the card, approves and waits for the outcome.
func (h *harness) enableApproved(email string, cardWants ...string) slacktest.Message {
	h.t.Helper()
	h.command(requester, "enable "+email+" back")
	card := h.card("enable")
	for _, w := range cardWants {
		if !strings.Contains(card.AllText(), w) {
			h.t.Errorf("the enable card does not say %q:\n%s", w, card.AllText())
		}
	}
	h.click(approver, card, "mb_approve")
	return h.thread(card, email+": enabled")
}

// TestEnableNeverRestoresAUsedRecord: admin jane is disabled and enabled through the bot (admin
// restored); a Metabase admin then demotes and deactivates her in Metabase. The bot's record was
// used by the enable, so a new enable must not make her admin again.
func TestEnableNeverRestoresAUsedRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	h.start()
	h.disableApproved("disable jane@example.com Sabbatical", "jane@example.com")
	h.enableApproved("jane@example.com", "will restore *Metabase admin rights*")
	h.demoteAndDeactivate(jane.ID)
	reply := h.enableApproved("jane@example.com")
	if u, _ := h.mb.UserByID(jane.ID); !u.Active || u.Superuser {
		t.Fatalf("after the second enable jane is active %v, admin %v; want active and not admin (%s)", u.Active, u.Superuser, reply.Text)
	}
}

// TestEnableDistrustsARecordChangedInMetabase: admin jane is disabled by the bot, then reactivated
// and demoted in Metabase's UI, and deactivated there. Metabase's updated_at no longer matches
// the bot's record, so the enable restores no admin rights and its card says why.
func TestEnableDistrustsARecordChangedInMetabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	h.start()
	h.disableApproved("disable jane@example.com Sabbatical", "jane@example.com")
	if _, err := h.metabaseAdmin().ReactivateUser(h.ctx(), jane.ID); err != nil {
		t.Fatal(err)
	}
	h.demoteAndDeactivate(jane.ID)
	h.enableApproved("jane@example.com", "changed in Metabase since, so admin is not restored")
	if u, _ := h.mb.UserByID(jane.ID); !u.Active || u.Superuser {
		t.Fatalf("after the enable jane is active %v, admin %v; want active and not admin", u.Active, u.Superuser)
	}
}

// TestEnableGrantingAdminNeedsTheAdminQuorum: an enable that will restore admin rights needs
// ADMIN_REQUIRED_APPROVALS, as disabling an admin does.
func TestEnableGrantingAdminNeedsTheAdminQuorum(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_REQUIRED_APPROVALS": "2"})
	jane := h.addAdminJane()
	h.start()
	h.command(requester, "disable jane@example.com Sabbatical")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	h.click(approver2, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")

	h.command(requester, "enable jane@example.com back")
	enable := h.card("enable")
	if !strings.Contains(enable.AllText(), "Restoring admin rights needs 2 approvals") {
		t.Errorf("the enable card does not ask for the admin quorum:\n%s", enable.AllText())
	}
	h.click(approver, enable, "mb_approve")
	h.audit("approval 1 of 2", "enable jane@example.com")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Fatal("one approval re-enabled an admin; the admin quorum is two")
	}
	h.click(approver2, enable, "mb_approve")
	h.thread(enable, "admin status restored")
}

// TestRetryRecordsWhatTheUserHasNow: jane's DELETE gets no answer and never takes effect; a
// Metabase admin then demotes and deactivates her in Metabase. Retry finds her inactive and
// counts it as done, but must record what she has now (not an admin), so a later enable grants
// nothing.
func TestRetryRecordsWhatTheUserHasNow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
	jane := h.addAdminJane()
	h.start()
	release := h.mb.Hold("DELETE", "/api/user/:id")
	h.command(requester, "disable jane@example.com Sabbatical")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	failed := h.thread(card, "did not answer in time")
	release()
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Fatal("the abandoned DELETE took effect; the test's premise is wrong")
	}
	h.demoteAndDeactivate(jane.ID)
	h.click(approver, failed, "mb_retry")
	h.thread(card, "confirmed inactive")
	reply := h.enableApproved("jane@example.com")
	if strings.Contains(reply.Text, "admin status restored") {
		t.Fatalf("the enable restored admin rights jane no longer had: %s", reply.Text)
	}
	if u, _ := h.mb.UserByID(jane.ID); u.Superuser {
		t.Fatal("jane is an admin again")
	}
}

// TestTerminationKeepsOthersOnTheLeave: a leave for jane and bob; jane is reactivated by SSO and
// terminated. Only jane leaves the scheduled return: bob still comes back on the date.
func TestTerminationKeepsOthersOnTheLeave(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addAdminJane()
	bob := h.mb.AddUser(metabasetest.User{Email: "robert@example.com", FirstName: "Robert", Active: true})
	h.start()
	until, _ := returnTime(time.Hour)
	h.command(requester, "disable jane@example.com robert@example.com until "+until+" Offsite")
	leave := h.card("robert@example.com")
	h.click(approver, leave, "mb_approve")
	h.thread(leave, "will be re-enabled automatically")
	h.mb.ReactivateBySSO(jane.ID)

	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("Left the company")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.audit("return cancelled", "jane@example.com")

	st, err := store.Open(context.Background(), h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ret, err := st.Get(t.Context(), requestIDRe.FindString(leave.AllText())+"-R")
	if err != nil || ret.State != approval.Scheduled || len(ret.Targets) != 1 || ret.Targets[0].UserID != bob.ID {
		t.Fatalf("the leave's return is %s for %v (err %v); want it still scheduled, for bob alone", ret.State, ret.Targets, err)
	}
}
