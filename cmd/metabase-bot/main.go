// Command metabase-bot is a Slack app (Socket Mode) that disables and re-enables Metabase users
// after approval by a Slack user group, with an audit trail.
//
// Usage:
//
//	metabase-bot               run the bot (configuration from the environment; see README)
//	metabase-bot version       print the version
//	metabase-bot healthcheck   probe /healthz of a running bot (for images without curl)
//	metabase-bot check         check the configuration once against Slack, Metabase and the store
//	metabase-bot help          print the usage (also -h, --help)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot"
	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// maxOutboxLease caps how long a claimed Slack delivery stays claimed after its process died; a
// shorter EXECUTION_LEASE shortens it too.
const maxOutboxLease = 30 * time.Second

// tick is how often each process looks for due work (expiries, reminders, returns, takeovers)
// and for messages other replicas left undelivered.
const tick = time.Second

// Set by the linker: -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], env.ToMap(os.Environ()), os.Stdout, os.Stderr))
}

// run is the whole program, callable from tests: it returns the exit code. It blocks until ctx
// is cancelled (a signal) or the bot fails.
func run(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			printUsage(stdout)
			return 0
		}
		for _, c := range commands {
			if c.name == args[0] {
				return c.run(ctx, args[1:], environ, stdout, stderr)
			}
		}
		fmt.Fprintf(stderr, "metabase-bot: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	cfg, err := loadConfig(environ)
	if err != nil {
		fmt.Fprintln(stderr, "metabase-bot:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if err := serve(ctx, cfg, log); err != nil {
		log.WithError(err).Error("metabase-bot stopped")
		return 1
	}
	log.Info("metabase-bot stopped")
	return 0
}

func newLogger(cfg config, out io.Writer) *logrus.Logger {
	l := logrus.New()
	l.Out = out
	l.Level = cfg.logLevel
	if cfg.LogFormat == "text" {
		l.Formatter = &logrus.TextFormatter{FullTimestamp: true}
	} else {
		l.Formatter = &logrus.JSONFormatter{}
	}
	return l
}

// readiness is what /readyz reports.
type readiness struct {
	bot   *bot.Bot
	store *store.Store
	mb    *metabase.Client
	// instances, with several Metabase instances, replace mb: ready while one answers.
	instances []namedClient
	ready     chan struct{} // closed once start-up checks passed

	waiting atomic.Value // string: what start-up waits for, set by setWaiting
}

func (rd *readiness) check(ctx context.Context) (detail string, err error) {
	select {
	case <-rd.ready:
	default:
		if what, _ := rd.waiting.Load().(string); what != "" {
			return "", errors.New("starting: " + what)
		}
		return "", errors.New("starting: start-up checks have not passed yet")
	}
	if !rd.bot.Connected() {
		return "", errors.New("slack: socket mode not connected")
	}
	if err := rd.store.Ping(ctx); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	if err := storeWritable(ctx, rd.store); err != nil {
		return "", err
	}
	if len(rd.instances) > 0 {
		return instancesReady(ctx, rd.instances)
	}
	if err := rd.mb.Health(ctx); err != nil {
		return "", fmt.Errorf("metabase: %w", err)
	}
	return "", nil
}

// serve wires the clients, runs start-up checks and the bot, and shuts down in order.
func serve(ctx context.Context, cfg config, log *logrus.Logger) error {
	started := time.Now()
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open DATABASE_URL: %w", err)
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := bot.NewMetrics(reg, st.CountByState)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "metabase_bot_store_commits_total",
		Help: "Write transactions this process committed: each is one durable write to the database."},
		func() float64 { return float64(st.Commits()) }))
	reg.MustRegister(newStoreErrors(st))
	st.OnFault(func(h store.Health, err error) {
		log.WithError(err).WithFields(logrus.Fields{"operation": h.Op, "cause": h.Cause}).
			Error("The database failed: people are told that nothing was changed, and /readyz is not ready until a write succeeds again")
	})

	if err := checkInstancesBound(ctx, cfg, st); err != nil {
		return err
	}
	clients := make([]namedClient, len(cfg.instances))
	for i, in := range cfg.instances {
		c, err := newMetabaseFor(in, metabase.WithObserver(metrics.ObserveMetabaseOf(in.Name)))
		if err != nil {
			return err
		}
		clients[i] = namedClient{name: in.Name, urlVar: in.urlVar, client: c, botID: new(atomic.Int64)}
	}
	// What each instance is (version, capabilities) is learned now and kept fresh in the
	// background, so no request waits to ask it (metabase/facts.go).
	for _, c := range clients {
		go c.client.KeepFactsFresh(ctx, factsRefresh, func(err error) {
			log.WithField("instance", c.name).WithError(err).Warn("Could not learn what this Metabase can do; requests will ask when they need it")
		})
	}
	mb := clients[0].client
	api := slack.New(cfg.SlackBotToken, slack.OptionAppLevelToken(cfg.SlackAppToken), slack.OptionAPIURL(cfg.SlackAPIURL))

	rd := &readiness{store: st, mb: mb, ready: make(chan struct{})}
	if len(clients) > 1 {
		rd.instances = clients
	}
	srv, err := startHTTP(cfg.HTTPAddr, reg, rd, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	team, err := startupChecks(ctx, cfg, api, clients, log, rd.setWaiting)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	b, err := wire(cfg, team, api, clients, st, log, metrics)
	if err != nil {
		return err
	}
	rd.bot = b
	close(rd.ready)
	sm := socketmode.New(api)
	log.WithFields(logrus.Fields{"store": st.Backend(), "dry_run": cfg.DryRun, "startup_ms": time.Since(started).Milliseconds()}).
		Info("metabase-bot started")
	runErr := make(chan error, 1)
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	go func() { runErr <- b.Run(runCtx, sm) }()
	select {
	case err := <-runErr:
		return err
	case <-ctx.Done():
	}
	log.Info("Shutting down: no new envelopes; finishing work in flight")
	cancelRun()
	select {
	case err := <-runErr:
		return err
	case <-time.After(cfg.ShutdownTimeout):
		return fmt.Errorf("work in flight did not finish within SHUTDOWN_TIMEOUT (%s); the next start reconciles it", cfg.ShutdownTimeout)
	}
}

