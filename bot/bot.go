// Package bot is metabase-bot's Slack side: it reads slash commands, button clicks and form
// submissions from a Socket Mode connection, parses them, hands them to the core (package access)
// and words every answer, card, thread reply and audit line a person reads. It also implements
// the core's two seams into Slack: Directory (approver and requester groups, a mention's email)
// and Notifier (deliver one notice from the core's durable outbox).
//
// The house, by imports (each points inward):
//
//	cmd/metabase-bot   reads the environment, wires, serves HTTP; owns configuration defaults
//	bot                Slack: Socket Mode, commands, interactions, forms, Block Kit, words
//	bot/access         the core: requests, decisions, execution, timers, events; no Slack
//	bot/store          durable compare-and-set store and outbox (SQLite, PostgreSQL)
//	bot/approval       the pure request lifecycle
//	metabase           the Metabase HTTP client
//
// bot never imports bot/store; bot/access, bot/store and bot/approval never import slack-go.
// The fakes (bot/slacktest, metabase/metabasetest) are imported by tests only.
package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// slackAPI is the part of slack-go's Web API client the bot calls.
type slackAPI interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slack.MsgOption) (string, error)
	GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slack.GetUserGroupMembersOption) ([]string, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slack.GetUserInfoOption) (*slack.User, error)
	OpenViewContext(ctx context.Context, triggerID string, view slack.ModalViewRequest) (*slack.ViewResponse, error)
	GetPermalinkContext(ctx context.Context, params *slack.PermalinkParameters) (string, error)
	PublishViewContext(ctx context.Context, req slack.PublishViewContextRequest) (*slack.ViewResponse, error)
}

const (
	// eventTimeout bounds the work done for one envelope after its ack.
	eventTimeout = 2 * time.Minute
	// maxInFlight bounds concurrently handled envelopes, so a flood cannot exhaust memory.
	maxInFlight = 256
	// maxViewsInFlight bounds concurrently validated form submissions, apart from maxInFlight.
	maxViewsInFlight = 32
)

// Config is what the Slack side needs. cmd/metabase-bot fills it from the environment; the
// field comments name the variables.
type Config struct {
	// SlashCommand is the command the app registers (SLASH_COMMAND), with its leading slash.
	SlashCommand string
	// TeamID is the workspace the bot token belongs to (from auth.test); envelopes from another
	// team are ignored. Empty accepts any.
	TeamID string
	// ApproverGroup is the Slack user group id whose members may approve (APPROVER_GROUP); it is
	// read at click time so removing someone takes effect at once.
	ApproverGroup string
	// ApproverUsers are Slack user ids who may approve besides the group (APPROVER_USERS).
	ApproverUsers []string
	// RequesterGroup, when set, limits who may request (REQUESTER_GROUP).
	RequesterGroup string
	// IncidentGroup, when set, is the Slack user group id of the responders who may disable
	// without approval (INCIDENT_GROUP, breakglass.go); it is read when the command arrives.
	IncidentGroup string
	// AllowedChannels, when set, limits where commands may run (ALLOWED_CHANNELS).
	AllowedChannels []string
	// AuditChannel receives one new message per audit event (AUDIT_CHANNEL).
	AuditChannel string
	// DenyReasonRequired makes the deny form's reason mandatory (DENY_REASON_REQUIRED).
	DenyReasonRequired bool
	// DeactivationChannel, when set, is where the requests opened for deactivated Slack accounts
	// are posted (SLACK_DEACTIVATION_CHANNEL); empty turns that off (deactivation.go).
	DeactivationChannel string
	// MembersSpacing is the least time between two pages of users.list, a Tier 2 method (about
	// 20 calls a minute, docs/slack.md#rate-limits); zero means 3 s.
	MembersSpacing time.Duration
	// MetabaseURL is where links to dashboards and questions point (METABASE_URL); empty shows
	// items without links.
	MetabaseURL string
	// Policy is the core's policy, which cards, forms and help text describe.
	Policy access.Policy
	// Log receives structured logs; never secrets. Nil discards them.
	Log logrus.FieldLogger
	// Metrics, when set, counts Slack errors and connections.
	Metrics *Metrics
	// HomeEvery is the least time between two publishes of one person's Home tab; zero means 10 s.
	HomeEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.Log == nil {
		l := logrus.New()
		l.Out = io.Discard
		c.Log = l
	}
	return c
}

// Bot serves one Socket Mode connection. It is safe for concurrent use.
type Bot struct {
	cfg   Config
	v     *view
	slack slackAPI
	core  *access.Service
	dir   *Directory
	log   logrus.FieldLogger
	// home is what the bot published on people's Home tabs (home.go).
	home *homes
	// pacer spaces views.publish once Slack has rate limited it.
	pacer *pacer

	// inflight tracks envelope handlers so shutdown can wait for them.
	inflight sync.WaitGroup
	sem      chan struct{}
	viewSem  chan struct{}

	mu        sync.Mutex
	connected bool
}

