package main

import (
	"bytes"
	"context"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Slack fixtures shared by the end-to-end tests.
const (
	teamID        = "T1"
	opsChannel    = "COPS"
	auditChannel  = "CAUDIT"
	approverGroup = "SAPPROVERS"
	requester     = "UREQ"
	approver      = "UAPP"
	approver2     = "UAPP2"
	outsider      = "UOUT"
)

// syncBuffer collects the bot's log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs the real program (run) against the fake Slack and the fake Metabase.
type harness struct {
	t     *testing.T
	slack *slacktest.Server
	mb    *metabasetest.Server
	env   map[string]string
	logs  *syncBuffer

	mu      sync.Mutex
	running []*instance
}

// instance is one running bot process (run call).
type instance struct {
	cancel context.CancelFunc
	done   chan int
	once   sync.Once
}

// newHarness prepares fakes and an environment; overrides replace or add variables, and mbOpts
// set the fake Metabase's mode (e.g. Pro/Enterprise advanced permissions).
func newHarness(t *testing.T, overrides map[string]string, mbOpts ...metabasetest.Option) *harness {
	t.Helper()
	return newHarnessWith(t, slacktest.Options{}, overrides, mbOpts...)
}

// newHarnessWith is newHarness with a fake Slack configured by o (scopes, rate limits).
func newHarnessWith(t *testing.T, o slacktest.Options, overrides map[string]string, mbOpts ...metabasetest.Option) *harness {
	t.Helper()
	fs := slacktest.New(t, o)
	for _, u := range []slacktest.User{
		{ID: requester, Name: "alice", RealName: "Alice Requester", Email: "alice@example.com"},
		{ID: approver, Name: "bob", RealName: "Bob Approver", Email: "bob@example.com"},
		{ID: approver2, Name: "carol", RealName: "Carol Approver", Email: "carol@example.com"},
		{ID: outsider, Name: "mallory", RealName: "Mallory Outsider", Email: "mallory@example.com"},
	} {
		fs.AddUser(u)
	}
	fs.SetUserGroup(approverGroup, approver, approver2)
	// The bot is invited where the README's set-up invites it; everyone works in ops.
	fs.AddChannel(opsChannel, "ops", true, requester, approver, approver2, outsider)
	fs.AddChannel(auditChannel, "metabase-audit", true)
	mb := metabasetest.New(t, mbOpts...)
	env := map[string]string{
		"SLACK_APP_TOKEN":  "xapp-test",
		"SLACK_BOT_TOKEN":  "xoxb-test",
		"SLACK_API_URL":    fs.APIURL(),
		"APPROVER_GROUP":   approverGroup,
		"AUDIT_CHANNEL":    auditChannel,
		"METABASE_URL":     mb.URL(),
		"METABASE_API_KEY": metabasetest.AdminAPIKey,
		"DATABASE_URL":     "sqlite:" + filepath.Join(t.TempDir(), "bot.db"),
		"HTTP_ADDR":        "127.0.0.1:0",
		"LOG_LEVEL":        "debug",
		"METABASE_TIMEOUT": "3s",
		// The reactivation watch lists every user at start; tests that count Metabase calls or
		// park listings would see it. Its own tests (watch_test.go) turn it on.
		"WATCH_INTERVAL": "0",
		// A healthy database can take over a second to answer under -race on a loaded 2-core
		// machine; the store-fault tests set the production 1s to prove the reply budget.
		"STORE_REPLY_TIMEOUT": "2500ms",
	}
	maps.Copy(env, overrides)
	h := &harness{t: t, slack: fs, mb: mb, env: env, logs: &syncBuffer{}}
	// Registered first, so it runs last: after every bot process has stopped and flushed.
	t.Cleanup(h.checkNoSecrets)
	return h
}

// checkNoSecrets fails the test if any credential the bot was given reached its output (logs
// at LOG_LEVEL=debug) or a Slack message.
func (h *harness) checkNoSecrets() {
	secrets := []string{h.env["SLACK_APP_TOKEN"], h.env["SLACK_BOT_TOKEN"], h.env["METABASE_API_KEY"], h.env["METABASE_PASSWORD"]}
	var slackText strings.Builder
	for _, m := range append(h.slack.Messages(), h.slack.Ephemerals()...) {
		slackText.WriteString(m.AllText())
	}
	for _, s := range secrets {
		if len(s) < 6 {
			continue
		}
		if strings.Contains(h.logs.String(), s) {
			h.t.Errorf("a secret (%s…) appears in the bot's logs", s[:5])
		}
		if strings.Contains(slackText.String(), s) {
			h.t.Errorf("a secret (%s…) appears in a Slack message", s[:5])
		}
	}
}

// start runs one bot process and waits until it is connected to the fake Slack.
func (h *harness) start() *instance {
	h.t.Helper()
	before := h.slack.Connections()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan int, 1)}
	go func() { in.done <- run(ctx, nil, maps.Clone(h.env), h.logs, h.logs) }()
	h.mu.Lock()
	h.running = append(h.running, in)
	h.mu.Unlock()
	h.t.Cleanup(func() { in.stop(h.t) })
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	done := make(chan error, 1)
	go func() { done <- h.slack.WaitConnections(wctx, before+1) }()
	select {
	case err := <-done:
		if err != nil {
			h.t.Fatalf("bot did not connect to Slack: %v\nlogs:\n%s", err, h.logs.String())
		}
	case code := <-in.done:
		h.t.Fatalf("bot exited with %d before connecting\nlogs:\n%s", code, h.logs.String())
	}
	return in
}

