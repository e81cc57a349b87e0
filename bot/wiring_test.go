package bot

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// testPolicy is the policy cmd/metabase-bot's defaults produce, for tests that build the bot by
// hand.
func testPolicy() access.Policy {
	return access.Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequireReason: true,
		RequestTTL: 24 * time.Hour, FinalReminder: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: 366 * 24 * time.Hour}
}

// testExecution is cmd/metabase-bot's default execution settings, under instance id.
func testExecution(id string) access.Execution {
	return access.Execution{InstanceID: id, BulkConcurrency: 4, ExecLease: 2 * time.Minute, OutboxLease: 30 * time.Second, Tick: time.Second}
}

// newTestBot wires the Slack side and the core as cmd/metabase-bot does, over api, mb and st.
func newTestBot(t testing.TB, cfg Config, exec access.Execution, api slackAPI, mb access.Metabase, st access.Store) *Bot {
	t.Helper()
	if cfg.SlashCommand == "" {
		cfg.SlashCommand = "/metabase"
	}
	if cfg.Policy.RequiredApprovals == 0 {
		cfg.Policy = testPolicy()
	}
	dir := NewDirectory(cfg, api)
	core, err := access.New(access.Config{Policy: cfg.Policy, Execution: exec, Log: cfg.Log},
		access.Deps{Store: st, Metabase: mb, Directory: dir, Notifier: NewNotifier(cfg, api)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, api, core, dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openTestStore opens a SQLite store in the test's temporary directory.
func openTestStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