// factsRefresh is how often each instance's facts are read again in the background: within the
// client's ten minutes of trust, so a request never finds them stale.
const factsRefresh = 5 * time.Minute

// newMetabaseFor is the Metabase client of one configured instance.
func newMetabaseFor(in metabaseInstance, extra ...metabase.Option) (*metabase.Client, error) {
	opts := append([]metabase.Option{metabase.WithTimeout(in.Timeout)}, extra...)
	if in.APIKey != "" {
		opts = append(opts, metabase.WithAPIKey(in.APIKey))
	} else {
		opts = append(opts, metabase.WithPassword(in.Username, in.Password))
	}
	mb, err := metabase.New(in.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.urlVar, err)
	}
	return mb, nil
}

// wire builds the core and its Slack side from cfg, the way every process of the bot does.
func wire(cfg config, team string, api *slack.Client, clients []namedClient, st *store.Store, log logrus.FieldLogger, metrics *bot.Metrics) (*bot.Bot, error) {
	botMetabaseID := int(clients[0].botID.Load())
	instances := make([]access.Instance, len(clients))
	for i, c := range clients {
		instances[i] = access.Instance{Name: c.name, Metabase: c.client, Notifications: c.client, Leftovers: c.client,
			BotUserID: func() int { return int(c.botID.Load()) }}
	}
	policy := access.Policy{
		RequiredApprovals: cfg.RequiredApprovals, AdminRequiredApprovals: max(cfg.AdminRequiredApprovals, cfg.RequiredApprovals),
		AllowSelfApproval: cfg.AllowSelfApproval, RequireReason: cfg.RequireReason,
		RequestTTL: cfg.RequestTTL, FinalReminder: cfg.ReminderBeforeExpiry,
		ProtectedUsers: cfg.ProtectedUsers, BotMetabaseUserID: botMetabaseID, DryRun: cfg.DryRun,
		ReturnLocation: cfg.returnLocation, MaxReturnAhead: cfg.MaxReturnAhead,
		ReviewWindow: cfg.ReviewWindow, IncidentMaxUsers: cfg.IncidentMaxUsers,
	}
	slackCfg := bot.Config{
		SlashCommand: cfg.SlashCommand, TeamID: team,
		ApproverGroup: cfg.ApproverGroup, ApproverUsers: cfg.ApproverUsers,
		RequesterGroup: cfg.RequesterGroup, AllowedChannels: cfg.AllowedChannels, AuditChannel: cfg.AuditChannel,
		DenyReasonRequired: cfg.DenyReasonRequired, Policy: policy, Log: log, Metrics: metrics,
		MetabaseURL: cfg.MetabaseURL, DeactivationChannel: cfg.SlackDeactivationChannel, IncidentGroup: cfg.IncidentGroup,
		HomeEvery: cfg.HomeRefreshEvery,
	}
	dir := bot.NewDirectory(slackCfg, api)
	notifier := bot.NewNotifier(slackCfg, api)
	checkpointEvery := cfg.AuditCheckpointEvery
	if cfg.AuditChannel == "" {
		checkpointEvery = 0 // no channel to anchor the chain in: take no claims, post nothing
	}
	core, err := access.New(access.Config{
		Policy: policy,
		Execution: access.Execution{BulkConcurrency: cfg.BulkConcurrency, ExecLease: cfg.ExecutionLease,
			OutboxLease: min(maxOutboxLease, cfg.ExecutionLease), Tick: tick, ReplyStoreTimeout: cfg.StoreReplyTimeout},
		Log: log, Metrics: metrics, CheckpointEvery: checkpointEvery,
		Watch: access.Watch{Interval: cfg.WatchInterval, Policy: access.ReactivationPolicy(cfg.ReactivationPolicy)},
	}, access.Deps{Store: st, Instances: instances, Directory: dir, Notifier: notifier,
		ChatUsers: st, Responders: responders(cfg, dir)})
	if err != nil {
		return nil, err
	}
	b, err := bot.New(slackCfg, api, core, dir)
	if err != nil {
		return nil, err
	}
	// A card posted or updated refreshes the Home tabs that show its request.
	notifier.OnChange(b.RequestChanged)
	return b, nil
}

