package main

import (
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// secChannel is a second channel where requests are made, to show the desk spans channels.
const secChannel = "CSEC"

// newHomeHarness is a harness whose Home tabs refresh every second, so a refresh after a
// change is seen without waiting the 10 s default.
func newHomeHarness(t *testing.T, overrides map[string]string) *harness {
	t.Helper()
	env := map[string]string{"HOME_REFRESH_EVERY": "1s"}
	for k, v := range overrides {
		env[k] = v
	}
	h := newHarness(t, env)
	h.slack.AddChannel(secChannel, "security", true, requester, approver, approver2, outsider)
	return h
}

// openHome opens user's Home tab and waits until it satisfies pred.
func (h *harness) openHome(user string, pred func(slacktest.HomeView) bool) slacktest.HomeView {
	h.t.Helper()
	ctx := h.ctx()
	id, err := h.slack.OpenHome(ctx, user)
	if err != nil {
		h.t.Fatalf("open Home: %v", err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		h.t.Fatalf("app_home_opened not acked: %v", err)
	}
	return h.home(user, pred)
}

// home waits until user's Home satisfies pred.
func (h *harness) home(user string, pred func(slacktest.HomeView) bool) slacktest.HomeView {
	h.t.Helper()
	v, err := h.slack.WaitHome(h.ctx(), user, pred)
	if err != nil {
		cur, _ := h.slack.Home(user)
		h.t.Fatalf("the Home of %s never showed what was expected: %v\nHome now: %s\nlogs:\n%s", user, err, cur.Text(), h.logs.String())
	}
	return v
}

func TestHomeApproverDecidesAcrossChannels(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.addJane()
	h.mb.AddUser(metabasetest.User{Email: "sam@example.com", FirstName: "Sam", LastName: "Roe", Active: true})
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	first := h.card("jane@example.com")
	h.sendCommand(slacktest.SlashCommand{UserID: approver2, ChannelID: secChannel, Text: "disable sam@example.com Contract ended"})
	second, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == secChannel && m.HasAction("mb_approve") && strings.Contains(m.AllText(), "sam@example.com")
	})
	if err != nil {
		t.Fatalf("no card in the second channel: %v", err)
	}
	id1, id2 := requestID(t, first), requestID(t, second)

	v := h.openHome(approver, func(v slacktest.HomeView) bool {
		return strings.Contains(v.Text(), id1) && strings.Contains(v.Text(), id2)
	})
	if i1, i2 := strings.Index(v.Text(), id1), strings.Index(v.Text(), id2); i1 > i2 {
		t.Errorf("the Home lists %s before the older %s", id2, id1)
	}
	for _, id := range []string{id1, id2} {
		if !v.HasAction("mb_home_"+id, "mb_approve") || !v.HasAction("mb_home_"+id, "mb_deny") {
			t.Errorf("no Approve and Deny for %s on the approver's Home:\n%s", id, v.Text())
		}
	}
	if !strings.Contains(v.Text(), "slack.com/archives/") {
		t.Errorf("the Home has no link to the cards:\n%s", v.Text())
	}

	// The requester of the second request sees it waiting, without buttons to decide it.
	v2 := h.openHome(approver2, func(v slacktest.HomeView) bool { return strings.Contains(v.Text(), id2) })
	if v2.HasAction("mb_home_"+id2, "mb_approve") {
		t.Errorf("the Home of %s offers Approve on their own request", approver2)
	}

	ctx := h.ctx()
	env, err := h.slack.ClickHome(ctx, slacktest.HomeClick{UserID: approver, BlockID: "mb_home_" + id1, ActionID: "mb_approve"})
	if err != nil {
		t.Fatal(err)
	}
	// A second click at once, as an impatient person sends it before the Home is redrawn (the
	// button may already be gone, which the fake reports as an error: nothing was sent then).
	again, againErr := h.slack.ClickHome(ctx, slacktest.HomeClick{UserID: approver, BlockID: "mb_home_" + id1, ActionID: "mb_approve"})
	for _, e := range []string{env, again} {
		if e == "" || (e == again && againErr != nil) {
			continue
		}
		if _, err := h.slack.WaitAck(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	h.cardState(first, "Approved")
	h.thread(first, "jane@example.com: disabled")
	// The Home no longer offers the decided request's buttons.
	h.home(approver, func(v slacktest.HomeView) bool { return !v.HasAction("mb_home_"+id1, "mb_approve") })
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
	// The audit line is delivered after the thread reply: wait for it, then count.
	h.audit("executed", "jane@example.com")
	if n := h.count(func(m slacktest.Message) bool {
		return m.Channel == auditChannel && strings.Contains(m.Text, "executed") && strings.Contains(m.Text, "jane@example.com")
	}); n != 1 {
		t.Errorf("%d executions audited, want 1", n)
	}
}

func TestHomeNonApproverHasNoDecisionButtons(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	id := requestID(t, h.card("jane@example.com"))

	reads := h.slack.Calls("usergroups.users.list")
	own := h.openHome(requester, func(v slacktest.HomeView) bool { return strings.Contains(v.Text(), id) })
	if own.HasAction("", "mb_approve") || own.HasAction("", "mb_deny") {
		t.Errorf("the requester's Home offers decision buttons:\n%s", own.Text())
	}
	if !own.HasAction("mb_home_"+id, "mb_cancel") {
		t.Errorf("the requester's Home does not offer to cancel their request:\n%s", own.Text())
	}
	other := h.openHome(outsider, func(v slacktest.HomeView) bool { return v.Publishes > 0 })
	// Homes drawn together share one read of the approver group (Tier 2), which clicks need.
	if n := h.slack.Calls("usergroups.users.list") - reads; n > 1 {
		t.Errorf("drawing two Homes read the approver group %d times, want at most once", n)
	}
	if strings.Contains(other.Text(), id) || other.HasAction("", "mb_approve") {
		t.Errorf("a non-approver's Home shows someone else's request:\n%s", other.Text())
	}
	// A forged click from a Home that never showed the request is refused.
	ctx := h.ctx()
	if _, err := h.slack.ClickHome(ctx, slacktest.HomeClick{UserID: outsider, ActionID: "mb_approve"}); err == nil {
		t.Error("the fake found an Approve button on the outsider's Home")
	}
}

func TestHomeShowsScheduledReturn(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.addJane()
	h.start()
	card, _, _ := h.leave("jane@example.com", time.Hour)
	id := requestID(t, card)
	v := h.openHome(requester, func(v slacktest.HomeView) bool { return strings.Contains(v.Text(), id+"-R") })
	if !strings.Contains(v.Text(), "scheduled returns") {
		t.Errorf("the requester's Home does not list the return under scheduled returns:\n%s", v.Text())
	}
}

func TestHomeRefreshesAfterDecisionOnCard(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.addJane()
	h.start()
	// Opened before there is anything: a new request waiting for approvers appears on it.
	h.openHome(approver2, func(v slacktest.HomeView) bool { return strings.Contains(v.Text(), "Nothing is waiting") })
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	id := requestID(t, card)
	before := h.home(approver2, func(v slacktest.HomeView) bool { return v.HasAction("mb_home_"+id, "mb_approve") })

	h.click(approver, card, "mb_approve")
	h.cardState(card, "Approved")
	after := h.home(approver2, func(v slacktest.HomeView) bool {
		return v.Publishes > before.Publishes && !v.HasAction("mb_home_"+id, "mb_approve")
	})
	if strings.Contains(after.Text(), "Waiting for a decision") && strings.Contains(after.Text(), id) {
		t.Errorf("the decided request is still listed as waiting:\n%s", after.Text())
	}
}

func TestHomeTabOffLogsOnceAndPendingWorks(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.slack.SetHomeTab(false)
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	id := requestID(t, h.card("jane@example.com"))

	ctx := h.ctx()
	open := func(user string) {
		t.Helper()
		env, err := h.slack.OpenHome(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.slack.WaitAck(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	open(approver)
	h.waitLog(ctx, "Home tab is off in the Slack app: use /metabase pending")
	open(approver2)
	open(approver)
	for strings.Count(h.logs.String(), "Not publishing a Home tab") < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("the later opens were not handled:\n%s", h.logs.String())
		case <-time.After(20 * time.Millisecond): // polling a log buffer; nothing to wait on
		}
	}
	h.command(approver, "pending")
	reply := h.ephemeral(approver, id)
	if strings.Contains(string(reply.Blocks), "mb_approve") {
		t.Errorf("the pending reply carries decision buttons: %s", reply.Blocks)
	}
	h.sendCommand(slacktest.SlashCommand{UserID: requester, ChannelID: secChannel, Text: "pending"})
	h.ephemeral(requester, "Your open requests")
	if n := strings.Count(h.logs.String(), "Home tab is off in the Slack app: use /metabase pending"); n != 1 {
		t.Errorf("the Home tab being off was logged %d times, want once\nlogs:\n%s", n, h.logs.String())
	}
	if n := h.slack.Calls("views.publish"); n != 1 {
		t.Errorf("views.publish called %d times, want 1: publishing stops at not_enabled", n)
	}
}

// TestHomeClickIsCheckedAtClickTime: buttons drawn for an approver do not outlive their
// membership: removed from the group, their click from the Home is refused in their messages with
// the bot, and nothing is decided.
func TestHomeClickIsCheckedAtClickTime(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	id := requestID(t, card)
	h.openHome(approver2, func(v slacktest.HomeView) bool { return v.HasAction("mb_home_"+id, "mb_approve") })

	h.slack.SetUserGroup(approverGroup, approver)
	ctx := h.ctx()
	env, err := h.slack.ClickHome(ctx, slacktest.HomeClick{UserID: approver2, BlockID: "mb_home_" + id, ActionID: "mb_approve"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitMessage(ctx, func(m slacktest.Message) bool {
		return m.Channel == "D"+approver2 && strings.Contains(m.AllText(), "approver")
	}); err != nil {
		t.Fatalf("no refusal in the messages of %s: %v\nmessages: %v", approver2, err, texts(h.slack.Messages()))
	}
	if cur, _ := h.slack.Message(card.Channel, card.TS); !cur.HasAction("mb_approve") {
		t.Error("the card lost its buttons after a refused click")
	}
	if n := h.mb.Count("DELETE", "/api/user/"); n != 0 {
		t.Errorf("DELETE calls = %d after a refused click, want 0", n)
	}
	// The click's own read of the group is what the Home is redrawn from: no buttons any more.
	h.home(approver2, func(v slacktest.HomeView) bool { return !v.HasAction("mb_home_"+id, "mb_approve") })
}

// TestHomeDenyOpensTheCardsForm: Approve on the Home asks for the card's confirmation, and Deny
// opens the card's form, whose submission denies the request and updates its card.
func TestHomeDenyOpensTheCardsForm(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	id := requestID(t, card)
	v := h.openHome(approver, func(v slacktest.HomeView) bool { return v.HasAction("mb_home_"+id, "mb_deny") })
	if !strings.Contains(v.Text(), `"confirm"`) || !strings.Contains(v.Text(), "Disable Metabase access for jane@example.com?") {
		t.Errorf("Approve on the Home has not the card's confirmation:\n%s", v.Text())
	}
	ctx := h.ctx()
	env, err := h.slack.ClickHome(ctx, slacktest.HomeClick{UserID: approver, BlockID: "mb_home_" + id, ActionID: "mb_deny"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
	form, err := h.slack.WaitView(ctx, func(v slacktest.View) bool { return v.CallbackID == "mb_deny_form" && v.UserID == approver })
	if err != nil {
		t.Fatalf("deny form not opened from the Home: %v", err)
	}
	if _, err := h.slack.SubmitView(ctx, slacktest.ViewSubmission{UserID: approver, ViewID: form.ID,
		Values: map[string]map[string]slacktest.InputValue{"mb_form_reason": {"reason": {Value: "Still needed"}}}}); err != nil {
		t.Fatal(err)
	}
	h.cardState(card, "Denied")
	h.home(approver, func(v slacktest.HomeView) bool { return !strings.Contains(v.Text(), id) })
}

// TestHomeRefreshIsSpacedPerPerson: opening the Home again and changes to what it shows, all
// within HOME_REFRESH_EVERY of the last publish, are drawn once, at the end of that interval.
func TestHomeRefreshIsSpacedPerPerson(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, map[string]string{"HOME_REFRESH_EVERY": "2s"})
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	id := requestID(t, card)
	first := h.openHome(approver2, func(v slacktest.HomeView) bool { return v.HasAction("mb_home_"+id, "mb_approve") })
	ctx := h.ctx()
	env, err := h.slack.OpenHome(ctx, approver2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
	h.click(approver, card, "mb_approve")
	h.cardState(card, "Approved")
	again := h.home(approver2, func(v slacktest.HomeView) bool { return v.Publishes >= 2 })
	// Measured between the two publishes' arrivals at Slack, not from when this test saw the
	// first (which a loaded machine delays); what the network adds to one and not the other is
	// the only slack allowed.
	if elapsed := again.PublishedAt.Sub(first.PublishedAt); elapsed < 1800*time.Millisecond {
		t.Errorf("the Home was drawn again %s after the last time, want at least 2s", elapsed)
	}
	v := h.home(approver2, func(v slacktest.HomeView) bool { return !v.HasAction("mb_home_"+id, "mb_approve") })
	// The open and the decision's card updates (voted, approved, finished) come within one
	// interval: one publish, or two when the machine is slow enough for the execution to end in
	// the next interval; never one per event.
	if v.Publishes > 3 {
		t.Errorf("%d publishes, want the open and the changes folded", v.Publishes)
	}
}

// TestHomeDrawnByAnotherProcessIsRedrawn: the record of what was published is a process's own. A
// click on a Home drawn before a restart decides nothing, says so in the person's messages and
// draws the Home afresh; a click on the fresh Home counts.
func TestHomeDrawnByAnotherProcessIsRedrawn(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, nil)
	h.addJane()
	first := h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	id := requestID(t, card)
	old := h.openHome(approver, func(v slacktest.HomeView) bool { return v.HasAction("mb_home_"+id, "mb_approve") })
	first.stop(t)
	h.start()

	click := func() {
		t.Helper()
		ctx := h.ctx()
		env, err := h.slack.ClickHome(ctx, slacktest.HomeClick{UserID: approver, BlockID: "mb_home_" + id, ActionID: "mb_approve"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.slack.WaitAck(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	click()
	if _, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == "D"+approver && strings.Contains(m.AllText(), "out of date")
	}); err != nil {
		t.Fatalf("no word of the stale Home: %v\nlogs:\n%s", err, h.logs.String())
	}
	h.home(approver, func(v slacktest.HomeView) bool { return v.Publishes > old.Publishes })
	if n := h.mb.Count("DELETE", "/api/user/"); n != 0 {
		t.Fatalf("DELETE calls = %d after a click on a stale Home, want 0", n)
	}
	click()
	h.cardState(card, "Approved")
	h.thread(card, "jane@example.com: disabled")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
}

// TestPendingFollowsWhoMayRequestWhere: approvers may list what waits in any channel; others only
// where ALLOWED_CHANNELS lets them make requests, and only their own requests.
func TestPendingFollowsWhoMayRequestWhere(t *testing.T) {
	t.Parallel()
	h := newHomeHarness(t, map[string]string{"ALLOWED_CHANNELS": opsChannel})
	h.addJane()
	h.mb.AddUser(metabasetest.User{Email: "sam@example.com", FirstName: "Sam", Active: true})
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	mine := requestID(t, h.card("jane@example.com"))
	h.command(outsider, "disable sam@example.com Contract ended")
	theirs := requestID(t, h.card("sam@example.com"))

	h.sendCommand(slacktest.SlashCommand{UserID: approver, ChannelID: secChannel, Text: "pending"})
	all := h.ephemeral(approver, mine)
	if !strings.Contains(all.AllText(), theirs) {
		t.Errorf("an approver's pending lacks %s:\n%s", theirs, all.AllText())
	}
	h.sendCommand(slacktest.SlashCommand{UserID: requester, ChannelID: secChannel, Text: "pending"})
	h.ephemeral(requester, "can only be made in <#"+opsChannel+">")
	h.command(requester, "pending")
	own := h.ephemeral(requester, mine)
	if strings.Contains(own.AllText(), theirs) {
		t.Errorf("a requester's pending shows someone else's request:\n%s", own.AllText())
	}
}
