package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// What a user leaves running in Metabase, end to end: the card and its thread before approval,
// the hand-over carried out with the disable, exactly once across a crash and across replicas,
// the older Metabase versions that cannot move alerts, and the orphans report.

// leftRunning is what the tests seed for jane: two dashboard subscriptions, one alert and three
// items in her personal collection, with bob as her successor.
type leftRunning struct {
	jane, bob metabasetest.User
	subs      []metabasetest.Subscription
	alert     metabasetest.Alert
}

func (h *harness) seedLeftRunning() leftRunning {
	h.t.Helper()
	var l leftRunning
	l.jane = h.addJane()
	l.bob = h.mb.AddUser(metabasetest.User{Email: "bob@example.com", FirstName: "Bob", LastName: "Builder", Active: true})
	l.subs = []metabasetest.Subscription{
		h.mb.AddSubscription(metabasetest.Subscription{Name: "Weekly sales", DashboardID: 7, CreatorID: l.jane.ID,
			UserIDs: []int{l.bob.ID}, Emails: []string{"team@example.org"}, SlackChannels: []string{"#sales"}}),
		h.mb.AddSubscription(metabasetest.Subscription{Name: "Daily ops", DashboardID: 8, CreatorID: l.jane.ID, SlackChannels: []string{"#ops"}}),
	}
	l.alert = h.mb.AddAlert(metabasetest.Alert{CardID: 12, CardName: "Revenue drop", CreatorID: l.jane.ID, Emails: []string{"cfo@example.org"}})
	for range 3 {
		h.mb.AddCollectionItem(l.jane.ID, metabasetest.CollectionItem{})
	}
	return l
}

// check asserts what the hand-over left in the fake Metabase: the alert's creator and whether
// the subscriptions were archived (they always keep their creator).
func (h *harness) checkHandedOver(l leftRunning, alertCreator int, alertArchived, subsArchived bool) {
	h.t.Helper()
	if a, _ := h.mb.AlertByID(l.alert.ID); a.CreatorID != alertCreator || a.Archived != alertArchived {
		h.t.Errorf("the alert: creator %d, archived %v; want creator %d, archived %v", a.CreatorID, a.Archived, alertCreator, alertArchived)
	}
	for _, s := range l.subs {
		if got, _ := h.mb.SubscriptionByID(s.ID); got.Archived != subsArchived || got.CreatorID != l.jane.ID {
			h.t.Errorf("subscription %q: archived %v, creator %d; want archived %v and still jane's", s.Name, got.Archived, got.CreatorID, subsArchived)
		}
	}
}

func TestCardListsWhatTheUserLeavesRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.seedLeftRunning()
	h.mb.AddUser(metabasetest.User{Email: "john@example.com", FirstName: "John", Active: true})
	h.start()
	st := h.openStore()
	base := h.env["METABASE_URL"]

	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	text := card.AllText()
	for _, want := range []string{
		"What jane@example.com leaves running in Metabase:* 2 subscriptions and 1 alert · 3 items in their personal collection",
		"Subscription <" + base + "/dashboard/7|Weekly sales> · 2 recipients · #sales",
		"Subscription <" + base + "/dashboard/8|Daily ops> · #ops",
		"Alert <" + base + "/question/12|Revenue drop> · 1 recipient",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the card lacks %q:\n%s", want, text)
		}
	}
	list := h.thread(card, "*jane@example.com* created 2 subscriptions and 1 alert").AllText()
	for _, want := range []string{base + "/dashboard/7|Weekly sales", base + "/dashboard/8|Daily ops", base + "/question/12|Revenue drop"} {
		if !strings.Contains(list, want) {
			t.Errorf("the thread's list lacks the link %q:\n%s", want, list)
		}
	}

	h.command(requester, "disable john@example.com Left the company")
	johnCard := h.card("john@example.com")
	if strings.Contains(johnCard.AllText(), "leaves running") || strings.Contains(johnCard.AllText(), "personal collection") {
		t.Errorf("the card of a user with nothing running shows something:\n%s", johnCard.AllText())
	}
	h.drained(st)
	if n := h.inThread(johnCard, ""); n != 0 {
		t.Errorf("the card of a user with nothing running got %d thread replies", n)
	}
	if n := h.exactCount("GET", "/api/pulse"); n != 2 {
		t.Errorf("GET /api/pulse called %d times for two requests, want one per request", n)
	}
}