// responders is who may break glass: nobody (off) unless INCIDENT_GROUP is set.
func responders(cfg config, dir *bot.Directory) access.Responders {
	if cfg.IncidentGroup == "" {
		return nil
	}
	return dir
}

func startHTTP(addr string, reg *prometheus.Registry, rd *readiness, log logrus.FieldLogger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		detail, err := rd.check(ctx)
		if err != nil {
			http.Error(w, "not ready: "+err.Error()+detail, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready"+detail)
	})
	// ContinueOnError: a collector that reads the store (requests by state) fails while the
	// database is down, and the rest, the store's error counts among them, must still be served
	// then (docs/faults.md).
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_ADDR %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("HTTP server stopped")
		}
	}()
	log.WithField("http_addr", ln.Addr().String()).Info("Serving /healthz, /readyz and /metrics")
	return srv, nil
}

// startupChecks proves the configuration before the bot takes envelopes. Wrong credentials stop
// the bot with a message naming the fix; a Metabase that is down is waited for with backoff
// while /readyz says not ready and what it waits for (through waiting, which may be nil), instead
// of crashing in a loop.
//
// With several instances, no instance is waited for: one that does not answer is named in the
// logs and checked again in the background (checkInstances), so the others serve meanwhile.
func startupChecks(ctx context.Context, cfg config, api *slack.Client, clients []namedClient, log logrus.FieldLogger, waiting func(string)) (team string, err error) {
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		return "", fmt.Errorf("slack auth.test with SLACK_BOT_TOKEN failed: %w%s", err, hintFor(err))
	}
	log.WithFields(logrus.Fields{"team_id": auth.TeamID, "bot_user_id": auth.UserID}).Info("Slack bot token works")
	if err := checkSocketMode(ctx, api); err != nil {
		return "", err
	}
	log.Info("Slack app token opens Socket Mode connections")
	if len(clients) > 1 {
		if err := checkInstances(ctx, clients, log); err != nil {
			return "", err
		}
	} else {
		id, err := waitForMetabase(ctx, cfg, clients[0].client, log, waiting)
		if err != nil {
			return "", err
		}
		clients[0].botID.Store(int64(id))
	}
	if err := checkApproversAtStart(ctx, cfg, api, log); err != nil {
		return "", err
	}
	return auth.TeamID, nil
}

