package main

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// httpAddr finds the address the bot's HTTP server listens on (HTTP_ADDR=127.0.0.1:0) in its
// logs, waiting for the line.
func (h *harness) httpAddr(ctx context.Context) string {
	h.t.Helper()
	re := regexp.MustCompile(`"http_addr":"([0-9.:]+)"`)
	for {
		if m := re.FindStringSubmatch(h.logs.String()); m != nil {
			return m[1]
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("the bot never logged its HTTP address:\n%s", h.logs.String())
		case <-time.After(20 * time.Millisecond): // polling a log buffer; nothing to wait on
		}
	}
}

// waitLog waits until the bot's output contains s.
func (h *harness) waitLog(ctx context.Context, s string) {
	h.t.Helper()
	for !strings.Contains(h.logs.String(), s) {
		select {
		case <-ctx.Done():
			h.t.Fatalf("the bot never logged %q:\n%s", s, h.logs.String())
		case <-time.After(20 * time.Millisecond): // polling a log buffer; nothing to wait on
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls an endpoint until it answers want (readiness changes asynchronously).
func waitStatus(ctx context.Context, t *testing.T, url string, want int) string {
	t.Helper()
	for {
		code, body := get(t, url)
		if code == want {
			return body
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s stayed %d (%s), want %d", url, code, body, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	h.start()
	base := "http://" + h.httpAddr(h.ctx())
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	waitStatus(h.ctx(), t, base+"/readyz", 200)
	var out bytes.Buffer
	if code := run(h.ctx(), []string{"healthcheck"}, map[string]string{"HTTP_ADDR": strings.TrimPrefix(base, "http://")}, &out, &out); code != 0 {
		t.Errorf("healthcheck against a running bot exited %d: %s", code, out.String())
	}
	if code := run(h.ctx(), []string{"healthcheck"}, map[string]string{"HTTP_ADDR": "127.0.0.1:1"}, &out, &out); code != 1 {
		t.Errorf("healthcheck against nothing exited %d, want 1", code)
	}

	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{`metabase_bot_requests{state="pending"} 1`, `metabase_bot_requests_created_total{action="disable"} 1`,
		"metabase_bot_metabase_request_duration_seconds_bucket", "metabase_bot_socket_mode_connections_total 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.audit("executed")
	_, metrics = get(t, base+"/metrics")
	for _, want := range []string{`metabase_bot_requests{state="succeeded"} 1`, `metabase_bot_requests{state="pending"} 0`,
		`metabase_bot_decisions_total{decision="approved"} 1`, `metabase_bot_executions_total{action="disable",state="succeeded"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Metabase going down makes the bot unready, and ready again when it recovers.
	h.mb.SetHealth(503, `{"status":"Unable to get app-db connection"}`)
	body := waitStatus(h.ctx(), t, base+"/readyz", 503)
	if !strings.Contains(body, "metabase") {
		t.Errorf("/readyz does not say what is wrong: %q", body)
	}
	h.mb.SetHealth(200, `{"status":"ok"}`)
	waitStatus(h.ctx(), t, base+"/readyz", 200)
}

func TestStartupRefusesNonAdminMetabaseKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	analyst := h.mb.AddUser(metabasetest.User{Email: "analyst@example.com", FirstName: "Ann", Active: true})
	// A second fake whose key belongs to a non-admin, as with a key outside Administrators.
	mb := metabasetest.New(t, metabasetest.WithAPIKey("mb_analystkey0123456789", analyst.ID), metabasetest.WithAdminUser(metabasetest.User{
		ID: analyst.ID, Email: "analyst@example.com", FirstName: "Ann", Active: true}))
	env := maps.Clone(h.env)
	env["METABASE_URL"] = mb.URL()
	env["METABASE_API_KEY"] = "mb_analystkey0123456789"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, nil, env, h.logs, h.logs)
	if code == 0 {
		t.Fatal("the bot started with a non-admin Metabase key")
	}
	if !strings.Contains(h.logs.String(), "Administrators") {
		t.Errorf("the refusal does not say the key must be in Administrators:\n%s", h.logs.String())
	}
}

func TestStartupRefusesBadSlackToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"SLACK_BOT_TOKEN": "xoxb-revoked"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code := run(ctx, nil, h.env, h.logs, h.logs); code == 0 {
		t.Fatal("the bot started with a bad bot token")
	}
	if !strings.Contains(h.logs.String(), "invalid_auth") || !strings.Contains(h.logs.String(), "SLACK_BOT_TOKEN") {
		t.Errorf("the refusal does not name the problem:\n%s", h.logs.String())
	}
}

func TestStartupWaitsForMetabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.mb.FailNext("GET", "/api/user/current", -1, 503, "Metabase is still initializing. Please sit tight...")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, maps.Clone(h.env), h.logs, h.logs) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit code %d after a clean stop", code)
		}
	}()
	base := "http://" + h.httpAddr(h.ctx())
	waitStatus(h.ctx(), t, base+"/healthz", 200)
	// The client's own retries gave up; the start-up loop keeps waiting instead of exiting.
	h.waitLog(h.ctx(), "Metabase is not reachable yet")
	mbHost := strings.TrimPrefix(h.mb.URL(), "http://")
	code, body := get(t, base+"/readyz")
	for _, want := range []string{"waiting for Metabase at " + mbHost, "503", "Metabase is still initializing", "retrying"} {
		if code != 503 || !strings.Contains(body, want) {
			t.Errorf("/readyz while Metabase is down = %d %q, want 503 saying %q", code, body, want)
		}
	}
	if strings.Contains(body, h.env["METABASE_API_KEY"]) {
		t.Errorf("/readyz shows the Metabase API key: %q", body)
	}
	select {
	case code := <-done:
		t.Fatalf("the bot exited (%d) instead of waiting for Metabase", code)
	default:
	}
	h.mb.ClearFailures()
	waitStatus(h.ctx(), t, base+"/readyz", 200)
}

func TestReadyzSaysWhyMetabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: connections are refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	h := newHarness(t, map[string]string{"METABASE_URL": "http://" + closed})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, maps.Clone(h.env), h.logs, h.logs) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit code %d after a clean stop", code)
		}
	}()
	base := "http://" + h.httpAddr(h.ctx())
	h.waitLog(h.ctx(), "Metabase is not reachable yet")
	code, body := get(t, base+"/readyz")
	if want := "starting: waiting for Metabase at " + closed + " (connection refused); retrying"; code != 503 || !strings.Contains(body, want) {
		t.Fatalf("/readyz = %d %q, want 503 saying %q", code, body, want)
	}
}

func TestGracefulShutdownFinishesWorkInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	in := h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	release := h.mb.Hold("DELETE", "/api/user/:id")
	h.click(approver, card, "mb_approve")
	if err := h.mb.WaitForRequests(h.ctx(), "DELETE", "/api/user/", 1); err != nil {
		t.Fatal(err)
	}
	// SIGTERM arrives while Metabase is still answering the DELETE.
	in.cancel()
	h.waitLog(h.ctx(), "Shutting down")
	release()
	select {
	case code := <-in.done:
		if code != 0 {
			t.Fatalf("exit code %d, want 0", code)
		}
		in.once.Do(func() {}) // already stopped
	case <-h.ctx().Done():
		t.Fatal("the bot did not stop after the in-flight execution finished")
	}
	// The outcome was recorded and delivered before the process exited.
	if _, ok := h.findMessage(func(m string) bool { return strings.Contains(m, "jane@example.com: disabled") }); !ok {
		t.Fatalf("the in-flight execution's outcome was not posted before exit:\n%s", h.logs.String())
	}
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Fatalf("DELETE calls = %d, want 1", n)
	}
}

// findMessage looks for a posted message whose text satisfies pred, without waiting.
func (h *harness) findMessage(pred func(text string) bool) (string, bool) {
	for _, m := range h.slack.Messages() {
		if pred(m.AllText()) {
			return m.AllText(), true
		}
	}
	return "", false
}

// TestDatabasePasswordInTheQueryIsNeverLogged: pgx takes the password from the URL's query too
// (?password=…); when the database cannot be reached, the bot's error at debug level names the
// database but never that password.
func TestDatabasePasswordInTheQueryIsNeverLogged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{
		"DATABASE_URL": "postgres://bot@127.0.0.1:1/bot?password=hunter2-in-query&sslpassword=hunter2-key&connect_timeout=2",
		"LOG_LEVEL":    "debug",
	})
	var out bytes.Buffer
	if code := run(h.ctx(), nil, h.env, &out, &out); code == 0 {
		t.Fatal("the bot started without its database")
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Fatalf("a database secret reached the output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "127.0.0.1") {
		t.Errorf("the error does not say which database failed:\n%s", out.String())
	}
}
