package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Slack fixtures, as in the end-to-end tests.
const (
	opsChannel    = "COPS"
	auditChannel  = "CAUDIT"
	approverGroup = "SAPPROVERS"
	requester     = "UREQ"
	approver      = "UAPP"
)

// fakes are one fake Slack and one fake Metabase, loopback only.
type fakes struct {
	tb    *benchTB
	slack *slacktest.Server
	mb    *metabasetest.Server
}

// newFakes starts the fakes with the usual channels and an approver group of approvers. The load
// runs measure the bot, not Slack's rate tiers: they lift them explicitly.
func newFakes(name string, approvers ...string) *fakes {
	return newFakesLimited(name, false, approvers...)
}

// newFakesLimited is newFakes with Slack's documented rate limits on when limited is set.
func newFakesLimited(name string, limited bool, approvers ...string) *fakes {
	tb := newTB(name)
	fs := slacktest.New(tb, slacktest.Options{NoRateLimits: !limited})
	fs.AddUser(slacktest.User{ID: requester, Name: "alice", RealName: "Alice", Email: "alice@example.com"})
	if len(approvers) == 0 {
		approvers = []string{approver}
	}
	fs.SetUserGroup(approverGroup, approvers...)
	fs.AddChannel(opsChannel, "ops", true)
	fs.AddChannel(auditChannel, "metabase-audit", true)
	return &fakes{tb: tb, slack: fs, mb: metabasetest.New(tb)}
}

func (f *fakes) close() { f.tb.close() }

// botEnv is the bot's environment against f; extra replaces or adds variables.
func (f *fakes) botEnv(dbURL string, extra ...string) []string {
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(f.tb.TempDir(), "bot.db")
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"SLACK_APP_TOKEN=xapp-test", "SLACK_BOT_TOKEN=xoxb-test", "SLACK_API_URL=" + f.slack.APIURL(),
		"APPROVER_GROUP=" + approverGroup, "AUDIT_CHANNEL=" + auditChannel,
		"METABASE_URL=" + f.mb.URL(), "METABASE_API_KEY=" + metabasetest.AdminAPIKey,
		"DATABASE_URL=" + dbURL, "HTTP_ADDR=127.0.0.1:0", "LOG_LEVEL=info", "METABASE_TIMEOUT=10s",
	}
	return append(env, extra...)
}

// proc is a started child process (the bot or the baseline client).
type proc struct {
	cmd     *exec.Cmd
	started time.Time
	log     string
}

// start runs bin with env and waits until it has opened one more Socket Mode connection.
func (f *fakes) start(bin string, env []string) (*proc, time.Duration) {
	logPath := filepath.Join(f.tb.TempDir(), filepath.Base(bin)+".log")
	out, err := os.Create(logPath)
	if err != nil {
		f.tb.Fatal(err)
	}
	before := f.slack.Connections()
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	p := &proc{cmd: cmd, log: logPath}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.tb.Fatal(err)
	}
	f.tb.Cleanup(func() { p.stop(); out.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.slack.WaitConnections(ctx, before+1); err != nil {
		b, _ := os.ReadFile(logPath)
		f.tb.Fatalf("%s did not connect: %v\n%s", bin, err, b)
	}
	return p, time.Since(p.started)
}

// stop sends SIGTERM and waits (bounded) for the process to exit.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// rssKB reads the resident set size of the process from /proc.
func (p *proc) rssKB() (rss, peak int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			peak = n
		}
	}
	return rss, peak
}
