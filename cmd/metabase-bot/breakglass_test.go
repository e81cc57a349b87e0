package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Break-glass (issue 27), end to end: the real run() against the fake Slack and Metabase.

// incidentGroup holds the responders; the requester is the one responder.
const incidentGroup = "SINCIDENT"

// breakGlassHarness is a harness with break-glass on and the requester a responder.
func breakGlassHarness(t *testing.T, overrides map[string]string) *harness {
	t.Helper()
	env := map[string]string{"INCIDENT_GROUP": incidentGroup}
	for k, v := range overrides {
		env[k] = v
	}
	h := newHarness(t, env)
	h.slack.SetUserGroup(incidentGroup, requester)
	return h
}

// bgCard waits for the break-glass card naming text, with its review buttons.
func (h *harness) bgCard(text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == opsChannel && m.ThreadTS == "" && m.HasAction("mb_bg_confirm") && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		h.t.Fatalf("no break-glass card with %q: %v\nmessages: %v\nephemerals: %v\nlogs:\n%s", text, err, texts(h.slack.Messages()), texts(h.slack.Ephemerals()), h.logs.String())
	}
	return m
}

// reviewed waits until the card shows text and offers neither review button.
func (h *harness) reviewed(card slacktest.Message, text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.TS == card.TS && !m.HasAction("mb_bg_confirm") && !m.HasAction("mb_bg_reverse") && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		cur, _ := h.slack.Message(card.Channel, card.TS)
		h.t.Fatalf("card never showed %q without review buttons: %v\ncard now: %s\nlogs:\n%s", text, err, cur.AllText(), h.logs.String())
	}
	return m
}

// TestBreakGlassDisablesAtOnce: a responder's `disable now` disables with no click, within two
// Metabase round trips of the command (the lookup, then the DELETE); the card and the audit say
// break-glass; a non-responder's is refused privately and writes nothing; `now` after the users is
// refused with the grammar.
func TestBreakGlassDisablesAtOnce(t *testing.T) {
	t.Parallel()
	h := breakGlassHarness(t, nil)
	jane := h.addJane()
	h.mb.AddUser(metabasetest.User{Email: "joe@example.com", FirstName: "Joe", Active: true})
	h.start()
	st := h.openStore()

	before := len(h.mb.Requests())
	h.command(requester, "disable now jane@example.com Laptop stolen")
	card := h.bgCard("jane@example.com")
	if err := h.mb.WaitForRequests(h.ctx(), "DELETE", "/api/user/"+strconv.Itoa(jane.ID), 1); err != nil {
		t.Fatalf("no DELETE: %v", err)
	}
	var trips []string
	for _, r := range h.mb.Requests()[before:] {
		trips = append(trips, r.Method+" "+r.Path)
		if r.Method == "DELETE" {
			break
		}
	}
	if len(trips) > 2 {
		t.Errorf("the DELETE was Metabase round trip %d of the command, want at most 2: %v", len(trips), trips)
	}
	t.Logf("Metabase round trips up to the DELETE: %v", trips)
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active")
	}
	text := card.AllText()
	for _, want := range []string{"⚡ break-glass", "Laptop stolen", "<!subteam^" + approverGroup + ">", "<@" + requester + ">"} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}
	if card.HasAction("mb_approve") {
		t.Error("the break-glass card offers Approve")
	}
	if !strings.HasPrefix(card.Text, "⚡ break-glass") {
		t.Errorf("notification text %q is not marked", card.Text)
	}
	h.audit("*break-glass*", "jane@example.com", "by <@"+requester+">")
	h.audit("*executed*", "jane@example.com", "by <@"+requester+">", "⚡ break-glass")
	h.drained(st)

	// Not a responder: refused privately, nothing stored, nothing posted, Metabase untouched.
	messages, calls := len(h.slack.Messages()), h.mb.Count("DELETE", "")
	h.command(outsider, "disable now joe@example.com odd queries at 3 am")
	h.ephemeral(outsider, "Only incident responders")
	// `now` after the users is the grammar's, not the start of a reason.
	h.command(requester, "disable joe@example.com now odd queries")
	h.ephemeral(requester, "`now` goes right after `disable`")
	h.drained(st)
	if n := len(h.slack.Messages()); n != messages {
		t.Errorf("refused commands posted %d messages: %v", n-messages, texts(h.slack.Messages()[messages:]))
	}
	if n := h.mb.Count("DELETE", ""); n != calls {
		t.Errorf("refused commands called DELETE %d times", n-calls)
	}
	joe := h.mustUser("joe@example.com")
	if rs, err := st.ByTarget(h.ctx(), approval.UserKey{Instance: approval.DefaultInstance, ID: joe.ID}); err != nil || len(rs) != 0 || !joe.Active {
		t.Errorf("refused commands stored %d requests for joe (%v), active %v", len(rs), err, joe.Active)
	}
}