func TestHandoverWithTheDisable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		command     string
		env         map[string]string
		subsArchive bool
		lines       []string
		audit       string
	}{
		{"listed", "disable jane@example.com handover bob@example.com Left the company", nil, false,
			[]string{"Subscription <{mb}/dashboard/7|Weekly sales>: left in place: subscriptions cannot change creator",
				"Alert <{mb}/question/12|Revenue drop>: moved to bob@example.com"},
			"hand-over: moved 1, archived 0, left 2, failed 0"},
		{"archived", "disable jane@example.com handover bob@example.com archive Left the company", nil, true,
			[]string{"Subscription <{mb}/dashboard/7|Weekly sales>: archived", "Subscription <{mb}/dashboard/8|Daily ops>: archived",
				"Alert <{mb}/question/12|Revenue drop>: moved to bob@example.com"},
			"hand-over: moved 1, archived 2, left 0, failed 0"},
		{"dry run", "disable jane@example.com handover bob@example.com archive Left the company", map[string]string{"DRY_RUN": "true"}, false,
			[]string{"Alert <{mb}/question/12|Revenue drop>: moved (dry run: not changed)", "DRY RUN: Metabase was not changed"},
			"hand-over: moved 1, archived 2, left 0, failed 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.env)
			l := h.seedLeftRunning()
			h.start()
			st := h.openStore()
			h.command(requester, tt.command)
			card := h.card("jane@example.com")
			for _, want := range []string{"Hand-over to Bob Builder (bob@example.com)", "Moved alerts run with bob@example.com's permissions"} {
				if !strings.Contains(card.AllText(), want) {
					t.Errorf("the card lacks %q:\n%s", want, card.AllText())
				}
			}
			h.click(approver, card, "mb_approve")
			thread := h.thread(card, "Hand-over of what jane@example.com left running").AllText()
			for _, want := range tt.lines {
				want = strings.ReplaceAll(want, "{mb}", h.env["METABASE_URL"])
				if !strings.Contains(thread, want) {
					t.Errorf("the thread lacks %q:\n%s", want, thread)
				}
			}
			h.audit("executed", "jane@example.com", tt.audit)
			h.drained(st)
			if tt.env["DRY_RUN"] == "true" {
				h.checkHandedOver(l, l.jane.ID, false, false)
				for _, r := range h.mb.Requests() {
					if r.Method != "GET" {
						t.Errorf("a dry run called %s %s", r.Method, r.Path)
					}
				}
				return
			}
			h.checkHandedOver(l, l.bob.ID, false, tt.subsArchive)
			if h.active("jane@example.com") {
				t.Error("jane is still active")
			}
			if n := h.exactCount("POST", "/api/notification/admin/bulk"); n != 1 {
				t.Errorf("%d bulk calls, want 1", n)
			}
		})
	}
}

// TestHandoverCrash kills the bot (SIGKILL) after Metabase moved the alert and before the bot read
// the reply: the next process takes the request over and finishes the hand-over, moving nothing
// twice and archiving each subscription once.
func TestHandoverCrash(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			h, st := crashHarness(t, backend)
			l := h.seedLeftRunning()
			first := h.spawn()
			h.command(requester, "disable jane@example.com handover bob@example.com archive Left the company")
			card := h.card("jane@example.com")
			release := h.mb.HoldReply("POST", "/api/notification/admin/bulk")
			h.click(approver, card, "mb_approve")
			if err := h.mb.WaitForRequests(h.ctx(), "POST", "/api/notification/admin/bulk", 1); err != nil {
				t.Fatalf("the alert was never moved: %v", err)
			}
			h.audit("approved", "jane@example.com")
			h.drained(st)
			h.kill(first, 0)
			release()
			if a, _ := h.mb.AlertByID(l.alert.ID); a.CreatorID != l.bob.ID {
				t.Fatalf("Metabase did not move the alert before the crash (creator %d)", a.CreatorID)
			}
			if r := h.requestOf(st, card); r.State != approval.Executing {
				t.Fatalf("after the crash the request is %s, want executing", r.State)
			}
			h.spawn()
			thread := h.thread(card, "Hand-over of what jane@example.com left running").AllText()
			if !strings.Contains(thread, "moved to bob@example.com, confirmed after a restart") {
				t.Errorf("the thread does not confirm the move:\n%s", thread)
			}
			h.audit("executed", "jane@example.com", "hand-over: moved 1, archived 2, left 0, failed 0")
			h.drained(st)
			h.checkHandedOver(l, l.bob.ID, false, true)
			if n := h.exactCount("POST", "/api/notification/admin/bulk"); n != 1 {
				t.Errorf("%d bulk calls, want exactly 1", n)
			}
			for _, s := range l.subs {
				if n := h.exactCount("PUT", "/api/pulse/"+strconv.Itoa(s.ID)); n != 1 {
					t.Errorf("subscription %q archived with %d PUTs, want 1", s.Name, n)
				}
			}
			if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
				t.Errorf("%d DELETE calls, want 1", n)
			}
			if n := h.inThread(card, "Hand-over of what jane@example.com left running"); n != 1 {
				t.Errorf("%d hand-over replies, want 1", n)
			}
			if n := h.audits("executed"); n != 1 {
				t.Errorf("%d audit lines executed, want 1", n)
			}
			if r := h.requestOf(st, card); r.State != approval.Succeeded || r.Attempts != 2 {
				t.Errorf("request is %s after %d attempts, want succeeded after 2", r.State, r.Attempts)
			}
		})
	}
}