// New returns the Slack side of core. dir is the Directory the core was built with: the bot
// also asks it before it opens a form that only approvers may submit.
func New(cfg Config, api slackAPI, core *access.Service, dir *Directory) (*Bot, error) {
	if api == nil || core == nil || dir == nil {
		return nil, errors.New("bot: slack client, core and directory are required")
	}
	if cfg.ApproverGroup == "" && len(cfg.ApproverUsers) == 0 {
		return nil, errors.New("bot: set APPROVER_GROUP or APPROVER_USERS: nobody could approve")
	}
	if cfg.SlashCommand == "" {
		return nil, errors.New("bot: SlashCommand is required")
	}
	cfg = cfg.withDefaults()
	return &Bot{
		cfg: cfg, v: &view{cfg: cfg}, slack: api, core: core, dir: dir, log: cfg.Log,
		home: newHomes(cfg.HomeEvery), pacer: newPacer(),
		sem: make(chan struct{}, maxInFlight), viewSem: make(chan struct{}, maxViewsInFlight),
	}, nil
}

// view words and draws everything people read; it depends on configuration only.
type view struct{ cfg Config }

// Connected reports whether the Socket Mode connection is up (for readiness).
func (b *Bot) Connected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.connected
}

func (b *Bot) setConnected(v bool) {
	b.mu.Lock()
	b.connected = v
	b.mu.Unlock()
}

// Run serves sm until ctx is cancelled, then stops taking envelopes, waits for handlers in
// flight (they finish under their own timeouts), and returns nil. It returns an error when the
// Socket Mode client fails fatally (for example a revoked app token).
func (b *Bot) Run(ctx context.Context, sm *socketmode.Client) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := sm.RunContext(gctx)
		if gctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("socket mode: %w", err)
	})
	g.Go(func() error { b.eventLoop(gctx, sm); return nil })
	g.Go(func() error { b.core.Run(gctx); return nil })
	err := g.Wait()
	b.setConnected(false)
	// Home refreshes waiting for their turn end now; a Home is only a view, drawn afresh when
	// its person opens it again.
	b.home.stop()
	b.inflight.Wait()
	// Deliver what the finished handlers enqueued, within a bound, so a clean shutdown leaves
	// nothing for the next start.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	b.core.Drain(drainCtx)
	// Then the audit log's head, after the messages it covers, under a bound of its own so a slow
	// drain does not cost the checkpoint.
	cpCtx, cpCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cpCancel()
	b.core.CheckpointAtShutdown(cpCtx)
	return err
}

// eventLoop reads envelopes and hands each to a handler goroutine after acking it.
func (b *Bot) eventLoop(ctx context.Context, sm *socketmode.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt, ok := <-sm.Events:
			if !ok {
				return
			}
			b.dispatch(ctx, sm, evt)
		}
	}
}

// acker is what dispatch needs from the Socket Mode client.
type acker interface {
	Ack(req socketmode.Request, payload ...any) error
}

// dispatch acks an envelope at once (Slack shows the user an error after 3 s) and handles it in
// a goroutine under its own timeout, detached from the connection's lifetime so a reconnect or
// shutdown does not abandon a half-done approval.
func (b *Bot) dispatch(ctx context.Context, sm acker, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		// slack-go handles a server "disconnect" internally and only shows the reconnection,
		// so readiness drops here rather than on a disconnect event.
		b.setConnected(false)
		b.log.Debug("Connecting to Slack")
		return
	case socketmode.EventTypeConnected:
		b.setConnected(true)
		b.cfg.Metrics.connected()
		b.log.Info("Connected to Slack")
		return
	case socketmode.EventTypeHello:
		return
	case socketmode.EventTypeDisconnect:
		b.setConnected(false)
		b.log.WithField("event_type", string(evt.Type)).Warn("Slack connection interrupted; reconnecting")
		return
	case socketmode.EventTypeConnectionError:
		b.setConnected(false)
		b.connectionError(evt)
		return
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("Slack refused the app token (invalid_auth): check SLACK_APP_TOKEN")
		return
	}
	if evt.Request == nil {
		b.log.WithField("event_type", string(evt.Type)).Warn("Ignoring an event without an envelope")
		return
	}
	var handle func(context.Context)
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok || !b.teamOK(cmd.TeamID) || cmd.Command != b.cfg.SlashCommand {
			b.ackOnly(sm, evt, "slash command from another team or for another command")
			return
		}
		handle = func(ctx context.Context) { b.handleCommand(ctx, cmd) }
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || !b.teamOK(cb.Team.ID) {
			b.ackOnly(sm, evt, "interaction from another team")
			return
		}
		if cb.Type == slack.InteractionTypeViewSubmission {
			// A view submission's ack carries its field errors, so it is answered after
			// validation (within Slack's 3 s), not before.
			// They get slots of their own, so slow handlers cannot push their ack past 3 s.
			b.spawnIn(ctx, b.viewSem, func(ctx context.Context) { forms{b}.handleViewSubmission(ctx, sm, *evt.Request, cb) })
			return
		}
		handle = func(ctx context.Context) { b.handleInteraction(ctx, cb) }
	case socketmode.EventTypeEventsAPI:
		// The manifest subscribes to user_change and app_home_opened. A user_change is acked by
		// its handler once recorded (deactivation.go): an event it could not record is left for
		// Slack to deliver again. Anything else is acked and logged.
		if (*deactivations)(b).take(ctx, sm, evt) {
			return
		}
		ev, _ := evt.Data.(slackevents.EventsAPIEvent)
		opened, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
		if !ok {
			b.ackOnly(sm, evt, "event type the bot does not use")
			return
		}
		if !b.teamOK(ev.TeamID) {
			b.ackOnly(sm, evt, "event from another team")
			return
		}
		handle = func(ctx context.Context) { b.homeOpened(ctx, opened) }
	default:
		b.ackOnly(sm, evt, "unsupported envelope type")
		return
	}
	if err := sm.Ack(*evt.Request); err != nil {
		b.log.WithError(err).WithField("envelope_id", evt.Request.EnvelopeID).Error("Could not ack an envelope")
	}
	b.spawn(ctx, handle)
}

