package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// Crash recovery: the bot runs as a real child process (this test binary re-executed) so it can be killed
// with SIGKILL at chosen points, with no hook in production code: the fakes park the call that follows the
// crash point (slacktest.Hold, metabasetest.Hold/HoldReply), the test kills the child while the call is
// parked, and a new child on the same SQLite file must finish the work exactly once.
//
// The one window no test here aims at, because no design closes it: Slack accepted a message and the process
// died before recording the delivery. The outbox is at-least-once, so that one message is posted again after
// the claim lease; for a card, TestClickOnAnOrphanedCardLinksToTheLiveCard (cardclicks_test.go) kills the
// process in that window (slacktest.HoldReply) and checks what a click on the first copy does. The crash
// points below sit just before Slack receives a message (the fake drops a parked call whose client died) or
// after the delivery was recorded (the outbox is drained first).

// helperEnv marks the re-executed test binary as a bot process.
const helperEnv = "BOT_HELPER_PROCESS"

// TestHelperProcess is not a test: the crash tests run it as their bot child process.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("the bot child process of the crash tests; it runs only when they start it")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, nil, env.ToMap(os.Environ()), os.Stderr, os.Stderr))
}

// child is one bot process.
type child struct {
	cmd  *exec.Cmd
	done chan error // receives Wait's result once
	err  error
	exit bool
}

// spawn starts a bot child process with h's environment and waits until it is connected to the fake Slack.
func (h *harness) spawn() *child {
	h.t.Helper()
	before := h.slack.Connections()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	environ := []string{helperEnv + "=1"}
	for k, v := range h.env {
		environ = append(environ, k+"="+v)
	}
	// Keep what the Go toolchain and race detector need; nothing else leaks into the bot's config.
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GORACE", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			environ = append(environ, k+"="+v)
		}
	}
	slices.Sort(environ)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start the bot process: %v", err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	h.t.Cleanup(func() { c.stop(h.t) })
	ctx := h.ctx()
	connected := make(chan error, 1)
	go func() { connected <- h.slack.WaitConnections(ctx, before+1) }()
	select {
	case err := <-connected:
		if err != nil {
			h.t.Fatalf("bot process did not connect to Slack: %v\nlogs:\n%s", err, h.logs.String())
		}
	case err := <-c.done:
		c.exit, c.err = true, err
		h.t.Fatalf("bot process exited before connecting: %v\nlogs:\n%s", err, h.logs.String())
	}
	return c
}

// wait returns the process's exit, waiting up to d.
func (c *child) wait(d time.Duration) (error, bool) {
	if c.exit {
		return c.err, true
	}
	select {
	case c.err = <-c.done:
		c.exit = true
		return c.err, true
	case <-time.After(d):
		return nil, false
	}
}

// kill sends SIGKILL and waits for the process to die and for the fake Slack to notice its socket is gone,
// so no envelope is written to a dead socket.
func (h *harness) kill(c *child, socketsLeft int) {
	h.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatalf("SIGKILL: %v", err)
	}
	err, ok := c.wait(10 * time.Second)
	var exitErr *exec.ExitError
	if !ok || !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		h.t.Fatalf("the bot process did not die of SIGKILL: %v (exited %v)", err, ok)
	}
	if err := h.slack.WaitSockets(h.ctx(), socketsLeft); err != nil {
		h.t.Fatalf("the killed process's socket is still open: %v", err)
	}
}