// TestBreakGlassConfirm: the responder's own Confirm is refused; an approver's confirms once, and
// both buttons go (Reverse after Confirm is refused by the core too: access's TestBreakGlassReview).
func TestBreakGlassConfirm(t *testing.T) {
	t.Parallel()
	h := breakGlassHarness(t, nil)
	h.addJane()
	h.slack.SetUserGroup(approverGroup, approver, approver2, requester) // the responder is an approver too
	h.start()
	st := h.openStore()
	h.command(requester, "disable now jane@example.com Laptop stolen")
	card := h.bgCard("jane@example.com")

	h.click(requester, card, "mb_bg_confirm")
	h.ephemeral(requester, "another approver must review it")
	h.click(approver, card, "mb_bg_confirm")
	h.reviewed(card, "Reviewed: confirmed")
	h.audit("*reviewed: confirmed*", "by <@"+approver+">", "⚡ break-glass")
	h.drained(st)
	if n := h.audits("reviewed: confirmed"); n != 1 {
		t.Errorf("%d confirmed lines, want 1", n)
	}
	if h.active("jane@example.com") || h.mb.Count("PUT", "/api/user/") != 0 {
		t.Error("a confirmed action re-enabled jane")
	}

	// history and the audit export show the action and its review.
	hist := h.reply(approver, "history jane@example.com", "jane").AllText()
	for _, want := range []string{"⚡ break-glass", "reviewed: confirmed by <@" + approver + ">"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
	code, out, errOut := runCLI(t, h.env["DATABASE_URL"], "audit", "export", "--since", time.Now().UTC().Add(-24*time.Hour).Format("2006-01-02"))
	if code != 0 {
		t.Fatalf("audit export exited %d: %s", code, errOut)
	}
	for _, want := range []string{`"action":"break-glass"`, `"action":"reviewed: confirmed","actor":"` + approver + `","break_glass":true`, `"break_glass":true`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit export lacks %s:\n%s", want, out)
		}
	}
}

// TestBreakGlassLimit: the sixth user in an hour becomes a pending request, and the responder hears why.
func TestBreakGlassLimit(t *testing.T) {
	t.Parallel()
	h := breakGlassHarness(t, nil)
	var emails []string
	for i := range 6 {
		e := "u" + strconv.Itoa(i) + "@example.com"
		h.mb.AddUser(metabasetest.User{Email: e, FirstName: "U" + strconv.Itoa(i), Active: true})
		emails = append(emails, e)
	}
	h.start()
	h.command(requester, "disable now "+strings.Join(emails[:5], " ")+" compromised laptops")
	h.bgCard(emails[0])
	h.eventually("five users disabled", func() bool { return h.mb.Count("DELETE", "/api/user/") == 5 })
	h.command(requester, "disable now "+emails[5]+" one more")
	h.ephemeral(requester, "Break-glass limit reached (5 users per hour): posted for approval instead.")
	pending := h.card(emails[5])
	if strings.Contains(pending.AllText(), "⚡ break-glass") {
		t.Errorf("the fallback request is marked break-glass:\n%s", pending.AllText())
	}
	if !h.active(emails[5]) {
		t.Error("the sixth user was disabled without approval")
	}
}

// TestBreakGlassUnreviewed: reminders at half the window and shortly before its end, then one
// `unreviewed` audit line at its end; the users stay disabled and Confirm still works after.
func TestBreakGlassUnreviewed(t *testing.T) {
	t.Parallel()
	// The minimum REVIEW_WINDOW: reminders at 5s and 9s (REMINDER_BEFORE_EXPIRY capped at a tenth),
	// the flag at 10s.
	h := breakGlassHarness(t, map[string]string{"REVIEW_WINDOW": "10s"})
	h.addJane()
	h.start()
	st := h.openStore()
	h.command(requester, "disable now jane@example.com Laptop stolen")
	card := h.bgCard("jane@example.com")
	end := h.requestOf(st, card).BreakGlass.ReviewBy
	ctx, cancel := contextUntil(end.Add(5 * time.Second))
	defer cancel()
	if _, err := h.slack.WaitMessage(ctx, func(m slacktest.Message) bool {
		return m.Channel == auditChannel && strings.Contains(m.Text, "*unreviewed*")
	}); err != nil {
		t.Fatalf("no unreviewed line within 5s of the window's end: %v", err)
	}
	if now := time.Now(); now.Before(end) {
		t.Fatalf("flagged at %s, before the window's end %s", now, end)
	}
	h.drained(st)
	if n := h.audits("unreviewed"); n != 1 {
		t.Errorf("%d unreviewed lines, want 1", n)
	}
	if n := h.inThread(card, "still needs a review"); n != 2 {
		t.Errorf("%d review reminders, want 2\nmessages: %v", n, texts(h.slack.Messages()))
	}
	if h.active("jane@example.com") {
		t.Error("jane was re-enabled at the window's end")
	}
	h.click(approver, card, "mb_bg_confirm")
	h.reviewed(card, "Reviewed: confirmed")
}