// stop cancels the process like SIGTERM and checks it exits 0.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.once.Do(func() {
		in.cancel()
		select {
		case code := <-in.done:
			if code != 0 {
				t.Errorf("bot exited with %d, want 0", code)
			}
		case <-time.After(40 * time.Second):
			t.Errorf("bot did not stop within 40s")
		}
	})
}

// ctx is a bounded context for one test step.
func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

// command types a slash command (the fake sends it as Slack would: escaped, with @names and
// emails turned into entities) and waits for its ack.
func (h *harness) command(user, text string) slacktest.Ack {
	h.t.Helper()
	return h.sendCommand(slacktest.SlashCommand{UserID: user, ChannelID: opsChannel, Text: text})
}

// commandRaw sends a slash command whose text is already in Slack's wire form, as a forged or
// unusual payload would carry it, and waits for its ack.
func (h *harness) commandRaw(user, wire string) slacktest.Ack {
	h.t.Helper()
	return h.sendCommand(slacktest.SlashCommand{UserID: user, ChannelID: opsChannel, Text: wire, Raw: true})
}

func (h *harness) sendCommand(c slacktest.SlashCommand) slacktest.Ack {
	h.t.Helper()
	ctx := h.ctx()
	text := c.Text
	id, err := h.slack.SlashCommand(ctx, c)
	if err != nil {
		h.t.Fatalf("slash command: %v", err)
	}
	ack, err := h.slack.WaitAck(ctx, id)
	if err != nil {
		h.t.Fatalf("no ack for %q: %v", text, err)
	}
	return ack
}

// card waits for the approval card naming text.
func (h *harness) card(text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.Channel == opsChannel && m.ThreadTS == "" && m.HasAction("mb_approve") && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		h.t.Fatalf("no approval card with %q: %v\nmessages: %v\nephemerals: %v\nlogs:\n%s", text, err, texts(h.slack.Messages()), texts(h.slack.Ephemerals()), h.logs.String())
	}
	return m
}

// click clicks a button on a message and waits for its ack.
func (h *harness) click(user string, m slacktest.Message, action string) slacktest.Ack {
	h.t.Helper()
	ctx := h.ctx()
	id, err := h.slack.Click(ctx, slacktest.Click{UserID: user, ChannelID: m.Channel, MessageTS: m.TS, ActionID: action})
	if err != nil {
		h.t.Fatalf("click %s: %v", action, err)
	}
	ack, err := h.slack.WaitAck(ctx, id)
	if err != nil {
		h.t.Fatalf("no ack for click %s: %v", action, err)
	}
	return ack
}

// thread waits for a reply in the card's thread containing text.
func (h *harness) thread(card slacktest.Message, text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		h.t.Fatalf("no thread reply with %q: %v\nmessages: %v\nlogs:\n%s", text, err, texts(h.slack.Messages()), h.logs.String())
	}
	return m
}

// cardState waits until the card (same ts) shows text and has no decision buttons.
func (h *harness) cardState(card slacktest.Message, text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		return m.TS == card.TS && !m.HasAction("mb_approve") && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		cur, _ := h.slack.Message(card.Channel, card.TS)
		h.t.Fatalf("card never showed %q without buttons: %v\ncard now: %s\nlogs:\n%s", text, err, cur.AllText(), h.logs.String())
	}
	return m
}

// audit waits for an audit line containing every part.
func (h *harness) audit(parts ...string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
		if m.Channel != auditChannel {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(m.Text, p) {
				return false
			}
		}
		return true
	})
	if err != nil {
		h.t.Fatalf("no audit message with %q: %v\naudit: %v", parts, err, texts(h.slack.Messages()))
	}
	return m
}

// ephemeral waits for a private reply to user containing text.
func (h *harness) ephemeral(user, text string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitEphemeral(h.ctx(), func(m slacktest.Message) bool {
		return m.User == user && strings.Contains(m.AllText(), text)
	})
	if err != nil {
		h.t.Fatalf("no ephemeral to %s with %q: %v\nephemerals: %v\nlogs:\n%s", user, text, err, texts(h.slack.Ephemerals()), h.logs.String())
	}
	return m
}

// count returns how many non-ephemeral messages satisfy pred.
func (h *harness) count(pred func(slacktest.Message) bool) int {
	n := 0
	for _, m := range h.slack.Messages() {
		if pred(m) {
			n++
		}
	}
	return n
}

func texts(ms []slacktest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Channel + "/" + m.ThreadTS + ": " + m.Text
	}
	return out
}

// addJane seeds the usual target.
func (h *harness) addJane() metabasetest.User {
	return h.mb.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true,
		DateJoined: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)})
}

// metabaseEditions runs f once against each edition whose rules differ for the bot's writes:
// open source, and Pro/Enterprise with advanced permissions (group managers).
func metabaseEditions(t *testing.T, f func(t *testing.T, opts ...metabasetest.Option)) {
	t.Run("open source", func(t *testing.T) { t.Parallel(); f(t) })
	t.Run("advanced permissions", func(t *testing.T) { t.Parallel(); f(t, metabasetest.WithAdvancedPermissions()) })
}
