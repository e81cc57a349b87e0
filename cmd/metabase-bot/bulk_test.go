package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// addUsers seeds n active users u<i>@example.com and returns them.
func (h *harness) addUsers(n int, first string) []metabasetest.User {
	out := make([]metabasetest.User, n)
	for i := range out {
		out[i] = h.mb.AddUser(metabasetest.User{Email: fmt.Sprintf("%s%d@example.com", strings.ToLower(first), i),
			FirstName: first, LastName: strconv.Itoa(i), Active: true})
	}
	return out
}

func TestBulkPerUserResultsAndRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ok := h.mb.AddUser(metabasetest.User{ID: 41, Email: "ok@example.com", FirstName: "Ok", Active: true})
	bad := h.mb.AddUser(metabasetest.User{ID: 42, Email: "bad@example.com", FirstName: "Bad", Active: true})
	gone := h.mb.AddUser(metabasetest.User{ID: 43, Email: "gone@example.com", FirstName: "Gone", Active: true})
	h.start()

	h.command(requester, "disable ok@example.com 42 gone@example.com Contractors left")
	card := h.card("ok@example.com")
	for _, want := range []string{"3 users", "ok@example.com", "bad@example.com", "gone@example.com", "Contractors left"} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("the card lacks %q:\n%s", want, card.AllText())
		}
	}
	// Between request and approval: someone deactivates gone in Metabase, and Metabase starts
	// refusing bad.
	h.deactivateBehindTheBot(gone.ID)
	h.mb.FailNext("DELETE", "/api/user/42", -1, 400, "Something is wrong with this user")

	h.click(approver, card, "mb_approve")
	summary := h.thread(card, "Partly done")
	if !strings.Contains(summary.AllText(), "disabled 1, skipped 1, failed 1") {
		t.Errorf("summary: %s", summary.AllText())
	}
	if !summary.HasAction("mb_retry") {
		t.Errorf("the summary has no Retry failed button: %s", summary.AllText())
	}
	lines := h.thread(card, "ok@example.com: disabled").AllText()
	for _, want := range []string{"bad@example.com: failed: ", "Something is wrong with this user", "gone@example.com: skipped: already inactive"} {
		if !strings.Contains(lines, want) {
			t.Errorf("the per-user lines lack %q:\n%s", want, lines)
		}
	}
	h.cardState(card, "partly done")
	h.audit("partially executed", "ok@example.com")

	// Only approvers retry; then Metabase recovers and only the failed user is retried.
	h.click(outsider, summary, "mb_retry")
	h.ephemeral(outsider, "Only approvers")
	h.mb.ClearFailures()
	h.click(approver, summary, "mb_retry")
	h.thread(card, "Done.")
	h.thread(card, "bad@example.com: disabled")
	h.cardState(card, "disabled 2, skipped 1, failed 0")
	for _, c := range []struct {
		u    metabasetest.User
		want int
	}{{ok, 1}, {bad, 2}, {gone, 1 /* ours, behind the bot */}} {
		if n := h.exactCount("DELETE", "/api/user/"+strconv.Itoa(c.u.ID)); n != c.want {
			t.Errorf("DELETE calls for %s = %d, want %d", c.u.Email, n, c.want)
		}
		if u, _ := h.mb.UserByID(c.u.ID); u.Active {
			t.Errorf("%s is still active", c.u.Email)
		}
	}
}

func TestBulkCardListsAtMost15(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	users := h.addUsers(17, "Temp")
	h.start()
	emails := make([]string, len(users))
	for i, u := range users {
		emails[i] = u.Email
	}
	h.command(requester, "disable "+strings.Join(emails, " ")+" Project ended")
	card := h.card("17 users")
	text := card.AllText()
	if !strings.Contains(text, "and 2 more") {
		t.Errorf("the card does not say \"and 2 more\":\n%s", text)
	}
	if strings.Contains(text, users[16].Email) {
		t.Errorf("the card lists the 17th user:\n%s", text)
	}
	list := h.thread(card, "All 17 users")
	for _, u := range users {
		if !strings.Contains(list.AllText(), u.Email) {
			t.Errorf("the thread's full list lacks %s", u.Email)
		}
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "disabled 17, skipped 0, failed 0")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 17 {
		t.Errorf("DELETE calls = %d, want 17", n)
	}
}

