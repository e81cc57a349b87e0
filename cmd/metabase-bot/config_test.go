package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
		cfg.LogFormat != "json" || cfg.DryRun || cfg.SlackAPIURL != "https://slack.com/api/" || cfg.returnLocation != time.UTC {
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
	}
	_, err := loadConfig(env)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	msg := err.Error()
	for _, name := range []string{"SLACK_APP_TOKEN must start with xapp-", "SLACK_BOT_TOKEN is required", "SLACK_API_URL",
		"APPROVER_GROUP or APPROVER_USERS", "METABASE_URL must be an http(s) URL", "METABASE_API_KEY must start with mb_",
		"REQUEST_TTL", "REQUIRED_APPROVALS", "LOG_FORMAT", "RETURN_TIMEZONE", "DATABASE_URL"} {
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