// reversal is the stored enable that reversed the break-glass action on card.
func (h *harness) reversal(st *store.Store, card slacktest.Message) approval.Request {
	h.t.Helper()
	r, err := st.Get(h.ctx(), h.requestOf(st, card).ID+"-X")
	if err != nil {
		h.t.Fatalf("no reversal: %v", err)
	}
	return r
}

// TestBreakGlassReviewAcrossReplicas: the same Confirm or Reverse click delivered to both
// replicas takes effect once: one audit line, and for Reverse one reactivation.
func TestBreakGlassReviewAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ action, audit, card string }{
		{"mb_bg_confirm", "reviewed: confirmed", "Reviewed: confirmed"},
		{"mb_bg_reverse", "reviewed: reversed", "Reviewed: reversed"},
	} {
		t.Run(tt.action, func(t *testing.T) {
			t.Parallel()
			h := breakGlassHarness(t, map[string]string{"DATABASE_URL": postgresDatabaseURL(t)})
			h.addJane()
			h.startReplicas(2)
			st := h.openStore()
			h.command(requester, "disable now jane@example.com Laptop stolen")
			card := h.bgCard("jane@example.com")
			h.mb.SetLatency("PUT", "/api/user/:id/reactivate", 200*time.Millisecond)
			id, n, err := h.slack.ClickAll(h.ctx(), slacktest.Click{UserID: approver, ChannelID: card.Channel, MessageTS: card.TS, ActionID: tt.action})
			if err != nil || n != 2 {
				t.Fatalf("ClickAll reached %d sockets (%v), want 2", n, err)
			}
			h.eventually("both replicas to ack", func() bool { return len(h.slack.Acks(id)) == 2 })
			h.reviewed(card, tt.card)
			h.audit("*"+tt.audit+"*", "by <@"+approver+">")
			if tt.action == "mb_bg_reverse" {
				h.eventually("the reversal to finish", func() bool { return h.reversal(st, card).State == approval.Succeeded })
			}
			h.drained(st)
			if n := h.audits(tt.audit); n != 1 {
				t.Errorf("%d %q lines, want 1", n, tt.audit)
			}
			reactivations := h.mb.Count("PUT", "/api/user/"+strconv.Itoa(h.mustUser("jane@example.com").ID)+"/reactivate")
			switch tt.action {
			case "mb_bg_reverse":
				if reactivations != 1 || !h.active("jane@example.com") {
					t.Errorf("%d reactivations, jane active %v; want one, active", reactivations, h.active("jane@example.com"))
				}
				if r := h.reversal(st, card); r.Attempts != 1 {
					t.Errorf("the reversal ran %d times", r.Attempts)
				}
			default:
				if reactivations != 0 || h.active("jane@example.com") {
					t.Errorf("a confirmation re-enabled jane (%d reactivations)", reactivations)
				}
			}
		})
	}
}