func TestCardWarnings(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_REQUIRED_APPROVALS": "2"})
	h.mb.AddUser(metabasetest.User{Email: "root@example.com", FirstName: "Root", Active: true, Superuser: true})
	h.mb.AddUser(metabasetest.User{Email: "sso@example.com", FirstName: "Sso", Active: true, SSOSource: "saml"})
	h.addJane()
	// The warning is precise now: it needs SAML sign-in on, with provisioning (the default).
	h.mb.SetSetting("saml-enabled", true)
	h.start()

	h.command(requester, "disable sso@example.com Left")
	card := h.card("sso@example.com")
	for _, want := range []string{"A SAML sign-in with their email re-activates them", "identity provider"} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("the SSO card lacks %q:\n%s", want, card.AllText())
		}
	}
	if strings.Contains(card.AllText(), "Metabase admin") {
		t.Errorf("the SSO card warns about an admin:\n%s", card.AllText())
	}

	// With SAML sign-in on, a password user could be re-activated too: turn it off for the
	// plain target.
	h.mb.SetSetting("saml-enabled", false)
	h.command(requester, "disable jane@example.com Left")
	plain := h.card("jane@example.com")
	if strings.Contains(plain.AllText(), ":warning:") || !strings.Contains(plain.AllText(), "needs 1 approval") {
		t.Errorf("a plain target's card:\n%s", plain.AllText())
	}

	h.command(requester, "disable root@example.com Rotating admins")
	card = h.card("root@example.com")
	for _, want := range []string{"root@example.com is a *Metabase admin*", "Disabling an admin needs 2 approvals", "needs 2 approvals", "0 of 2"} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("the admin card lacks %q:\n%s", want, card.AllText())
		}
	}
	h.click(approver, card, "mb_approve")
	h.audit("approval 1 of 2", "root@example.com")
	cur, _ := h.slack.Message(card.Channel, card.TS)
	if !cur.HasAction("mb_approve") || h.mb.Count("DELETE", "") != 0 {
		t.Fatal("one approval of two executed the request")
	}
	h.click(approver, cur, "mb_approve")
	h.ephemeral(approver, "already approved")
	h.click(approver2, cur, "mb_approve")
	h.thread(card, "root@example.com: disabled")
}

// TestLastActiveAdminIsRefusedUpFront runs the bot with an API key whose user is an API-key user
// (not listed by GET /api/user, as in Metabase), so the target is the only active admin listed.
func TestLastActiveAdminIsRefusedUpFront(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.mb = metabasetest.New(t, metabasetest.WithAdminUser(metabasetest.User{ID: 1, Email: "api-key-user-1@api-key.invalid",
		FirstName: "metabase-bot", Active: true, Superuser: true, Type: "api-key"}))
	h.env["METABASE_URL"] = h.mb.URL()
	root := h.mb.AddUser(metabasetest.User{Email: "root@example.com", FirstName: "Root", Active: true, Superuser: true})
	h.start()

	h.reply(requester, "disable root@example.com Rotating admins", "last active Metabase admin")

	// With a second admin the same request is fine: the count is right, not merely cautious.
	h.mb.AddUser(metabasetest.User{Email: "root2@example.com", FirstName: "Second", Active: true, Superuser: true})
	h.command(requester, "disable root@example.com Rotating admins")
	card := h.card("root@example.com")
	// ...but asking to disable both at once is refused.
	h.reply(requester, "disable "+strconv.Itoa(root.ID)+" root2@example.com Both", "already has an open request")
	h.click(approver, card, "mb_approve")
	h.thread(card, "root@example.com: disabled")
	h.reply(requester, "disable root2@example.com Last one", "last active Metabase admin")
}

// TestDefaultBotAccountCountsAsAdmin: with the usual setup the bot's own account (an admin) stays,
// so disabling the only other admin is not "the last admin".
func TestDefaultBotAccountCountsAsAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.mb.AddUser(metabasetest.User{Email: "root@example.com", FirstName: "Root", Active: true, Superuser: true})
	h.start()
	h.command(requester, "disable root@example.com Rotating admins")
	card := h.card("root@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "root@example.com: disabled")
}