// TestHandoverTwoReplicas: the same approval delivered to both replicas hands over once.
func TestHandoverTwoReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"DATABASE_URL": postgresDatabaseURL(t)})
	l := h.seedLeftRunning()
	h.startReplicas(2)
	st := h.openStore()
	h.command(requester, "disable jane@example.com handover bob@example.com archive Left the company")
	card := h.card("jane@example.com")
	// Slow writes, so a second executor, if any, would overlap the first.
	h.mb.SetLatency("POST", "/api/notification/admin/bulk", 200*time.Millisecond)
	h.mb.SetLatency("PUT", "/api/pulse/:id", 100*time.Millisecond)
	id, n, err := h.slack.ClickAll(h.ctx(), slacktest.Click{UserID: approver, ChannelID: card.Channel, MessageTS: card.TS, ActionID: "mb_approve"})
	if err != nil || n != 2 {
		t.Fatalf("ClickAll reached %d sockets (%v), want 2", n, err)
	}
	h.eventually("both replicas to ack", func() bool { return len(h.slack.Acks(id)) == 2 })
	h.thread(card, "Hand-over: moved 1, archived 2")
	h.audit("executed", "jane@example.com", "hand-over: moved 1, archived 2")
	h.drained(st)
	h.checkHandedOver(l, l.bob.ID, false, true)
	if n := h.exactCount("POST", "/api/notification/admin/bulk"); n != 1 {
		t.Errorf("%d bulk calls, want 1", n)
	}
	for _, s := range l.subs {
		if n := h.exactCount("PUT", "/api/pulse/"+strconv.Itoa(s.ID)); n != 1 {
			t.Errorf("subscription %q archived with %d PUTs, want 1", s.Name, n)
		}
	}
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("%d DELETE calls, want 1", n)
	}
	if n := h.inThread(card, "Hand-over of what"); n != 1 {
		t.Errorf("%d hand-over replies, want 1", n)
	}
}

// TestHandoverOnOlderMetabase: versions that cannot move alerts say so on the card, and the
// hand-over lists the alert (or archives it where that version can).
func TestHandoverOnOlderMetabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		era       metabasetest.Era
		archive   string
		note      string
		alertLine string
		archived  bool
	}{
		{"0.54 until the admin API", metabasetest.EraNotification, "",
			"This Metabase (v0.56.0) cannot move alerts; they will be listed.",
			"Revenue drop>: left in place: this Metabase cannot move alerts", false},
		// PUT /api/notification/:id archives there, and mails the recipients: the card says so.
		{"0.54 until the admin API, archiving", metabasetest.EraNotification, " archive",
			"This Metabase (v0.56.0) cannot move alerts; they will be archived.\n" +
				":email: Metabase emails each recipient of an archived alert that they were removed from it.",
			"Revenue drop>: archived", true},
		{"before 0.54, archiving", metabasetest.EraPulseAlerts, " archive",
			"This Metabase (v0.53.0) cannot move alerts; they will be archived.",
			"Revenue drop>: archived", true},
	}
	for _, tt := range tests {
		// Each version is told apart by status and route, so a French Metabase, whose 404s for
		// missing routes have other words, is probed to the same capabilities.
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			metabaseLocales(t, func(t *testing.T, _ string, opts ...metabasetest.Option) {
				testHandoverOnOlderMetabase(t, tt.era, tt.archive, tt.note, tt.alertLine, tt.archived, opts...)
			})
		})
	}
}

