package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func validEnv() map[string]string {
	return map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-abc", "SLACK_BOT_TOKEN": "xoxb-1-abc", "APPROVER_GROUP": "S1",
		"METABASE_URL": "https://metabase.example.com", "METABASE_API_KEY": "mb_abcdefghijklmnop",
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(validEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SlashCommand != "/metabase" || cfg.RequiredApprovals != 1 || !cfg.RequireReason || cfg.AllowSelfApproval ||
		cfg.RequestTTL != 24*time.Hour || cfg.DatabaseURL != "sqlite:metabase-bot.db" || cfg.HTTPAddr != ":8080" ||
		cfg.LogFormat != "json" || cfg.DryRun || cfg.SlackAPIURL != "https://slack.com/api/" || cfg.returnLocation != time.UTC ||
		cfg.AuditCheckpointEvery != 24*time.Hour {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SLACK_APP_TOKEN":    "xoxb-wrong-kind",
		"SLACK_API_URL":      "not a url",
		"METABASE_URL":       "ftp://metabase",
		"METABASE_API_KEY":   "secret-key-value",
		"REQUEST_TTL":        "soon",
		"REQUIRED_APPROVALS": "0",
		"LOG_FORMAT":         "xml",
		"RETURN_TIMEZONE":    "Mars/Olympus",
		"DATABASE_URL":       "mysql://x",
		// A checkpoint every few milliseconds would flood the audit channel.
		"AUDIT_CHECKPOINT_EVERY": "10ms",
		// Each refresh of a Home tab is a views.publish call.
		"HOME_REFRESH_EVERY": "100ms",
	}
	_, err := loadConfig(env)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	msg := err.Error()
	for _, name := range []string{"SLACK_APP_TOKEN must start with xapp-", "SLACK_BOT_TOKEN is required", "SLACK_API_URL",
		"APPROVER_GROUP or APPROVER_USERS", "METABASE_URL must be an http(s) URL", "METABASE_API_KEY must start with mb_",
		"REQUEST_TTL", "REQUIRED_APPROVALS", "LOG_FORMAT", "RETURN_TIMEZONE", "DATABASE_URL", "AUDIT_CHECKPOINT_EVERY must be at least 1s",
		"HOME_REFRESH_EVERY must be at least 1s"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not mention %q:\n%s", name, msg)
		}
	}
	for _, secret := range []string{"secret-key-value", "xoxb-wrong-kind"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error echoes a secret value %q:\n%s", secret, msg)
		}
	}
}

func TestConfigAuthChoices(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  map[string]string
		wantErr string
	}{
		{"api key", nil, ""},
		{"password", map[string]string{"METABASE_API_KEY": "", "METABASE_USERNAME": "bot@example.com", "METABASE_PASSWORD": "pw"}, ""},
		{"neither", map[string]string{"METABASE_API_KEY": ""}, "METABASE_API_KEY (or METABASE_USERNAME and METABASE_PASSWORD) is required"},
		{"both", map[string]string{"METABASE_USERNAME": "bot@example.com", "METABASE_PASSWORD": "pw"}, "both set"},
		{"username only", map[string]string{"METABASE_API_KEY": "", "METABASE_USERNAME": "bot@example.com"}, "is required"},
		{"approver users only", map[string]string{"APPROVER_GROUP": "", "APPROVER_USERS": "U1,U2"}, ""},
		{"slack url gets its slash", map[string]string{"SLACK_API_URL": "http://127.0.0.1:1/api"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tt.change {
				env[k] = v
			}
			cfg, err := loadConfig(env)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if err == nil && !strings.HasSuffix(cfg.SlackAPIURL, "/") {
				t.Errorf("SLACK_API_URL %q lacks the trailing slash slack-go needs", cfg.SlackAPIURL)
			}
		})
	}
}

func TestConfigSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := validEnv()
	delete(env, "METABASE_API_KEY")
	delete(env, "SLACK_BOT_TOKEN")
	env["METABASE_API_KEY_FILE"] = write("key", "mb_fromfile123456\n")
	env["SLACK_BOT_TOKEN_FILE"] = write("bot", "xoxb-from-file\n")
	cfg, err := loadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetabaseAPIKey != "mb_fromfile123456" || cfg.SlackBotToken != "xoxb-from-file" {
		t.Fatalf("secrets not read from files (trimmed): %q %q", cfg.MetabaseAPIKey, cfg.SlackBotToken)
	}
	env["METABASE_API_KEY"] = "mb_alsoset12345"
	env["SLACK_APP_TOKEN_FILE"] = filepath.Join(dir, "missing")
	delete(env, "SLACK_APP_TOKEN")
	_, err = loadConfig(env)
	if err == nil || !strings.Contains(err.Error(), "METABASE_API_KEY and METABASE_API_KEY_FILE are both set") ||
		!strings.Contains(err.Error(), "SLACK_APP_TOKEN_FILE: cannot read") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunRefusesInvalidConfigQuickly(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	start := time.Now()
	code := run(t.Context(), nil, map[string]string{}, &stderr, &stderr)
	if code == 0 {
		t.Fatal("run accepted an empty environment")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s to refuse", time.Since(start))
	}
	for _, name := range []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "METABASE_URL", "APPROVER_GROUP"} {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("output does not name %s:\n%s", name, stderr.String())
		}
	}
}

func TestVersionSubcommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &out); code != 0 {
		t.Fatalf("version exited %d", code)
	}
	if !strings.HasPrefix(out.String(), "metabase-bot ") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("version output %q", out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, nil, &out, &out); code != 2 {
		t.Fatalf("unknown subcommand exited %d, want 2", code)
	}
}

// problemsOf returns the configuration problems loadConfig reports for env.
func problemsOf(t *testing.T, env map[string]string) []string {
	t.Helper()
	_, err := loadConfig(env)
	if err == nil {
		return nil
	}
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("loadConfig returned %T, want *configError: %v", err, err)
	}
	return ce.problems
}

func TestConfigRejectsPlaceholdersAndWrongSlackForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change map[string]string
		want   []string // one problem, containing each of these
	}{
		{"app token placeholder", map[string]string{"SLACK_APP_TOKEN": "xapp-REPLACE_ME"}, []string{"SLACK_APP_TOKEN", "REPLACE_ME", "xapp-"}},
		{"bot token placeholder", map[string]string{"SLACK_BOT_TOKEN": "xoxb-REPLACE_ME"}, []string{"SLACK_BOT_TOKEN", "REPLACE_ME", "xoxb-"}},
		{"api key placeholder", map[string]string{"METABASE_API_KEY": "mb_REPLACE_ME"}, []string{"METABASE_API_KEY", "REPLACE_ME", "mb_"}},
		{"password placeholder", map[string]string{"METABASE_API_KEY": "", "METABASE_USERNAME": "bot@example.com", "METABASE_PASSWORD": "hunter2REPLACE_ME"},
			[]string{"METABASE_PASSWORD", "REPLACE_ME"}},
		{"database placeholder", map[string]string{"DATABASE_URL": "postgres://bot:REPLACE_ME@db:5432/bot"}, []string{"DATABASE_URL", "REPLACE_ME", "postgres://"}},
		{"approver group placeholder", map[string]string{"APPROVER_GROUP": "S0REPLACE_ME"}, []string{"APPROVER_GROUP", "REPLACE_ME", "S…"}},
		{"approver users placeholder", map[string]string{"APPROVER_USERS": "U0REPLACE_ME,U0REPLACE_ME"}, []string{"APPROVER_USERS", "REPLACE_ME", "U…"}},
		{"audit channel placeholder", map[string]string{"AUDIT_CHANNEL": "C0REPLACE_ME"}, []string{"AUDIT_CHANNEL", "REPLACE_ME", "C…"}},
		{"non-Slack placeholder", map[string]string{"REQUIRED_APPROVALS": "REPLACE_ME"}, []string{"REQUIRED_APPROVALS", "REPLACE_ME"}},
		{"group handle", map[string]string{"APPROVER_GROUP": "@metabase-approvers"}, []string{"APPROVER_GROUP", "@handle", "S…"}},
		{"requester group handle", map[string]string{"REQUESTER_GROUP": "@everyone-ops"}, []string{"REQUESTER_GROUP", "@handle", "S…"}},
		{"incident group handle", map[string]string{"INCIDENT_GROUP": "@oncall"}, []string{"INCIDENT_GROUP", "@handle", "S…"}},
		{"review window too short", map[string]string{"REVIEW_WINDOW": "5s"}, []string{"REVIEW_WINDOW", "at least 10s"}},
		{"no break-glass users", map[string]string{"INCIDENT_MAX_USERS": "0"}, []string{"INCIDENT_MAX_USERS", "between 1 and 100"}},
		{"user handle", map[string]string{"APPROVER_USERS": "U1,@bob"}, []string{"APPROVER_USERS", "@handle", "U…"}},
		{"audit channel name", map[string]string{"AUDIT_CHANNEL": "#metabase-audit"}, []string{"AUDIT_CHANNEL", "#channel", "C…"}},
		{"allowed channel name", map[string]string{"ALLOWED_CHANNELS": "C1,#ops"}, []string{"ALLOWED_CHANNELS", "#channel", "C…"}},
		{"group name without sigil", map[string]string{"APPROVER_GROUP": "metabase-approvers"}, []string{"APPROVER_GROUP", "S…"}},
		{"lower-case id", map[string]string{"AUDIT_CHANNEL": "c0123abcd"}, []string{"AUDIT_CHANNEL", "C…"}},
		{"channel id as group", map[string]string{"APPROVER_GROUP": "C0123ABCD"}, []string{"APPROVER_GROUP", "S…"}},
		{"user id as channel", map[string]string{"ALLOWED_CHANNELS": "U0123ABCD"}, []string{"ALLOWED_CHANNELS", "C…"}},
		{"deactivation channel name", map[string]string{"SLACK_DEACTIVATION_CHANNEL": "#leavers"}, []string{"SLACK_DEACTIVATION_CHANNEL", "#channel", "C…"}},
		{"deactivation channel outside the allowed ones", map[string]string{"ALLOWED_CHANNELS": "C1,C2", "SLACK_DEACTIVATION_CHANNEL": "C3"},
			[]string{"SLACK_DEACTIVATION_CHANNEL", "ALLOWED_CHANNELS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := validEnv()
			maps.Copy(env, tt.change)
			got := problemsOf(t, env)
			if len(got) != 1 {
				t.Fatalf("got %d problems, want 1: %q", len(got), got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("problem %q lacks %q", got[0], w)
				}
			}
			for k, v := range tt.change {
				if v != "" && (k == "METABASE_PASSWORD" || k == "DATABASE_URL") && strings.Contains(got[0], v) {
					t.Errorf("problem %q echoes the secret value of %s", got[0], k)
				}
			}
		})
	}
}