// waitForMetabase waits, with backoff, for the single instance to answer, and checks the bot's
// rights there; it returns the bot's own Metabase user id.
func waitForMetabase(ctx context.Context, cfg config, mb *metabase.Client, log logrus.FieldLogger, waiting func(string)) (int, error) {
	var me *metabase.User
	var err error
	for attempt := 0; ; attempt++ {
		me, err = mb.CurrentUser(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, metabase.ErrUnauthorized) {
			return 0, fmt.Errorf("metabase rejected the credentials (401): check METABASE_API_KEY (or METABASE_USERNAME/METABASE_PASSWORD): %w", err)
		}
		if errors.Is(err, metabase.ErrForbidden) {
			return 0, fmt.Errorf("metabase refused the bot (403): its API key must belong to the Administrators group: %w", err)
		}
		wait := min(time.Second<<min(attempt, 5), 30*time.Second)
		if waiting != nil {
			waiting(waitingForMetabase(cfg.MetabaseURL, err))
		}
		log.WithError(err).WithField("retry_in", wait.String()).Warn("Metabase is not reachable yet; waiting (readiness stays false)")
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
	if waiting != nil {
		waiting("")
	}
	if !me.IsSuperuser {
		return 0, fmt.Errorf("the Metabase account %s is not an admin: user endpoints need the Administrators group (put the API key in Administrators)", me.Email)
	}
	log.WithFields(logrus.Fields{"metabase_user_id": me.ID}).Info("Metabase credentials carry admin rights")
	return me.ID, nil
}

// checkApproversAtStart checks that someone can approve, and that the audit channel is reachable.
func checkApproversAtStart(ctx context.Context, cfg config, api *slack.Client, log logrus.FieldLogger) error {
	approvers := len(cfg.ApproverUsers)
	if cfg.ApproverGroup != "" {
		members, err := api.GetUserGroupMembersContext(ctx, cfg.ApproverGroup)
		if err != nil {
			return fmt.Errorf("APPROVER_GROUP %s cannot be read: %w%s", cfg.ApproverGroup, err, hintFor(err))
		}
		if len(members) == 0 {
			return fmt.Errorf("APPROVER_GROUP %s has no members: nobody could approve", cfg.ApproverGroup)
		}
		approvers += len(members)
	}
	if approvers < cfg.RequiredApprovals+boolInt(!cfg.AllowSelfApproval) {
		log.WithFields(logrus.Fields{"approvers": approvers, "required_approvals": cfg.RequiredApprovals}).
			Warn("Requests can deadlock: with self-approval off, an approver's own request needs more approvers than are configured")
	}
	if cfg.AuditChannel != "" {
		if _, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: cfg.AuditChannel}); err != nil {
			return fmt.Errorf("AUDIT_CHANNEL %s is not reachable: %w%s", cfg.AuditChannel, err, hintFor(err))
		}
	}
	if cfg.SlackDeactivationChannel != "" {
		if _, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: cfg.SlackDeactivationChannel}); err != nil {
			return fmt.Errorf("SLACK_DEACTIVATION_CHANNEL %s is not reachable: %w%s", cfg.SlackDeactivationChannel, err, hintFor(err))
		}
	}
	return nil
}

// checkSocketMode asks for a Socket Mode connection URL with the app token, as the bot is about
// to, so that a wrong app token or Socket Mode turned off stops the start with the fix instead of
// leaving the bot reconnecting for ever. The URL's ticket is left unused; Slack expires it.
func checkSocketMode(ctx context.Context, api *slack.Client) error {
	if _, _, err := api.StartSocketModeContext(ctx); err != nil {
		fix := ""
		if h := bot.SocketModeHint(err); h != "" {
			fix = " (" + h + ")"
		}
		return fmt.Errorf("slack apps.connections.open with SLACK_APP_TOKEN failed: %w%s", err, fix)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hintFor is bot.SlackHint as a parenthesised suffix for start-up errors.
func hintFor(err error) string {
	if h := bot.SlackHint(err); h != "" {
		return " (" + h + ")"
	}
	return ""
}

// healthcheck probes a running bot's /healthz, for container images without curl.
func healthcheck(ctx context.Context, environ map[string]string, stderr io.Writer) int {
	addr := environ["HTTP_ADDR"]
	if addr == "" {
		addr = ":8080"
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "healthcheck: status", resp.Status)
		return 1
	}
	return 0
}