func (b *Bot) ackOnly(sm acker, evt socketmode.Event, why string) {
	if err := sm.Ack(*evt.Request); err != nil {
		b.log.WithError(err).Error("Could not ack an envelope")
	}
	b.log.WithFields(logrus.Fields{"envelope_id": evt.Request.EnvelopeID, "event_type": string(evt.Type)}).
		Warnf("Ignoring envelope: %s", why)
}

func (b *Bot) teamOK(team string) bool { return b.cfg.TeamID == "" || team == b.cfg.TeamID }

// spawn runs f in a tracked goroutine with a bounded context that outlives ctx's cancellation,
// so shutdown waits for it instead of cutting it off mid-approval.
func (b *Bot) spawn(ctx context.Context, f func(context.Context)) { b.spawnIn(ctx, b.sem, f) }

// spawnIn is spawn with a given pool of slots.
func (b *Bot) spawnIn(ctx context.Context, sem chan struct{}, f func(context.Context)) {
	b.inflight.Add(1)
	go func() {
		defer b.inflight.Done()
		// The slot is taken inside the goroutine: the event loop must never block, or the acks
		// of later envelopes would wait behind slow handlers.
		sem <- struct{}{}
		defer func() { <-sem }()
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
		defer cancel()
		hctx = context.WithValue(hctx, runCtxKey{}, ctx)
		defer func() {
			if p := recover(); p != nil {
				b.log.WithField("panic", fmt.Sprint(p)).Error("Handler panicked; the bot keeps serving")
			}
		}()
		f(hctx)
	}()
}

// runCtxKey carries, in a handler's context, the context of the connection it came from, for
// the long reads that should stop with the bot rather than hold its shutdown (leavers.go).
type runCtxKey struct{}

// logger is the logger of the operation under way (set by the handler that started it, with the
// person, channel and request as fields), or the bot's own.
func (b *Bot) logger(ctx context.Context) logrus.FieldLogger { return access.Logger(ctx, b.log) }

// connectionError logs why Socket Mode could not connect, with what to fix. slack-go retries such
// failures for ever with backoff (docs/slack.md#socket-mode), so without the cause an app token
// lacking connections:write, or Socket Mode turned off, would only show as endless reconnecting.
func (b *Bot) connectionError(evt socketmode.Event) {
	log := b.log.WithField("event_type", string(evt.Type))
	ce, ok := evt.Data.(*slack.ConnectionErrorEvent)
	if !ok || ce.ErrorObj == nil {
		log.Warn("Slack connection interrupted; reconnecting")
		return
	}
	log = log.WithFields(logrus.Fields{"error": ce.ErrorObj.Error(), "attempt": ce.Attempt, "retry_in": ce.Backoff.String()})
	if fix := SocketModeHint(ce.ErrorObj); fix != "" {
		log = log.WithField("fix", fix)
	}
	log.Warn("Could not connect to Slack over Socket Mode; retrying")
}

// SocketModeHint says what to change when apps.connections.open fails, naming the variable, or ""
// for failures that are not the configuration's (the network, Slack having trouble).
func SocketModeHint(err error) string {
	var se slack.SlackErrorResponse
	var sce slack.StatusCodeError
	switch {
	case errors.As(err, &se):
		switch se.Err {
		case "missing_scope":
			return "SLACK_APP_TOKEN lacks the scope connections:write: generate an app-level token with it (Basic Information → App-Level Tokens)"
		case "invalid_auth", "not_authed", "token_revoked", "account_inactive", "not_allowed_token_type":
			return "check SLACK_APP_TOKEN: it must be this app's app-level token (xapp-…, Basic Information → App-Level Tokens)"
		case "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return ""
		}
		return "check that Socket Mode is turned on for the app (Settings → Socket Mode) and that SLACK_APP_TOKEN belongs to it"
	case errors.As(err, &sce) && sce.Code == 404:
		return "check SLACK_API_URL and that Socket Mode is turned on for the app (Settings → Socket Mode)"
	}
	return ""
}
