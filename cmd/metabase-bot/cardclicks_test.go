package main

import (
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// TestClickFromAnotherMessageWhileTheCardIsUnrecorded: a request whose card has no recorded ts
// (here its post is still in flight) takes no click from any other message in its channel, not
// even a card of the bot's whose button was made to name it: the clicker alone is told "That
// button does not belong to this request." and nothing is decided. Once the card is posted, a
// click on it works.
func TestClickFromAnotherMessageWhileTheCardIsUnrecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addJane()
	h.mb.AddUser(metabaseUser("joe@example.com"))
	h.start()
	st := h.openStore()
	h.command(requester, "disable joe@example.com Contract ended")
	joe := h.card("joe@example.com")
	h.audit("requested", "joe@example.com")
	h.drained(st)

	release := h.slack.Hold("chat.postMessage")
	h.command(requester, "disable jane@example.com Left the company")
	if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 1); err != nil {
		t.Fatalf("jane's card was never posted: %v", err)
	}
	rs, err := st.ByTarget(h.ctx(), approval.UserKey{ID: jane.ID})
	if err != nil || len(rs) != 1 || rs[0].MessageTS != "" {
		t.Fatalf("jane's requests = %+v (err %v), want one whose card is not recorded", rs, err)
	}
	janeID := rs[0].ID

	id, err := h.slack.ClickWithValue(h.ctx(), slacktest.Click{UserID: approver, ChannelID: joe.Channel, MessageTS: joe.TS, ActionID: "mb_approve"}, janeID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
		t.Fatal(err)
	}
	refusal := h.ephemeral(approver, "does not belong")
	if refusal.AllText() != "That button does not belong to this request." {
		t.Errorf("refusal = %q, want exactly %q", refusal.AllText(), "That button does not belong to this request.")
	}
	if r, err := st.Get(h.ctx(), janeID); err != nil || r.State != approval.Pending || len(r.Approvals) != 0 {
		t.Fatalf("after the click from joe's card jane's request is %s with %d approvals (err %v), want pending with none", r.State, len(r.Approvals), err)
	}

	release()
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1 (jane, from her own card)", n)
	}
	if !h.active("joe@example.com") {
		t.Error("joe was disabled, though nobody approved his request")
	}
}

// TestClickOnAnOrphanedCardLinksToTheLiveCard: the process dies after Slack accepted a card and
// before it recorded the card's ts (the one window no write can close), so the next process posts
// the card again once the claim's lease runs out. A click on the first copy decides nothing: the
// clicker alone is told it is out of date, with a link to the live card, where the click works.
func TestClickOnAnOrphanedCardLinksToTheLiveCard(t *testing.T) {
	t.Parallel()
	h, st := crashHarness(t, "sqlite")
	h.addJane()
	first := h.spawn()
	release := h.slack.HoldReply("chat.postMessage")
	h.command(requester, "disable jane@example.com Left the company")
	if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 1); err != nil {
		t.Fatalf("the card was never posted: %v", err)
	}
	orphan := h.card("jane@example.com") // Slack has it; the bot never learns its ts
	h.kill(first, 0)
	if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 0); err != nil {
		t.Fatal(err)
	}
	release()
	h.spawn()
	live, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == opsChannel && m.ThreadTS == "" && m.TS != orphan.TS && m.HasAction("mb_approve") && strings.Contains(m.AllText(), "jane@example.com")
	})
	if err != nil {
		t.Fatalf("the card was never posted again: %v\nlogs:\n%s", err, h.logs.String())
	}
	h.audit("requested", "jane@example.com")
	if r := h.requestOf(st, live); r.MessageTS != live.TS {
		t.Fatalf("recorded card %q, want the live card %q", r.MessageTS, live.TS)
	}

	h.click(approver, orphan, "mb_approve")
	refusal := h.ephemeral(approver, "out-of-date copy")
	if link := "/archives/" + opsChannel + "/p" + strings.Replace(live.TS, ".", "", 1); !strings.Contains(refusal.AllText(), link+"|") {
		t.Errorf("the refusal does not link to the live card (%s):\n%s", link, refusal.AllText())
	}
	if refusal.Channel != opsChannel || refusal.User != approver {
		t.Errorf("the refusal went to %s in %s, want only the clicker", refusal.User, refusal.Channel)
	}
	if r := h.requestOf(st, live); r.State != approval.Pending || len(r.Approvals) != 0 {
		t.Fatalf("after the click on the orphan the request is %s with %d approvals, want pending with none", r.State, len(r.Approvals))
	}

	h.click(approver, live, "mb_approve")
	h.thread(live, "jane@example.com: disabled")
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
}
