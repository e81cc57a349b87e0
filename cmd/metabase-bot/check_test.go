package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// runCheckCmd runs `metabase-bot check` against the harness's fakes and returns its exit code
// and output.
func (h *harness) runCheckCmd() (int, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"check"}, h.env, &out, &out)
	h.logs.Write(out.Bytes()) // for the secrets check at cleanup
	return code, out.String()
}

func TestCheckPassesOnAGoodSetup(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"REQUESTER_GROUP": "SREQ", "ALLOWED_CHANNELS": opsChannel, "SLACK_DEACTIVATION_CHANNEL": opsChannel,
		"INCIDENT_GROUP": "SINC"})
	h.slack.SetUserGroup("SREQ", requester)
	h.slack.SetUserGroup("SINC", requester)
	code, out := h.runCheckCmd()
	if code != 0 {
		t.Fatalf("check exited %d on a good setup:\n%s", code, out)
	}
	for _, want := range []string{
		"✓ Slack bot token (SLACK_BOT_TOKEN): workspace Fake Team (T1), bot user UBOT",
		"✓ Slack app token and Socket Mode (SLACK_APP_TOKEN)",
		"✓ Slack scope commands",
		"✓ Slack scope channels:read",
		"✓ Slack scope groups:read",
		"✓ Approver group (APPROVER_GROUP SAPPROVERS): 2 members",
		"✓ Requester group (REQUESTER_GROUP SREQ): 1 member",
		"✓ Incident group (INCIDENT_GROUP SINC): 1 member",
		"✓ Audit channel (AUDIT_CHANNEL CAUDIT): #metabase-audit, the bot is a member",
		"✓ Allowed channel (ALLOWED_CHANNELS COPS): #ops, the bot is a member",
		"✓ Deactivation channel (SLACK_DEACTIVATION_CHANNEL COPS): #ops, the bot is a member",
		"✓ Slack deactivations: scope users:read for the user_change event: granted",
		"✓ Metabase (METABASE_URL): reachable, version " + metabasetest.Version,
		"✓ Metabase admin rights (METABASE_API_KEY): the bot acts as " + metabasetest.AdminEmail,
		"✓ Store (DATABASE_URL): sqlite, opened and migrated",
		"All ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "✗") {
		t.Errorf("a check failed on a good setup:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "✓ ") && !strings.HasPrefix(line, "All ") {
			t.Errorf("a line is neither a check nor the summary: %q", line)
		}
	}
	// check opens a ticket but never a socket: no bot is running.
	if n := h.slack.Connections(); n != 0 {
		t.Errorf("check connected %d sockets", n)
	}
}

func TestCheckNamesEachFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		o     slacktest.Options
		env   map[string]string
		setup func(h *harness)
		want  string // the ✗ line, up to its fix
	}{
		{name: "missing scope", o: slacktest.Options{BotScopes: []string{"commands", "chat:write", "usergroups:read", "users:read", "users:read.email", "channels:read"}},
			want: "✗ Slack scope groups:read: the bot token lacks it; it is needed for the same check for private channels. Fix: add it under OAuth & Permissions"},
		{name: "bad app token", env: map[string]string{"SLACK_APP_TOKEN": "xapp-not-this-app"},
			want: "✗ Slack app token and Socket Mode (SLACK_APP_TOKEN): apps.connections.open failed: invalid_auth. Fix: check SLACK_APP_TOKEN"},
		{name: "app token without connections:write", o: slacktest.Options{AppScopes: []string{"authorizations:read"}},
			want: "✗ Slack app token and Socket Mode (SLACK_APP_TOKEN): apps.connections.open failed: missing_scope. Fix: SLACK_APP_TOKEN lacks the scope connections:write"},
		{name: "group without members", setup: func(h *harness) { h.slack.SetUserGroup(approverGroup) },
			want: "✗ Approver group (APPROVER_GROUP SAPPROVERS): the group has no members, so nobody could approve. Fix: add the approvers to the group"},
		{name: "incident group without members", env: map[string]string{"INCIDENT_GROUP": "SINC"}, setup: func(h *harness) { h.slack.SetUserGroup("SINC") },
			want: "✗ Incident group (INCIDENT_GROUP SINC): the group has no members, so nobody could use break-glass. Fix: add the incident responders"},
		{name: "incident group unknown", env: map[string]string{"INCIDENT_GROUP": "SNOPE"},
			want: "✗ Incident group (INCIDENT_GROUP SNOPE): usergroups.users.list failed"},
		{name: "bot not in the audit channel", setup: func(h *harness) { h.slack.Kick(auditChannel, h.slack.BotUserID()) },
			want: "✗ Audit channel (AUDIT_CHANNEL CAUDIT): the bot is not a member of #metabase-audit. Fix: type /invite @metabase-bot in #metabase-audit"},
		{name: "private audit channel without the bot", env: map[string]string{"AUDIT_CHANNEL": "GSECRET"},
			want: "✗ Audit channel (AUDIT_CHANNEL GSECRET): conversations.info failed: channel_not_found. Fix: use the channel id (C…), and invite the bot to private channels"},
		{name: "bot not in the deactivation channel", env: map[string]string{"SLACK_DEACTIVATION_CHANNEL": "CLEAVERS"},
			setup: func(h *harness) { h.slack.AddChannel("CLEAVERS", "leavers", false) },
			want:  "✗ Deactivation channel (SLACK_DEACTIVATION_CHANNEL CLEAVERS): the bot is not a member of #leavers. Fix: type /invite @metabase-bot in #leavers"},
		{name: "Metabase key without admin", setup: func(h *harness) {
			analyst := h.mb.AddUser(metabasetest.User{Email: "analyst@example.com", FirstName: "Ann", Active: true})
			mb := metabasetest.New(h.t, metabasetest.WithAPIKey("mb_analystkey0123456789", analyst.ID),
				metabasetest.WithAdminUser(metabasetest.User{ID: analyst.ID, Email: "analyst@example.com", FirstName: "Ann", Active: true}))
			h.env["METABASE_URL"], h.env["METABASE_API_KEY"] = mb.URL(), "mb_analystkey0123456789"
		}, want: "✗ Metabase admin rights (METABASE_API_KEY): the account analyst@example.com is not an admin. Fix: put the API key in the Administrators group"},
		{name: "Metabase key rejected", env: map[string]string{"METABASE_API_KEY": "mb_revokedkey0123456789"},
			want: "✗ Metabase admin rights (METABASE_API_KEY): Metabase rejected the credentials (401). Fix:"},
		{name: "bad bot token", env: map[string]string{"SLACK_BOT_TOKEN": "xoxb-revoked"},
			want: "✗ Slack bot token (SLACK_BOT_TOKEN): auth.test failed: invalid_auth. Fix: check SLACK_BOT_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, tt.o, tt.env)
			if tt.setup != nil {
				tt.setup(h)
			}
			code, out := h.runCheckCmd()
			if code != 1 {
				t.Errorf("check exited %d, want 1", code)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("check output lacks %q:\n%s", tt.want, out)
			}
			if strings.Count(out, "✗") != 1 && tt.name != "bad bot token" {
				t.Errorf("want exactly one failed item:\n%s", out)
			}
			if !strings.Contains(out, "of ") || !strings.Contains(out, "checks failed.") {
				t.Errorf("no summary line:\n%s", out)
			}
		})
	}
}

func TestCheckReportsConfigurationProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"APPROVER_GROUP": "@approvers"})
	code, out := h.runCheckCmd()
	if code != 2 || !strings.Contains(out, "✗ configuration: APPROVER_GROUP holds an @handle") {
		t.Errorf("check with a bad variable exited %d:\n%s", code, out)
	}
}

// TestCheckDeactivationsNeedUsersRead: without users:read Slack sends no user_change, so check says
// so next to the channel setting that needs it.
func TestCheckDeactivationsNeedUsersRead(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, slacktest.Options{BotScopes: []string{"commands", "chat:write", "usergroups:read", "users:read.email", "channels:read", "groups:read"}},
		map[string]string{"SLACK_DEACTIVATION_CHANNEL": opsChannel})
	code, out := h.runCheckCmd()
	want := "✗ Slack deactivations: scope users:read for the user_change event: the bot token lacks users:read, so Slack sends no user_change event. Fix:"
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("check exited %d, want 1 with %q:\n%s", code, want, out)
	}
}
