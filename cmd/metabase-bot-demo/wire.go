package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot"
	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// The tokens the fake Slack accepts by default (slacktest.Options).
const (
	botToken = "xoxb-test"
	appToken = "xapp-test"
)

// The production defaults of cmd/metabase-bot's configuration (its config.go), which the demo
// keeps so it shows the bot as it ships.
const (
	requestTTL      = 24 * time.Hour
	finalReminder   = time.Hour
	maxReturnAhead  = 8784 * time.Hour
	bulkConcurrency = 4
	executionLease  = 2 * time.Minute
	outboxLease     = 30 * time.Second
	tick            = time.Second
	metabaseTimeout = 10 * time.Second
	// connectTimeout bounds the wait for the bot's first Socket Mode connection.
	connectTimeout = 15 * time.Second
	// shutdownTimeout bounds how long quitting waits for the bot to finish work in flight.
	shutdownTimeout = 10 * time.Second
)

// runningBot is the real bot, wired the way cmd/metabase-bot wires it, on a temporary SQLite file.
type runningBot struct {
	store *store.Store
	dir   string
	stop  context.CancelFunc
	done  chan error
}

// startBot wires the bot against w and runs it until stop is called; it returns once the bot's
// Socket Mode connection is up.
func startBot(ctx context.Context, w *world, approvals int, log logrus.FieldLogger) (*runningBot, error) {
	dir, err := os.MkdirTemp("", "metabase-bot-demo-")
	if err != nil {
		return nil, err
	}
	rb := &runningBot{dir: dir}
	ok := false
	defer func() {
		if !ok {
			rb.close()
		}
	}()
	rb.store, err = store.Open(ctx, "sqlite:"+filepath.Join(dir, "demo.db"))
	if err != nil {
		return nil, fmt.Errorf("open the store: %w", err)
	}
	metrics := bot.NewMetrics(prometheus.NewRegistry(), rb.store.CountByState)
	mb, err := metabase.New(w.mb.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey),
		metabase.WithTimeout(metabaseTimeout), metabase.WithObserver(metrics.ObserveMetabase))
	if err != nil {
		return nil, err
	}
	api := slack.New(botToken, slack.OptionAppLevelToken(appToken), slack.OptionAPIURL(w.slack.APIURL()))

	// What cmd/metabase-bot's start-up checks learn: the team, and the bot's own Metabase
	// account, which it must never disable.
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth.test: %w", err)
	}
	me, err := mb.CurrentUser(ctx)
	if err != nil {
		return nil, fmt.Errorf("metabase: %w", err)
	}

	policy := access.Policy{
		RequiredApprovals: approvals, AdminRequiredApprovals: approvals, RequireReason: true,
		RequestTTL: requestTTL, FinalReminder: finalReminder, BotMetabaseUserID: me.ID,
		ReturnLocation: time.UTC, MaxReturnAhead: maxReturnAhead,
	}
	slackCfg := bot.Config{
		SlashCommand: slashCommand, TeamID: auth.TeamID, ApproverGroup: approverGroup,
		AuditChannel: auditChannel, Policy: policy, Log: log, Metrics: metrics,
	}
	directory := bot.NewDirectory(slackCfg, api)
	notifier := bot.NewNotifier(slackCfg, api)
	core, err := access.New(access.Config{
		Policy: policy,
		Execution: access.Execution{BulkConcurrency: bulkConcurrency, ExecLease: executionLease,
			OutboxLease: outboxLease, Tick: tick},
		Log: log, Metrics: metrics,
	}, access.Deps{Store: rb.store, Metabase: mb, Directory: directory, Notifier: notifier})
	if err != nil {
		return nil, err
	}
	b, err := bot.New(slackCfg, api, core, directory)
	if err != nil {
		return nil, err
	}
	// As cmd/metabase-bot: a card posted or updated refreshes the Home tabs that show its request.
	notifier.OnChange(b.RequestChanged)

	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	rb.stop, rb.done = stop, make(chan error, 1)
	go func() { rb.done <- b.Run(runCtx, socketmode.New(api)) }()
	wctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	connected := make(chan error, 1)
	go func() { connected <- w.slack.WaitConnected(wctx) }()
	select {
	case err := <-connected:
		if err != nil {
			return nil, fmt.Errorf("the bot did not connect to the fake Slack: %w", err)
		}
	case err := <-rb.done:
		rb.stop = nil
		return nil, fmt.Errorf("the bot stopped before it connected: %w", err)
	}
	ok = true
	return rb, nil
}

// close stops the bot, waiting for the work in flight as a shutdown of the real bot does, then
// removes the store.
func (rb *runningBot) close() error {
	var err error
	if rb.stop != nil {
		rb.stop()
		select {
		case err = <-rb.done:
		case <-time.After(shutdownTimeout):
			err = fmt.Errorf("the bot did not stop within %s", shutdownTimeout)
		}
	}
	if rb.store != nil {
		err = errors.Join(err, rb.store.Close())
	}
	return errors.Join(err, os.RemoveAll(rb.dir))
}