func TestConfigAcceptsSlackIDs(t *testing.T) {
	t.Parallel()
	env := validEnv()
	maps.Copy(env, map[string]string{
		"APPROVER_GROUP": "S0123ABCD", "REQUESTER_GROUP": "S9", "APPROVER_USERS": "U0123ABCD, W0456EFGH",
		"ALLOWED_CHANNELS": "C0123ABCD,G0456EFGH", "AUDIT_CHANNEL": "C1", "SLACK_DEACTIVATION_CHANNEL": "G0456EFGH",
		// Tokens keep only their prefix check: Slack does not document their shape beyond it.
		"SLACK_APP_TOKEN": "xapp-1-A0-1-abc", "SLACK_BOT_TOKEN": "xoxb-any-shape_at-all",
	})
	cfg, err := loadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"U0123ABCD", "W0456EFGH"}; !slices.Equal(cfg.ApproverUsers, want) {
		t.Errorf("APPROVER_USERS = %q, want %q (spaces after commas trimmed)", cfg.ApproverUsers, want)
	}
}

func TestConfigPlaceholderInSecretFileNamesTheFile(t *testing.T) {
	t.Parallel()
	// As with deploy/kubernetes.yaml's Secret left unedited.
	path := filepath.Join(t.TempDir(), "slack-app-token")
	if err := os.WriteFile(path, []byte("xapp-REPLACE_ME\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := validEnv()
	delete(env, "SLACK_APP_TOKEN")
	env["SLACK_APP_TOKEN_FILE"] = path
	got := problemsOf(t, env)
	if len(got) != 1 || !strings.Contains(got[0], "SLACK_APP_TOKEN (read from SLACK_APP_TOKEN_FILE)") || !strings.Contains(got[0], "REPLACE_ME") {
		t.Fatalf("problems = %q, want one naming SLACK_APP_TOKEN_FILE and the placeholder", got)
	}
}

func TestConfigParseErrorNamesTheVariableOnce(t *testing.T) {
	t.Parallel()
	env := validEnv()
	env["REQUEST_TTL"] = "abc"
	got := problemsOf(t, env)
	if len(got) != 1 {
		t.Fatalf("got %d problems, want 1: %q", len(got), got)
	}
	for _, want := range []string{"REQUEST_TTL:", `"abc"`, "24h", "90m", "30s"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("problem %q lacks %q", got[0], want)
		}
	}
}

// Every variable that is not a string can fail to parse: its message must name it as operators
// spell it, with an example, and be its only problem.
func TestConfigEveryParseErrorNamesItsVariable(t *testing.T) {
	t.Parallel()
	for _, f := range envFields(reflect.TypeFor[config]()) {
		tag, ok := f.Tag.Lookup("env")
		if !ok || f.Type.Kind() == reflect.String || f.Type.Kind() == reflect.Slice {
			continue
		}
		name := strings.Split(tag, ",")[0]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := validEnv()
			env[name] = "not-a-value"
			got := problemsOf(t, env)
			if len(got) != 1 || !strings.HasPrefix(got[0], name+": cannot parse \"not-a-value\"") || !strings.Contains(got[0], " like ") {
				t.Fatalf("problems = %q, want one starting %q with an example", got, name+`: cannot parse "not-a-value"`)
			}
		})
	}
}

// TestConfigAcceptsWhatTheStoreOpens: DATABASE_URL is checked by the store's own parser, so the
// configuration accepts exactly the forms store.Open takes (file: was refused before) and refuses
// the rest naming the accepted forms, without echoing a password.
func TestConfigAcceptsWhatTheStoreOpens(t *testing.T) {
	for _, url := range []string{"sqlite:bot.db", "sqlite:///var/lib/bot.db", "file:bot.db", "postgres://u@h/db", "postgresql://u@h/db"} {
		env := validEnv()
		env["DATABASE_URL"] = url
		if _, err := loadConfig(env); err != nil {
			t.Errorf("DATABASE_URL=%s refused: %v", url, err)
		}
	}
	for _, url := range []string{"mysql://u:s3cret@h/db", "sqlite:", "no-scheme"} {
		env := validEnv()
		env["DATABASE_URL"] = url
		_, err := loadConfig(env)
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("DATABASE_URL=%s: err %v, want a refusal naming DATABASE_URL without the password", url, err)
		}
	}
}
