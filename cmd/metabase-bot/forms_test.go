package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// openForm types a verb without arguments and waits for the request form it opens.
func (h *harness) openForm(verb string) slacktest.View {
	h.t.Helper()
	seen := map[string]bool{}
	for _, v := range h.slack.Views() {
		seen[v.ID] = true
	}
	h.command(requester, verb)
	v, err := h.slack.WaitView(h.ctx(), func(v slacktest.View) bool { return !seen[v.ID] })
	if err != nil {
		h.t.Fatalf("no form for %q: %v\nephemerals: %v\nlogs:\n%s", verb, err, texts(h.slack.Ephemerals()), h.logs.String())
	}
	if v.CallbackID != "mb_request_form" || v.UserID != requester {
		h.t.Fatalf("opened %s for %s, want the request form for %s", v.CallbackID, v.UserID, requester)
	}
	return v
}

// submit submits a view and returns the field errors its ack carries (nil when it closed).
func (h *harness) submit(user string, view slacktest.View, values map[string]map[string]slacktest.InputValue) map[string]string {
	h.t.Helper()
	ctx := h.ctx()
	id, err := h.slack.SubmitView(ctx, slacktest.ViewSubmission{UserID: user, ViewID: view.ID, Values: values})
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	ack, err := h.slack.WaitAck(ctx, id)
	if err != nil {
		h.t.Fatalf("no ack for the submission: %v", err)
	}
	if ack.Latency > 3*time.Second {
		h.t.Errorf("the submission was acked after %s; Slack allows 3s", ack.Latency)
	}
	if ack.Payload == nil {
		return nil
	}
	var p struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(ack.Payload, &p); err != nil {
		h.t.Fatalf("ack payload %s: %v", ack.Payload, err)
	}
	if p.ResponseAction != "errors" || len(p.Errors) == 0 {
		h.t.Fatalf("ack payload %s is neither empty nor field errors", ack.Payload)
	}
	return p.Errors
}

type formValues = map[string]map[string]slacktest.InputValue

func requestForm(targets, reason, date, slackUser string) formValues {
	v := formValues{
		"mb_form_targets": {"targets": {Value: targets}},
		"mb_form_reason":  {"reason": {Value: reason}},
		"mb_form_user":    {"user": {SelectedUser: slackUser}},
	}
	if date != "" {
		v["mb_form_return"] = map[string]slacktest.InputValue{"date": {SelectedDate: date}}
	}
	return v
}

func TestRequestForm(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addJane()
	h.mb.AddUser(metabasetest.User{Email: "john@example.com", FirstName: "John", Active: true})
	h.slack.AddUser(slacktest.User{ID: "UJOHN", Name: "john", Email: "john@example.com"})
	h.start()

	view := h.openForm("disable")
	if view.OpenedAfter >= 3*time.Second {
		t.Errorf("views.open came %s after the command; the trigger expires after 3s", view.OpenedAfter)
	}
	tomorrow := time.Now().UTC().AddDate(0, 0, 2).Format("2006-01-02")
	tests := []struct {
		name   string
		values formValues
		field  string
		want   string
	}{
		{"not an email", requestForm("not-an-email", "Left", "", ""), "mb_form_targets", `not "not-an-email"`},
		{"bad email", requestForm("jane@@example", "Left", "", ""), "mb_form_targets", "not a valid email"},
		{"unknown", requestForm("nobody@example.com", "Left", "", ""), "mb_form_targets", "No Metabase user has the email"},
		{"nobody", requestForm("", "Left", "", ""), "mb_form_targets", "Pick a Slack user"},
		{"no reason", requestForm("jane@example.com", "", "", ""), "mb_form_reason", "reason is required"},
		{"junk with no reason", requestForm("jane@example.com because", "", "", ""), "mb_form_targets", "Only emails"},
		{"past date", requestForm("jane@example.com", "Left", "2020-01-01", ""), "mb_form_return", "in the past"},
	}
	for _, tt := range tests {
		errs := h.submit(requester, view, tt.values)
		if !strings.Contains(errs[tt.field], tt.want) {
			t.Errorf("%s: field errors %v, want %s to contain %q", tt.name, errs, tt.field, tt.want)
		}
	}
	if n := h.count(func(m slacktest.Message) bool { return m.HasAction("mb_approve") }); n != 0 {
		t.Fatalf("%d cards from refused submissions", n)
	}

	// A valid submission: a multi-line reason that starts with "until", and a return date.
	reason := "until further notice:\n  contract paused"
	if errs := h.submit(requester, view, requestForm("jane@example.com", reason, tomorrow, "")); errs != nil {
		t.Fatalf("a valid form got field errors %v", errs)
	}
	card := h.card("jane@example.com")
	for _, want := range []string{"until further notice:", "contract paused", "Returns", "<@" + requester + ">"} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("the form's card lacks %q:\n%s", want, card.AllText())
		}
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.thread(card, "will be re-enabled automatically")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active")
	}

	// The user picker works too, and `enable` opens the same form without a date.
	view = h.openForm("disable")
	if errs := h.submit(requester, view, requestForm("", "Contract ended", "", "UJOHN")); errs != nil {
		t.Fatalf("picker submission got field errors %v", errs)
	}
	h.card("john@example.com")
	view = h.openForm("enable")
	if strings.Contains(string(view.Blocks), "mb_form_return") {
		t.Error("the enable form asks for a return date")
	}
}

