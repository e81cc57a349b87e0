package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// TestStartupRefusesBadAppToken: the start-up checks open a Socket Mode connection URL with the
// app token, so a wrong one stops the bot before it claims to have started.
func TestStartupRefusesBadAppToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		o     slacktest.Options
		env   map[string]string
		wants []string
	}{
		{"wrong token", slacktest.Options{}, map[string]string{"SLACK_APP_TOKEN": "xapp-someone-elses"},
			[]string{"apps.connections.open", "invalid_auth", "check SLACK_APP_TOKEN"}},
		{"token without connections:write", slacktest.Options{AppScopes: []string{"authorizations:read"}}, nil,
			[]string{"apps.connections.open", "missing_scope", "SLACK_APP_TOKEN lacks the scope connections:write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, tc.o, tc.env)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if code := run(ctx, nil, h.env, h.logs, h.logs); code == 0 {
				t.Fatal("the bot started with an app token that cannot open Socket Mode")
			}
			for _, want := range tc.wants {
				if !strings.Contains(h.logs.String(), want) {
					t.Errorf("the refusal does not say %q:\n%s", want, h.logs.String())
				}
			}
			if strings.Contains(h.logs.String(), "metabase-bot started") {
				t.Errorf("the bot said it started:\n%s", h.logs.String())
			}
		})
	}
}

// TestSocketModeConnectionErrorsSayWhy: once running, a reconnect that Slack refuses (here the app
// token lost connections:write) is logged with its cause and the variable to fix, and the bot
// connects again once Slack accepts.
func TestSocketModeConnectionErrorsSayWhy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"LOG_LEVEL": "info"})
	h.start()
	h.slack.FailNext("apps.connections.open", 1, "missing_scope")
	if err := h.slack.Disconnect(h.ctx(), "refresh_requested"); err != nil {
		t.Fatal(err)
	}
	h.waitLog(h.ctx(), "Could not connect to Slack over Socket Mode")
	for _, want := range []string{`"error":"missing_scope"`, "SLACK_APP_TOKEN lacks the scope connections:write"} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("the connection error log lacks %q:\n%s", want, h.logs.String())
		}
	}
	if err := h.slack.WaitConnections(h.ctx(), 2); err != nil {
		t.Fatalf("the bot did not reconnect after the failure: %v", err)
	}
}