func TestInactiveReportToBulkDisable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"BULK_CONCURRENCY": "2"})
	now := time.Now().UTC()
	ago := func(days int) *time.Time { t := now.AddDate(0, 0, -days); return &t }
	add := func(email string, active bool, lastLogin *time.Time, joinedDaysAgo int) metabasetest.User {
		return h.mb.AddUser(metabasetest.User{Email: email, FirstName: strings.Split(email, "@")[0], Active: active,
			LastLogin: lastLogin, DateJoined: *ago(joinedDaysAgo)})
	}
	add("recent@example.com", true, ago(5), 400)
	add("never10@example.com", true, nil, 10)
	add("deact@example.com", false, ago(300), 500)
	never200 := add("never200@example.com", true, nil, 200)
	old100 := add("old100@example.com", true, ago(100), 400)
	var olds []metabasetest.User
	for d := 120; d < 126; d++ {
		olds = append(olds, add(fmt.Sprintf("old%d@example.com", d), true, ago(d), 400))
	}
	h.start()

	report := h.reply(requester, "inactive 90", "8 of 11 active Metabase users")
	text := report.AllText()
	want := []string{"never200@example.com", "old125@example.com", "old124@example.com", "old123@example.com",
		"old122@example.com", "old121@example.com", "old120@example.com", "old100@example.com"}
	last := -1
	for _, w := range want {
		i := strings.Index(text, w)
		if i < 0 || i < last {
			t.Errorf("the report does not list %s after the previous user (oldest first):\n%s", w, text)
		}
		last = i
	}
	for _, not := range []string{"recent@", "never10@", "deact@", "bot@example.com"} {
		if strings.Contains(text, not) {
			t.Errorf("the report lists %s:\n%s", not, text)
		}
	}
	for _, w := range []string{"never logged in (joined " + ago(200).Format("2006-01-02"), "last login " + ago(100).Format("2006-01-02")} {
		if !strings.Contains(text, w) {
			t.Errorf("the report lacks %q:\n%s", w, text)
		}
	}
	if !strings.Contains(text, "Request disable of these 8 users") {
		t.Fatalf("the report has no request button:\n%s", text)
	}
	if n := h.mb.Count("DELETE", ""); n != 0 {
		t.Fatalf("the report made %d DELETE calls", n)
	}

	ctx := h.ctx()
	if _, err := h.slack.Click(ctx, slacktest.Click{UserID: requester, ChannelID: report.Channel, MessageTS: report.TS,
		ActionID: "mb_inactive_request"}); err != nil {
		t.Fatal(err)
	}
	view, err := h.slack.WaitView(ctx, func(v slacktest.View) bool { return v.CallbackID == "mb_inactive_form" })
	if err != nil {
		t.Fatalf("the clean-up form was not opened: %v", err)
	}
	if _, err := h.slack.SubmitView(ctx, slacktest.ViewSubmission{UserID: requester, ViewID: view.ID,
		Values: map[string]map[string]slacktest.InputValue{"mb_form_reason": {"reason": {Value: "Licence clean-up Q3"}}}}); err != nil {
		t.Fatal(err)
	}
	card := h.card("Licence clean-up Q3")
	if !strings.Contains(card.AllText(), "8 users") {
		t.Errorf("the bulk card does not count 8 users:\n%s", card.AllText())
	}

	h.mb.SetLatency("", "/api/user/:id", 100*time.Millisecond)
	failing := olds[2]
	h.mb.FailNext("DELETE", "/api/user/"+strconv.Itoa(failing.ID), -1, 400, "Metabase said no")
	h.click(approver, card, "mb_approve")
	summary := h.thread(card, "disabled 7, skipped 0, failed 1")
	h.thread(card, failing.Email+": failed: ")
	h.mb.ClearFailures()
	h.click(approver, summary, "mb_retry")
	h.thread(card, "disabled 8, skipped 0, failed 0")
	for _, u := range append(olds, never200, old100) {
		if got, _ := h.mb.UserByID(u.ID); got.Active {
			t.Errorf("%s is still active", u.Email)
		}
	}
	if n := h.mb.Count("DELETE", ""); n != 9 {
		t.Errorf("DELETE calls = %d, want 9 (8 users, one of them twice)", n)
	}
	if n := h.mb.MaxInFlight("", "/api/user"); n != 2 {
		t.Errorf("at most %d Metabase requests were in flight at once, want exactly BULK_CONCURRENCY=2", n)
	}
}