// TestBreakGlassReviewAcrossSIGKILL: a Confirm whose card update is in flight, and a Reverse whose
// reactivation Metabase applied but whose reply the killed process never read, each take effect
// once after a restart.
func TestBreakGlassReviewAcrossSIGKILL(t *testing.T) {
	t.Parallel()
	t.Run("confirm", func(t *testing.T) {
		t.Parallel()
		h, st := crashHarness(t, "sqlite")
		h.env["INCIDENT_GROUP"] = incidentGroup
		h.slack.SetUserGroup(incidentGroup, requester)
		h.addJane()
		first := h.spawn()
		h.command(requester, "disable now jane@example.com Laptop stolen")
		card := h.bgCard("jane@example.com")
		h.audit("*executed*", "jane@example.com")
		h.drained(st)
		release := h.slack.Hold("chat.update")
		h.click(approver, card, "mb_bg_confirm")
		if err := h.slack.WaitHeld(h.ctx(), "chat.update", 1); err != nil {
			t.Fatalf("the confirmation never reached the card: %v", err)
		}
		h.kill(first, 0)
		if err := h.slack.WaitHeld(h.ctx(), "chat.update", 0); err != nil {
			t.Fatal(err)
		}
		release()
		if r := h.requestOf(st, card); r.BreakGlass.Review != approval.ReviewConfirmed {
			t.Fatalf("after the crash the review is %q, want confirmed", r.BreakGlass.Review)
		}
		h.spawn()
		h.reviewed(card, "Reviewed: confirmed")
		h.audit("*reviewed: confirmed*", "by <@"+approver+">")
		h.drained(st)
		if n := h.audits("reviewed: confirmed"); n != 1 {
			t.Errorf("%d confirmed lines, want 1", n)
		}
	})
	t.Run("reverse", func(t *testing.T) {
		t.Parallel()
		h, st := crashHarness(t, "sqlite")
		h.env["INCIDENT_GROUP"] = incidentGroup
		h.slack.SetUserGroup(incidentGroup, requester)
		jane := h.addJane()
		first := h.spawn()
		h.command(requester, "disable now jane@example.com Laptop stolen")
		card := h.bgCard("jane@example.com")
		h.audit("*executed*", "jane@example.com")
		h.drained(st)
		reactivate := "/api/user/" + strconv.Itoa(jane.ID) + "/reactivate"
		release := h.mb.HoldReply("PUT", "/api/user/:id/reactivate")
		h.click(approver, card, "mb_bg_reverse")
		if err := h.mb.WaitForRequests(h.ctx(), "PUT", reactivate, 1); err != nil {
			t.Fatalf("no reactivation: %v", err)
		}
		h.kill(first, 0)
		release()
		h.eventually("Metabase to have reactivated jane", func() bool { return h.active("jane@example.com") })
		if r := h.reversal(st, card); r.State != approval.Executing {
			t.Fatalf("after the crash the reversal is %s, want executing", r.State)
		}
		h.spawn()
		h.eventually("the reversal to finish", func() bool { return h.reversal(st, card).State == approval.Succeeded })
		h.reviewed(card, "Reviewed: reversed")
		h.audit("*reviewed: reversed*", "by <@"+approver+">")
		h.drained(st)
		// The enable path sends the reactivation again on a takeover and reads Metabase's "already
		// active" refusal as done, as the automatic return does: Metabase changed jane once.
		applied := 0
		for _, r := range h.mb.Requests() {
			if r.Method == "PUT" && r.Path == reactivate && r.Status/100 == 2 {
				applied++
			}
		}
		if applied != 1 {
			t.Errorf("%d reactivations applied, want exactly 1", applied)
		}
		if n := h.audits("reviewed: reversed"); n != 1 {
			t.Errorf("%d reversed lines, want 1", n)
		}
		if r := h.reversal(st, card); r.Attempts != 2 {
			t.Errorf("the reversal ran %d times, want 2 (the killed one and the takeover)", r.Attempts)
		}
	})
}

// TestBreakGlassGroupUnreadable: when Slack does not answer the read of INCIDENT_GROUP, the
// command becomes a pending request and the responder hears why; nothing is disabled.
func TestBreakGlassGroupUnreadable(t *testing.T) {
	t.Parallel()
	h := breakGlassHarness(t, nil)
	h.addJane()
	h.start()
	h.slack.FailNext("usergroups.users.list", 1, "fatal_error")
	h.command(requester, "disable now jane@example.com Laptop stolen")
	h.ephemeral(requester, "could not read the incident group")
	card := h.card("jane@example.com")
	if strings.Contains(card.AllText(), "⚡ break-glass") || !h.active("jane@example.com") {
		t.Fatalf("an unreadable group broke glass anyway (active %v):\n%s", h.active("jane@example.com"), card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
}

// TestBreakGlassRevokesKeysAtOnce: `disable now … revoke-keys` deletes the keys the leaver last
// changed in the same action, with no click, never the bot's own key, and its card says that
// Reverse does not bring them back. Before, the option was parsed and then dropped: the user was
// disabled and their keys kept working.
func TestBreakGlassRevokesKeysAtOnce(t *testing.T) {
	t.Parallel()
	h := breakGlassHarness(t, nil)
	seedLeaver(h)
	h.start()
	h.command(requester, "disable now lee@example.com revoke-keys Laptop stolen")
	h.bgCard("lee@example.com")
	h.audit("break-glass", "lee@example.com", "API keys revoked 2, not revoked 1")
	if got := keyNames(h); !slices.Equal(got, []string{"anns-key", "metabase-bot"}) {
		t.Errorf("keys left %v, want the colleague's and the bot's", got)
	}
	if n := h.mb.Count("DELETE", "/api/api-key/"); n != 2 {
		t.Errorf("%d key DELETEs, want 2", n)
	}
	card := h.bgCard("does not restore the API keys")
	if !strings.Contains(card.AllText(), "Reverse re-enables the users only") {
		t.Errorf("the card does not say Reverse leaves the keys revoked:\n%s", card.AllText())
	}
}