func testHandoverOnOlderMetabase(t *testing.T, era metabasetest.Era, archive, note, alertLine string, archived bool, opts ...metabasetest.Option) {
	h := newHarness(t, nil, append(opts, metabasetest.WithEra(era))...)
	l := h.seedLeftRunning()
	h.start()
	h.command(requester, "disable jane@example.com handover bob@example.com"+archive+" Left the company")
	card := h.card("jane@example.com")
	if !strings.Contains(card.AllText(), note) {
		t.Errorf("the card lacks the note %q:\n%s", note, card.AllText())
	}
	if strings.Contains(card.AllText(), "Moved alerts run with") {
		t.Errorf("the card warns about moved alerts on a Metabase that cannot move them:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, alertLine)
	h.audit("executed", "jane@example.com")
	h.checkHandedOver(l, l.jane.ID, archived, archived)
	if n := h.mb.Count("POST", "/api/notification/admin/bulk"); n != 0 {
		t.Errorf("%d bulk calls on a version without them", n)
	}
}

// TestRequestFormHandover: the request form's successor field and archive choice make the same
// request as the command, and a deactivated successor is refused next to the field.
func TestRequestFormHandover(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	l := h.seedLeftRunning()
	h.mb.AddUser(metabasetest.User{Email: "gone@example.com", FirstName: "Gone", Active: false})
	h.start()
	view := h.openForm("disable")
	values := requestForm("jane@example.com", "Left the company", "", "")
	values["mb_form_successor"] = map[string]slacktest.InputValue{"successor": {Value: "gone@example.com"}}
	values["mb_form_archive"] = map[string]slacktest.InputValue{"archive": {SelectedOption: "archive"}}
	errs := h.submit(requester, view, values)
	if !strings.Contains(errs["mb_form_successor"], "gone@example.com is deactivated") {
		t.Fatalf("field errors %v, want the successor refused next to its field", errs)
	}
	values["mb_form_successor"] = map[string]slacktest.InputValue{"successor": {Value: "bob@example.com"}}
	if errs := h.submit(requester, view, values); errs != nil {
		t.Fatalf("field errors %v", errs)
	}
	card := h.card("jane@example.com")
	if !strings.Contains(card.AllText(), "Hand-over to Bob Builder") || !strings.Contains(card.AllText(), "they will be archived") {
		t.Errorf("the card from the form lacks the hand-over:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "Hand-over: moved 1, archived 2")
	h.checkHandedOver(l, l.bob.ID, false, true)
}

// TestOrphansReportHandsOver: jane was deactivated in Metabase, outside the bot; `orphans` finds
// what she left running, and its button turns that into one request that hands it over.
func TestOrphansReportHandsOver(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	l := h.seedLeftRunning()
	h.deactivateBehindTheBot(l.jane.ID)
	h.start()
	st := h.openStore()

	h.reply(outsider, "orphans", "still run under 1 deactivated user") // no REQUESTER_GROUP: anyone may ask
	report := h.reply(requester, "orphans", "*2 subscriptions and 1 alert* still run under 1 deactivated user")
	text := report.AllText()
	for _, want := range []string{"*Jane Doe* · jane@example.com (deactivated) · 2 subscriptions and 1 alert", "Weekly sales", "Revenue drop",
		"Hand over or archive these 3 items"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
	ctx := h.ctx()
	if _, err := h.slack.Click(ctx, slacktest.Click{UserID: requester, ChannelID: report.Channel, MessageTS: report.TS, ActionID: "mb_orphans_request"}); err != nil {
		t.Fatal(err)
	}
	view, err := h.slack.WaitView(ctx, func(v slacktest.View) bool { return v.CallbackID == "mb_orphans_form" })
	if err != nil {
		t.Fatalf("the hand-over form was not opened: %v", err)
	}
	values := formValues{"mb_form_reason": {"reason": {Value: "Clean-up after old offboardings"}}}
	if errs := h.submit(requester, view, values); !strings.Contains(errs["mb_form_successor"], "Name who takes over") {
		t.Fatalf("a form without successor or archive: field errors %v", errs)
	}
	values["mb_form_successor"] = map[string]slacktest.InputValue{"successor": {Value: "bob@example.com"}}
	if errs := h.submit(requester, view, values); errs != nil {
		t.Fatalf("field errors %v", errs)
	}
	card := h.card("Clean-up after old offboardings")
	if !strings.Contains(card.AllText(), "asks to *hand over* what 1 deactivated user left running") {
		t.Errorf("the hand-over card:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: handed over")
	h.thread(card, "Alert <"+h.env["METABASE_URL"]+"/question/12|Revenue drop>: moved to bob@example.com")
	h.audit("executed", "handover jane@example.com", "hand-over: moved 1, archived 0, left 2, failed 0")
	h.drained(st)
	h.checkHandedOver(l, l.bob.ID, false, false)
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("%d DELETE calls, want only the one made behind the bot", n)
	}
	if n := h.mb.Count("PUT", "/api/user/"); n != 0 {
		t.Errorf("the hand-over changed a user (%d PUT calls)", n)
	}
	if rs, err := st.List(h.ctx()); err != nil || len(rs) != 1 || rs[0].Action != approval.HandOver {
		t.Errorf("stored requests %v (%v), want one hand-over", rs, err)
	}

	// The subscriptions could not move: they are still jane's. A second request archives them.
	report = h.reply(requester, "orphans", "*2 subscriptions* still run under 1 deactivated user")
	if _, err := h.slack.Click(ctx, slacktest.Click{UserID: requester, ChannelID: report.Channel, MessageTS: report.TS, ActionID: "mb_orphans_request"}); err != nil {
		t.Fatal(err)
	}
	second, err := h.slack.WaitView(ctx, func(v slacktest.View) bool { return v.CallbackID == "mb_orphans_form" && v.ID != view.ID })
	if err != nil {
		t.Fatalf("the second hand-over form was not opened: %v", err)
	}
	if errs := h.submit(requester, second, formValues{"mb_form_reason": {"reason": {Value: "Archive the rest"}},
		"mb_form_archive": {"archive": {SelectedOption: "archive"}}}); errs != nil {
		t.Fatalf("field errors %v", errs)
	}
	card = h.card("Archive the rest")
	if !strings.Contains(card.AllText(), "*Archive* everything they left running") {
		t.Errorf("the archive-only card:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "Hand-over: moved 0, archived 2, left in place 0, failed 0.")
	h.checkHandedOver(l, l.bob.ID, false, true)
	h.reply(requester, "orphans", "No subscription or alert runs under a deactivated user")
}

// TestOrphansFollowsTheRequesterRules: the report shows recipients, so only those who may request
// may see it.
func TestOrphansFollowsTheRequesterRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUESTER_GROUP": "SREQ"})
	h.slack.SetUserGroup("SREQ", requester)
	l := h.seedLeftRunning()
	h.deactivateBehindTheBot(l.jane.ID)
	h.start()
	h.reply(outsider, "orphans", "Only members of <!subteam^SREQ>")
	h.reply(requester, "orphans", "still run under 1 deactivated user")
}

// TestHandoverTargetFirstFoundAtExecution: eu did not answer jane's lookup when the request was
// made (it answered the successor's, named by id), so jane was stored unresolved, without an id.
// The approval hands over jane's own alert, found by the id execution resolved, and never an
// alert that has no creator, which the client reads as creator 0. A successor who turns out to be
// the target herself is refused as at creation, before anything is written.
func TestHandoverTargetFirstFoundAtExecution(t *testing.T) {
	t.Parallel()
	// Its items could not be on the card (the card lists a target's items only once it knows
	// who the target is), so approving disables the account only and the hand-over ends not
	// done, as for any list the card could not read: never the leaver's items unseen, never the
	// alerts without a creator (creator id 0 is what a missing creator decodes to).
	t.Run("hands over nothing the card did not show", func(t *testing.T) {
		t.Parallel()
		h := newMultiHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
		jane := addJaneTo(h.eu)
		bob := h.eu.AddUser(metabasetest.User{Email: "bob@example.com", FirstName: "Bob", LastName: "Builder", Active: true})
		hers := h.eu.AddAlert(metabasetest.Alert{CardID: 12, CardName: "Revenue drop", CreatorID: jane.ID})
		creatorless := h.eu.AddAlert(metabasetest.Alert{CardID: 13, CardName: "Nobody's alert"})
		h.start()
		// The search that finds a user by email fails; reading a user by id works.
		h.eu.FailNext("", "/api/user", -1, 503, "Service Unavailable")

		h.command(requester, "disable jane@example.com handover eu:"+strconv.Itoa(bob.ID)+" Left the company")
		card := h.card("jane@example.com")
		if text := card.AllText(); !strings.Contains(text, "eu: unreachable (will retry)") || !strings.Contains(text, "could not be read") {
			t.Fatalf("the card does not say jane is left to be found at execution and her items could not be read:\n%s", text)
		}
		h.eu.ClearFailures()
		h.click(approver, card, "mb_approve")
		h.thread(card, "eu: jane@example.com: disabled")
		h.audit("executed", "jane@example.com", "hand-over not done: could not be read", "hand-over: moved 0, archived 0, left 0, failed 0")
		for _, a := range []metabasetest.Alert{hers, creatorless} {
			if got, _ := h.eu.AlertByID(a.ID); got.CreatorID != a.CreatorID || got.Archived {
				t.Errorf("alert %q was handed over (creator %d, archived %v)", a.CardName, got.CreatorID, got.Archived)
			}
		}
		if n := h.eu.Count("POST", "/api/notification/admin/bulk"); n != 0 {
			t.Errorf("%d bulk calls, want none", n)
		}
	})
	t.Run("hands over nothing for a target not found", func(t *testing.T) {
		t.Parallel()
		h := newMultiHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
		bob := h.eu.AddUser(metabasetest.User{Email: "bob@example.com", FirstName: "Bob", Active: true})
		creatorless := h.eu.AddAlert(metabasetest.Alert{CardID: 13, CardName: "Nobody's alert"})
		h.start()
		h.eu.FailNext("", "/api/user", -1, 503, "Service Unavailable")

		h.command(requester, "disable jane@example.com handover eu:"+strconv.Itoa(bob.ID)+" Left the company")
		card := h.card("jane@example.com")
		h.eu.ClearFailures()
		h.click(approver, card, "mb_approve")
		h.thread(card, "eu: jane@example.com: skipped: not found in eu")
		h.audit("executed", "jane@example.com", "hand-over: moved 0, archived 0, left 0, failed 0")
		if a, _ := h.eu.AlertByID(creatorless.ID); a.CreatorID != 0 || a.Archived {
			t.Errorf("the alert without a creator was handed over (creator %d, archived %v)", a.CreatorID, a.Archived)
		}
	})
	// The successor checks a request's targets get when it is made: not the target, still active.
	for _, tt := range []struct {
		name, successor, why string
		leaves               bool // the successor is deactivated after the request was made
	}{
		{"refuses the target as successor", "jane", "is the successor of this hand-over", false},
		{"refuses a successor deactivated since", "bob", "bob@example.com, who takes over their items, is no longer active", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newMultiHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
			users := map[string]metabasetest.User{"jane": addJaneTo(h.eu),
				"bob": h.eu.AddUser(metabasetest.User{Email: "bob@example.com", FirstName: "Bob", Active: true})}
			hers := h.eu.AddAlert(metabasetest.Alert{CardID: 12, CardName: "Revenue drop", CreatorID: users["jane"].ID})
			creatorless := h.eu.AddAlert(metabasetest.Alert{CardID: 13, CardName: "Nobody's alert"})
			h.start()
			h.eu.FailNext("", "/api/user", -1, 503, "Service Unavailable")

			h.command(requester, "disable jane@example.com handover eu:"+strconv.Itoa(users[tt.successor].ID)+" Left the company")
			card := h.card("jane@example.com")
			h.eu.ClearFailures()
			if tt.leaves {
				deactivateIn(t, h.eu, users["bob"].ID)
			}
			h.click(approver, card, "mb_approve")
			h.thread(card, "eu: jane@example.com: failed: "+tt.why)
			if u, _ := h.eu.UserByID(users["jane"].ID); !u.Active {
				t.Error("jane was disabled although her successor could not take over")
			}
			for _, a := range []metabasetest.Alert{hers, creatorless} {
				if got, _ := h.eu.AlertByID(a.ID); got.CreatorID != a.CreatorID || got.Archived {
					t.Errorf("alert %q was handed over (creator %d, archived %v)", a.CardName, got.CreatorID, got.Archived)
				}
			}
			if n := h.eu.Count("POST", "/api/notification/admin/bulk"); n != 0 {
				t.Errorf("%d bulk calls, want none", n)
			}
		})
	}
}

// deactivateIn deactivates user id in s through its API, as an admin would outside the bot.
func deactivateIn(t *testing.T, s *metabasetest.Server, id int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "DELETE", s.URL()+"/api/user/"+strconv.Itoa(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", metabasetest.AdminAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE user %d: %d", id, resp.StatusCode)
	}
}