func TestDenyReasonRequired(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"DENY_REASON_REQUIRED": "true"})
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_deny")
	view, err := h.slack.WaitView(h.ctx(), func(v slacktest.View) bool { return v.CallbackID == "mb_deny_form" })
	if err != nil {
		t.Fatalf("deny form not opened: %v", err)
	}
	errs := h.submit(approver, view, formValues{"mb_form_reason": {"reason": {Value: "   "}}})
	if !strings.Contains(errs["mb_form_reason"], "reason is required") {
		t.Fatalf("an empty deny reason got %v, want a field error", errs)
	}
	h.reply(approver, "status jane@example.com", "waiting for approval")
	if cur, _ := h.slack.Message(card.Channel, card.TS); !cur.HasAction("mb_approve") {
		t.Fatal("the refused deny form decided the request")
	}
	if errs := h.submit(approver, view, formValues{"mb_form_reason": {"reason": {Value: "Needed for the audit"}}}); errs != nil {
		t.Fatalf("a deny with a reason got %v", errs)
	}
	h.thread(card, "Denied by <@"+approver+">: Needed for the audit")
	h.cardState(card, "reason: Needed for the audit")
	h.audit("denied", "reason: Needed for the audit")
}

func TestRemindersFireOnceEach(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUEST_TTL": "10s"})
	h.addJane()
	h.start()
	start := time.Now()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	first := h.thread(card, "reminder")
	if d := time.Since(start); d < 4*time.Second {
		t.Errorf("the first reminder came after %s, before half the 10s lifetime", d)
	}
	h.thread(card, "expired without a decision")
	h.cardState(card, "Expired")
	reminders := 0
	for _, m := range h.slack.Messages() {
		if m.ThreadTS == card.TS && strings.Contains(m.Text, "reminder") {
			reminders++
			if !strings.Contains(m.Text, "<!subteam^"+approverGroup+">") {
				t.Errorf("a reminder does not mention the approver group: %s", m.Text)
			}
		}
	}
	if reminders != 2 {
		t.Errorf("%d reminders, want exactly 2 (half-life and final)", reminders)
	}
	_ = first
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"DRY_RUN": "true"})
	jane := h.addAdminJane()
	gone := h.mb.AddUser(metabasetest.User{Email: "gone@example.com", FirstName: "Gone", Active: false})
	h.start()
	h.command(requester, "disable jane@example.com until "+time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")+" Trying the bot")
	card := h.card("jane@example.com")
	for _, want := range []string{"DRY RUN", "Dry run", "changes nothing in Metabase"} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("the dry-run card lacks %q:\n%s", want, card.AllText())
		}
	}
	h.click(approver, card, "mb_approve")
	reply := h.thread(card, "jane@example.com: disabled")
	if !strings.Contains(reply.AllText(), "DRY RUN: Metabase was not changed") {
		t.Errorf("the outcome does not say dry run: %s", reply.AllText())
	}
	h.cardState(card, "DRY RUN")
	h.audit("executed", "jane@example.com", "DRY RUN")

	h.command(requester, "enable gone@example.com Trying the bot")
	card = h.card("gone@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "DRY RUN: Metabase was not changed")
	h.audit("executed", "gone@example.com", "DRY RUN")

	for _, m := range []string{"DELETE", "PUT", "POST"} {
		if n := h.mb.Count(m, "/api/user"); n != 0 {
			t.Errorf("%d %s calls in dry run, want 0", n, m)
		}
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active || !u.Superuser {
		t.Error("dry run changed jane")
	}
	if u, _ := h.mb.UserByID(gone.ID); u.Active {
		t.Error("dry run changed gone")
	}
	if n := h.count(func(m slacktest.Message) bool { return strings.Contains(m.Text, "re-enabled automatically") }); n != 0 {
		t.Error("a dry run scheduled a return")
	}
}

// formOfThirty adds 30 users who can be disabled and returns their emails as typed in the form.
func (h *harness) formOfThirty() []string {
	var emails []string
	for i := range 30 {
		e := "worker" + strconv.Itoa(i) + "@example.com"
		h.mb.AddUser(metabasetest.User{Email: e, FirstName: "W", Active: true})
		emails = append(emails, e)
	}
	return emails
}

// TestRequestFormOfThirtyWithSlowMetabase: with Metabase taking 100 ms a user search, a form
// naming 30 people is answered within Slack's ack budget (more people than one round of searches
// are found in one listing of the users), and the users are read once, not once to validate and
// again to create.
func TestRequestFormOfThirtyWithSlowMetabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	emails := h.formOfThirty()
	h.start()
	h.mb.SetLatency("GET", "/api/user", 100*time.Millisecond)
	before := h.exactCount("GET", "/api/user")
	view := h.openForm("disable")
	if errs := h.submit(requester, view, requestForm(strings.Join(emails, " "), "Contract ended", "", "")); errs != nil {
		t.Fatalf("field errors: %v", errs)
	}
	h.card("worker0@example.com")
	if n := h.exactCount("GET", "/api/user") - before; n != 1 {
		t.Fatalf("%d user calls for 30 users, want one listing", n)
	}
}