// stop ends a process still running at the end of a test like SIGTERM and checks it exits 0.
func (c *child) stop(t *testing.T) {
	if c.exit {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	err, ok := c.wait(40 * time.Second)
	if !ok {
		_ = c.cmd.Process.Kill()
		t.Errorf("the bot process did not stop within 40s of SIGTERM")
		return
	}
	if err != nil {
		t.Errorf("the bot process exited with %v after SIGTERM, want 0", err)
	}
}

// crashHarness is a harness whose bots are child processes on one database (a SQLite file, or a PostgreSQL
// schema of its own), with a short execution lease so a dead process's claims run out quickly.
func crashHarness(t *testing.T, backend string) (*harness, *store.Store) {
	env := map[string]string{"EXECUTION_LEASE": "5s"}
	if backend == "postgres" {
		// Before newHarness, so the schema is dropped after every bot process has stopped.
		env["DATABASE_URL"] = postgresDatabaseURL(t)
	}
	h := newHarness(t, env)
	return h, h.openStore()
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// crash drives a first process to its crash point, kills it, and starts a second one.
		crash func(h *harness, st *store.Store)
		// approveAfter: the request is still pending after the crash; an approver clicks on the new process.
		approveAfter bool
		// outcome is the reply expected in the card's thread.
		outcome string
		// wantAttempts is how many executions the request saw.
		wantAttempts int
	}{
		{
			name: "request stored, card post in flight",
			crash: func(h *harness, st *store.Store) {
				first := h.spawn()
				release := h.slack.Hold("chat.postMessage")
				h.command(requester, "disable jane@example.com Left the company")
				if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 1); err != nil {
					h.t.Fatalf("the card was never posted: %v", err)
				}
				h.kill(first, 0)
				// The fake drops the parked post of a dead client: Slack never saw the card.
				if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 0); err != nil {
					h.t.Fatal(err)
				}
				release()
				h.spawn()
			},
			approveAfter: true, outcome: "jane@example.com: disabled", wantAttempts: 1,
		},
		{
			name: "card posted, before any click",
			crash: func(h *harness, st *store.Store) {
				first := h.spawn()
				h.command(requester, "disable jane@example.com Left the company")
				h.card("jane@example.com")
				h.audit("requested", "jane@example.com")
				h.drained(st)
				h.kill(first, 0)
				h.spawn()
			},
			approveAfter: true, outcome: "jane@example.com: disabled", wantAttempts: 1,
		},
		{
			// The approval is won and stored (executing, with this process's lease), and the process dies
			// before its first Metabase call: held here on the side-effect-free read that precedes the
			// DELETE. The new process takes the request over after the lease and disables jane once.
			name: "approval won, before any Metabase call",
			crash: func(h *harness, st *store.Store) {
				first := h.spawn()
				h.command(requester, "disable jane@example.com Left the company")
				card := h.card("jane@example.com")
				janePath := "/api/user/" + strconv.Itoa(h.mustUser("jane@example.com").ID)
				release := h.mb.Hold("GET", "/api/user/:id")
				h.click(approver, card, "mb_approve")
				if err := h.mb.WaitForRequests(h.ctx(), "GET", janePath, 1); err != nil {
					h.t.Fatalf("the execution never read jane: %v", err)
				}
				h.audit("approved", "jane@example.com")
				h.drained(st)
				h.kill(first, 0)
				release()
				if n := h.mb.Count("DELETE", "/api/user/"); n != 0 {
					h.t.Fatalf("DELETE calls = %d before the restart, want 0", n)
				}
				if r := h.requestOf(st, card); r.State != approval.Executing {
					h.t.Fatalf("after the crash the request is %s, want executing", r.State)
				}
				h.spawn()
			},
			outcome: "jane@example.com: disabled", wantAttempts: 2,
		},
		{
			// The nasty case: Metabase deactivated jane, the process died before it read the reply, and the
			// request is left in executing. The new process waits out the lease, reads is_active first, and
			// records the outcome without a second DELETE.
			name: "approval won, Metabase acted, reply lost",
			crash: func(h *harness, st *store.Store) {
				first := h.spawn()
				h.command(requester, "disable jane@example.com Left the company")
				card := h.card("jane@example.com")
				release := h.mb.HoldReply("DELETE", "/api/user/:id")
				h.click(approver, card, "mb_approve")
				if err := h.mb.WaitForRequests(h.ctx(), "DELETE", "/api/user/", 1); err != nil {
					h.t.Fatalf("no DELETE: %v", err)
				}
				// The approval's own messages are out and recorded, so the crash cuts only the execution.
				h.audit("approved", "jane@example.com")
				h.drained(st)
				h.kill(first, 0)
				release()
				h.eventually("Metabase to have deactivated jane", func() bool { return !h.active("jane@example.com") })
				if r := h.requestOf(st, card); r.State != approval.Executing {
					h.t.Fatalf("after the crash the request is %s, want executing", r.State)
				}
				h.spawn()
			},
			outcome: "jane@example.com: disabled (confirmed inactive after a restart)", wantAttempts: 2,
		},
		{
			// Execution recorded and the final card update delivered; the thread outcome is in flight.
			name: "outcome recorded, thread reply in flight",
			crash: func(h *harness, st *store.Store) {
				first := h.spawn()
				h.command(requester, "disable jane@example.com Left the company")
				card := h.card("jane@example.com")
				releaseMB := h.mb.Hold("DELETE", "/api/user/:id")
				h.click(approver, card, "mb_approve")
				if err := h.mb.WaitForRequests(h.ctx(), "DELETE", "/api/user/", 1); err != nil {
					h.t.Fatalf("no DELETE: %v", err)
				}
				h.audit("approved", "jane@example.com")
				h.drained(st)
				release := h.slack.Hold("chat.postMessage")
				releaseMB()
				if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 1); err != nil {
					h.t.Fatalf("the outcome was never posted: %v", err)
				}
				h.cardState(card, "jane@example.com disabled") // the final card update went out
				h.kill(first, 0)
				if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 0); err != nil {
					h.t.Fatal(err)
				}
				release()
				if r := h.requestOf(st, card); r.State != approval.Succeeded {
					h.t.Fatalf("after the crash the request is %s, want succeeded", r.State)
				}
				h.spawn()
			},
			outcome: "jane@example.com: disabled", wantAttempts: 1,
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, tt := range tests {
			t.Run(backend+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				h, st := crashHarness(t, backend)
				h.addJane()
				start := time.Now()
				tt.crash(h, st)
				var card slacktest.Message
				if tt.approveAfter {
					card = h.card("jane@example.com")
					h.click(approver, card, "mb_approve")
				} else {
					card = h.anyCard("jane@example.com")
				}
				h.thread(card, tt.outcome)
				h.audit("executed", "jane@example.com")
				h.drained(st)

				if h.active("jane@example.com") {
					t.Error("jane is still active")
				}
				if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
					t.Errorf("DELETE calls = %d, want exactly 1", n)
				}
				if n := h.cards("jane@example.com"); n != 1 {
					t.Errorf("%d cards, want 1", n)
				}
				if n := h.inThread(card, "jane@example.com: disabled"); n != 1 {
					t.Errorf("%d outcome replies, want 1", n)
				}
				for _, event := range []string{"requested", "approved", "executed"} {
					if n := h.audits(event); n != 1 {
						t.Errorf("%d audit lines %q, want 1\nmessages: %v", n, event, texts(h.slack.Messages()))
					}
				}
				r := h.requestOf(st, card)
				if r.State != approval.Succeeded || r.Attempts != tt.wantAttempts {
					t.Errorf("request is %s after %d attempts, want succeeded after %d", r.State, r.Attempts, tt.wantAttempts)
				}
				t.Logf("crash and recovery took %s", time.Since(start).Round(time.Millisecond))
			})
		}
	}
}
