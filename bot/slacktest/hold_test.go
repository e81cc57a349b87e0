package slacktest

import (
	"context"
	"testing"

	"github.com/slack-go/slack"
)

func TestHoldParksUntilRelease(t *testing.T) {
	fs := New(t)
	fs.AddChannel("C1", "ops", true)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	ctx := testCtx(t)
	release := fs.Hold("chat.postMessage")
	posted := make(chan error, 1)
	go func() {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("held", false))
		posted <- err
	}()
	if err := fs.WaitHeld(ctx, "chat.postMessage", 1); err != nil {
		t.Fatalf("call never parked: %v", err)
	}
	if n := len(fs.Messages()); n != 0 {
		t.Fatalf("%d messages stored while the call is held, want 0", n)
	}
	// Other methods pass.
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", "1.000001", slack.MsgOptionText("x", false)); err == nil || err.Error() != "message_not_found" {
		t.Fatalf("chat.update while chat.postMessage is held: %v, want message_not_found", err)
	}
	release()
	if err := <-posted; err != nil {
		t.Fatalf("released post failed: %v", err)
	}
	if _, err := fs.WaitMessage(ctx, func(m Message) bool { return m.Text == "held" }); err != nil {
		t.Fatal(err)
	}
	// After release, new calls pass at once.
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("after", false)); err != nil {
		t.Fatal(err)
	}
}

func TestHoldDropsCallsWhoseClientWentAway(t *testing.T) {
	fs := New(t)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	ctx := testCtx(t)
	release := fs.Hold("chat.postMessage")
	defer release()
	callCtx, cancel := context.WithCancel(ctx)
	posted := make(chan error, 1)
	go func() {
		_, _, err := api.PostMessageContext(callCtx, "C1", slack.MsgOptionText("lost", false))
		posted <- err
	}()
	if err := fs.WaitHeld(ctx, "chat.postMessage", 1); err != nil {
		t.Fatal(err)
	}
	cancel() // the client gives up, as a killed process does
	if err := <-posted; err == nil {
		t.Fatal("cancelled post succeeded")
	}
	if err := fs.WaitHeld(ctx, "chat.postMessage", 0); err != nil {
		t.Fatalf("dropped call still parked: %v", err)
	}
	release()
	if n := len(fs.Messages()); n != 0 {
		t.Fatalf("%d messages stored from a call whose client went away, want 0", n)
	}
}

func TestHoldReplyTakesEffectAndLosesTheAnswerOfAClientThatWentAway(t *testing.T) {
	fs := New(t)
	fs.AddChannel("C1", "ops", true)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	ctx := testCtx(t)
	release := fs.HoldReply("chat.postMessage")
	defer release()
	callCtx, cancel := context.WithCancel(ctx)
	posted := make(chan error, 1)
	go func() {
		_, _, err := api.PostMessageContext(callCtx, "C1", slack.MsgOptionText("accepted", false))
		posted <- err
	}()
	if err := fs.WaitHeld(ctx, "chat.postMessage", 1); err != nil {
		t.Fatalf("reply never parked: %v", err)
	}
	// Slack has the message already; only its answer waits.
	if _, err := fs.WaitMessage(ctx, func(m Message) bool { return m.Text == "accepted" }); err != nil {
		t.Fatal(err)
	}
	cancel() // the client dies before the answer arrives
	if err := <-posted; err == nil {
		t.Fatal("the client got an answer although it went away first")
	}
	if err := fs.WaitHeld(ctx, "chat.postMessage", 0); err != nil {
		t.Fatalf("the dropped reply is still parked: %v", err)
	}
	if n := len(fs.Messages()); n != 1 {
		t.Fatalf("%d messages stored, want the one Slack accepted", n)
	}

	// A client that waits gets its answer once released.
	done := make(chan string, 1)
	go func() {
		_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("answered", false))
		if err != nil {
			t.Error(err)
		}
		done <- ts
	}()
	if err := fs.WaitHeld(ctx, "chat.postMessage", 1); err != nil {
		t.Fatal(err)
	}
	release()
	m, err := fs.WaitMessage(ctx, func(m Message) bool { return m.Text == "answered" })
	if err != nil {
		t.Fatal(err)
	}
	if ts := <-done; ts != m.TS {
		t.Fatalf("answered ts %q, want the stored message's %q", ts, m.TS)
	}
}