// TestRequestFormAnswersByDirectMessageWhenSlow: when even concurrent look-ups outlast the ack
// budget (here one listing of the users, then a search for the one it lacks, 1.5 s each), the
// form is acked (it closes) and the problems come as a direct message from the app, saying what
// was wrong, never that Metabase did not answer.
func TestRequestFormAnswersByDirectMessageWhenSlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	emails := h.formOfThirty()
	h.start()
	h.mb.SetLatency("GET", "/api/user", 1500*time.Millisecond)
	view := h.openForm("disable")
	typed := strings.Join(append(emails, "nobody@example.com"), " ")
	if errs := h.submit(requester, view, requestForm(typed, "Contract ended", "", "")); errs != nil {
		t.Fatalf("a form that outlasts the budget must close, got field errors: %v", errs)
	}
	dm, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == "D"+requester && strings.Contains(m.Text, "No Metabase user has the email")
	})
	if err != nil {
		t.Fatalf("no direct message naming the unknown user: %v\nmessages: %v", err, texts(h.slack.Messages()))
	}
	if strings.Contains(dm.Text, "did not answer in time") {
		t.Errorf("the answer blames Metabase, which did answer: %s", dm.Text)
	}
	if n := h.count(func(m slacktest.Message) bool { return m.HasAction("mb_approve") }); n != 0 {
		t.Fatalf("%d cards for a refused form", n)
	}
}