// TestManyWarnedTargets: twelve SSO admins still get every warning on the card, summarised.
func TestManyWarnedTargets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_REQUIRED_APPROVALS": "2"})
	var emails []string
	for i := range 12 {
		u := h.mb.AddUser(metabasetest.User{Email: fmt.Sprintf("sso%02d@example.com", i), FirstName: "Sso", Active: true,
			Superuser: true, SSOSource: "saml"})
		emails = append(emails, u.Email)
	}
	// The SSO warning is precise: it needs SAML sign-in on, with provisioning (the default).
	h.mb.SetSetting("saml-enabled", true)
	h.start()
	h.command(requester, "disable "+strings.Join(emails, " ")+" Incident response")
	card := h.card("12 users")
	text := card.AllText()
	for _, want := range []string{"12 of these users are *Metabase admins*",
		"A SAML sign-in with their email re-activates 12 of these users and may restore admin rights (unverified)",
		"sso00@example.com saml", "and 2 more", "identity provider", "needs 2 approvals"} {
		if !strings.Contains(text, want) {
			t.Errorf("the card lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "more warnings in the thread") {
		t.Errorf("the card defers warnings to the thread:\n%s", text)
	}
}

// TestInactiveRequestAgainAfterDenial: a second clean-up request right after a denied one gets
// its own card (it was silently dropped as a "redelivery" within the same minute).
func TestInactiveRequestAgainAfterDenial(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	old := time.Now().AddDate(0, 0, -200)
	h.mb.AddUser(metabasetest.User{Email: "old@example.com", FirstName: "Old", Active: true, LastLogin: &old, DateJoined: old})
	h.start()
	request := func() slacktest.Message {
		t.Helper()
		report := h.reply(requester, "inactive", "1 of 2 active Metabase users")
		seen := map[string]bool{}
		for _, v := range h.slack.Views() {
			seen[v.ID] = true
		}
		ctx := h.ctx()
		if _, err := h.slack.Click(ctx, slacktest.Click{UserID: requester, ChannelID: report.Channel, MessageTS: report.TS,
			ActionID: "mb_inactive_request"}); err != nil {
			t.Fatal(err)
		}
		view, err := h.slack.WaitView(ctx, func(v slacktest.View) bool { return !seen[v.ID] && v.CallbackID == "mb_inactive_form" })
		if err != nil {
			t.Fatal(err)
		}
		if errs := h.submit(requester, view, formValues{"mb_form_reason": {"reason": {Value: "Licence clean-up"}}}); errs != nil {
			t.Fatalf("field errors %v", errs)
		}
		return h.card("old@example.com")
	}
	first := request()
	h.click(approver, first, "mb_deny")
	view, err := h.slack.WaitView(h.ctx(), func(v slacktest.View) bool { return v.CallbackID == "mb_deny_form" })
	if err != nil {
		t.Fatal(err)
	}
	h.submit(approver, view, formValues{"mb_form_reason": {"reason": {Value: "Not yet"}}})
	h.cardState(first, "Denied")
	second := request()
	if second.TS == first.TS {
		t.Fatal("no second card")
	}
}

// TestLastAdminCheckedAtExecution: two requests, each disabling one of the two person admins,
// both pass the check made when they are created. Approved while the first DELETE is still in
// flight, the second must not run: it fails "would leave no Metabase admin who can sign in", and
// an admin remains. The check is repeated before each admin DELETE, counting the admins other
// executions are deactivating.
func TestLastAdminCheckedAtExecution(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.mb = metabasetest.New(t, metabasetest.WithAdminUser(metabasetest.User{ID: 1, Email: "api-key-user-1@api-key.invalid",
		FirstName: "metabase-bot", Active: true, Superuser: true, Type: "api-key"}))
	h.env["METABASE_URL"] = h.mb.URL()
	root := h.mb.AddUser(metabasetest.User{Email: "root@example.com", FirstName: "Root", Active: true, Superuser: true})
	root2 := h.mb.AddUser(metabasetest.User{Email: "root2@example.com", FirstName: "Second", Active: true, Superuser: true})
	h.start()
	h.command(requester, "disable root@example.com Rotating admins")
	first := h.card("root@example.com")
	h.command(requester, "disable root2@example.com Rotating admins")
	second := h.card("root2@example.com")

	release := h.mb.Hold("DELETE", "/api/user/:id")
	h.click(approver, first, "mb_approve")
	if err := h.mb.WaitForRequests(h.ctx(), "DELETE", "/api/user/", 1); err != nil {
		t.Fatal(err)
	}
	h.click(approver, second, "mb_approve")
	h.thread(second, "root2@example.com: failed: would leave no Metabase admin who can sign in")
	release()
	h.thread(first, "root@example.com: disabled")
	if u, _ := h.mb.UserByID(root2.ID); !u.Active || !u.Superuser {
		t.Fatal("the second admin was deactivated: no person admin is left")
	}
	if u, _ := h.mb.UserByID(root.ID); u.Active {
		t.Fatal("the first admin's approved disable did not happen")
	}
}

// TestMetabaseLastAdminRefusalIsWordedFirst: when Metabase itself refuses to deactivate the last
// admin, the outcome says so in the bot's words first, with Metabase's message, in Metabase's
// language, in brackets. The refusal is recognised by a re-read (still an active admin), not by
// its words.
func TestMetabaseLastAdminRefusalIsWordedFirst(t *testing.T) {
	t.Parallel()
	metabaseLocales(t, func(t *testing.T, locale string, opts ...metabasetest.Option) {
		h := newHarness(t, nil, opts...)
		h.addAdminJane()
		h.start()
		// Metabase's guard fires when the other admins are deactivated meanwhile; simulate it.
		h.mb.FailNext("DELETE", "/api/user/:id", 1, 400, "You cannot remove the last member of the 'Admin' group!")
		h.command(requester, "disable jane@example.com Gone")
		card := h.card("jane@example.com")
		h.click(approver, card, "mb_approve")
		h.thread(card, "jane@example.com: failed: would leave no Metabase admin who can sign in (Metabase answered 400")
		h.audit("failed", "would leave no Metabase admin who can sign in (Metabase answered 400: "+
			metabasetest.Words(locale, "You cannot remove the last member of the 'Admin' group!")+")")
	})
}
