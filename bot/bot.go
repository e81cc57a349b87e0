// Package bot is metabase-bot's Slack side: it reads slash commands and button clicks from a
// Socket Mode connection, checks who may request and who may approve, renders approval cards,
// and drives requests through their lifecycle (package approval) in the durable store (package
// store), calling Metabase (package metabase) only after a decision has been recorded.
//
// The flow of a disable: the slash command is acked at once; the bot looks the target up,
// validates, and creates the request together with an outbox row for its card in one
// transaction. Outbox rows are Slack side effects (card posts and updates, thread replies,
// audit messages) that a delivery loop sends in order, so a crash neither loses nor repeats
// them. A click moves the request with a compare-and-set; the one writer that reaches the quorum
// also takes the execution lease, calls Metabase, and records the outcome with its messages.
// A timer loop finds expiries, reminders, scheduled returns and executions abandoned by a dead
// process, on every replica, and the compare-and-set lets exactly one of them act.
package bot

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// slackAPI is the part of slack-go's Web API client the bot calls.
type slackAPI interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slack.MsgOption) (string, error)
	GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slack.GetUserGroupMembersOption) ([]string, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slack.GetUserInfoOption) (*slack.User, error)
	OpenViewContext(ctx context.Context, triggerID string, view slack.ModalViewRequest) (*slack.ViewResponse, error)
}

// metabaseAPI is the part of the Metabase client the bot calls.
type metabaseAPI interface {
	User(ctx context.Context, id int) (*metabase.User, error)
	UserByEmail(ctx context.Context, email string) (*metabase.User, error)
	DisableUser(ctx context.Context, id int) error
	ReactivateUser(ctx context.Context, id int) (*metabase.User, error)
	UpdateUser(ctx context.Context, id int, u metabase.UserUpdate) (*metabase.User, error)
	ListUsers(ctx context.Context, status metabase.UserStatus) ([]metabase.User, error)
}

// requestStore is the durable compare-and-set store the bot keeps requests and its outbox in.
type requestStore interface {
	Create(ctx context.Context, r approval.Request, out ...store.Outbox) error
	Get(ctx context.Context, id string) (approval.Request, error)
	Update(ctx context.Context, id string, fn func(r *approval.Request) ([]store.Outbox, error)) (approval.Request, error)
	Due(ctx context.Context, now time.Time, limit int) ([]approval.Request, error)
	ByTarget(ctx context.Context, metabaseUserID int) ([]approval.Request, error)
	ClaimOutbox(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.Outbox, error)
	CompleteOutbox(ctx context.Context, id int64, owner string) error
	CompleteOutboxAndUpdate(ctx context.Context, id int64, owner, requestID string, fn func(r *approval.Request) error) (approval.Request, error)
	RetryOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) error
}

// Defaults for Config fields left zero.
const (
	defaultRequestTTL      = 24 * time.Hour
	defaultExecLease       = 2 * time.Minute
	defaultOutboxLease     = 30 * time.Second
	defaultTick            = time.Second
	defaultBulkConcurrency = 4
	defaultFinalReminder   = time.Hour
	defaultMaxReturnAhead  = 366 * 24 * time.Hour
	// eventTimeout bounds the work done for one envelope after its ack.
	eventTimeout = 2 * time.Minute
	// maxInFlight bounds concurrently handled envelopes, so a flood cannot exhaust memory.
	maxInFlight = 256
	// maxViewsInFlight bounds concurrently validated form submissions, apart from maxInFlight.
	maxViewsInFlight = 32
)

// Config is everything the bot needs besides its clients. cmd/metabase-bot fills it from the
// environment; the field comments name the variables.
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
	// AllowedChannels, when set, limits where commands may run (ALLOWED_CHANNELS).
	AllowedChannels []string
	// AuditChannel receives one new message per state change (AUDIT_CHANNEL).
	AuditChannel string
	// AllowSelfApproval lets requesters approve their own requests (ALLOW_SELF_APPROVAL).
	AllowSelfApproval bool
	// RequiredApprovals is the quorum (REQUIRED_APPROVALS, default 1).
	RequiredApprovals int
	// AdminRequiredApprovals, when larger, is the quorum for requests naming a Metabase admin
	// (ADMIN_REQUIRED_APPROVALS).
	AdminRequiredApprovals int
	// RequireReason refuses requests without a reason (REQUIRE_REASON).
	RequireReason bool
	// DenyReasonRequired makes the deny form's reason mandatory (DENY_REASON_REQUIRED).
	DenyReasonRequired bool
	// RequestTTL is how long a request waits for approval (REQUEST_TTL, default 24h).
	RequestTTL time.Duration
	// FinalReminder is how long before expiry the second reminder goes out (default 1h).
	FinalReminder time.Duration
	// ProtectedUsers are Metabase emails or ids that can never be targeted (PROTECTED_USERS).
	ProtectedUsers []string
	// BotMetabaseUserID is the bot's own Metabase account, always protected.
	BotMetabaseUserID int
	// DryRun skips Metabase write calls and says so everywhere (DRY_RUN).
	DryRun bool
	// ReturnLocation is the time zone of a bare return date (RETURN_TIMEZONE, default UTC).
	ReturnLocation *time.Location
	// MaxReturnAhead bounds how far a return date may be (MAX_RETURN_AHEAD, default 366 days).
	MaxReturnAhead time.Duration
	// BulkConcurrency bounds parallel Metabase calls of one request (BULK_CONCURRENCY, default 4).
	BulkConcurrency int
	// InstanceID names this process as an executor and outbox owner; default random.
	InstanceID string
	// Tick is how often the timer loop looks for due work (default 1s).
	Tick time.Duration
	// ExecLease is how long an executor holds a request before others may take over
	// (EXECUTION_LEASE, default 2m).
	ExecLease time.Duration
	// OutboxLease is how long a process holds a Slack delivery it claimed before another process
	// (or this one after a restart) sends it again; a delivery gives up after half of it, so a
	// slow Slack call never overlaps a takeover. Default 30s.
	OutboxLease time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives structured logs; never secrets.
	Log logrus.FieldLogger
	// Metrics, when set, is updated as the bot works.
	Metrics *Metrics
}

// Bot serves one Socket Mode connection. It is safe for concurrent use.
type Bot struct {
	cfg   Config
	slack slackAPI
	mb    metabaseAPI
	store requestStore
	log   logrus.FieldLogger
	now   func() time.Time

	// wake nudges the outbox loop when this process enqueued something, so the common path does
	// not wait for the next tick.
	wake chan struct{}
	// inflight tracks envelope handlers so shutdown can wait for them.
	inflight sync.WaitGroup
	sem      chan struct{}
	viewSem  chan struct{}

	mu        sync.Mutex
	connected bool
}

// New checks cfg, fills its defaults, and returns a Bot.
func New(cfg Config, api slackAPI, mb metabaseAPI, st requestStore) (*Bot, error) {
	if api == nil || mb == nil || st == nil {
		return nil, errors.New("bot: slack, metabase and store clients are required")
	}
	if cfg.ApproverGroup == "" && len(cfg.ApproverUsers) == 0 {
		return nil, errors.New("bot: set APPROVER_GROUP or APPROVER_USERS: nobody could approve")
	}
	if cfg.SlashCommand == "" {
		cfg.SlashCommand = "/metabase"
	}
	if cfg.RequiredApprovals < 1 {
		cfg.RequiredApprovals = 1
	}
	if cfg.AdminRequiredApprovals < cfg.RequiredApprovals {
		cfg.AdminRequiredApprovals = cfg.RequiredApprovals
	}
	if cfg.RequestTTL <= 0 {
		cfg.RequestTTL = defaultRequestTTL
	}
	if cfg.FinalReminder <= 0 {
		cfg.FinalReminder = defaultFinalReminder
	}
	if cfg.ReturnLocation == nil {
		cfg.ReturnLocation = time.UTC
	}
	if cfg.MaxReturnAhead <= 0 {
		cfg.MaxReturnAhead = defaultMaxReturnAhead
	}
	if cfg.BulkConcurrency < 1 {
		cfg.BulkConcurrency = defaultBulkConcurrency
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = "bot-" + randomID(6)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = defaultTick
	}
	if cfg.ExecLease <= 0 {
		cfg.ExecLease = defaultExecLease
	}
	if cfg.OutboxLease <= 0 {
		cfg.OutboxLease = defaultOutboxLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.Out = discard{}
		cfg.Log = l
	}
	return &Bot{
		cfg: cfg, slack: api, mb: mb, store: st, log: cfg.Log, now: cfg.Now,
		wake: make(chan struct{}, 1), sem: make(chan struct{}, maxInFlight),
		viewSem: make(chan struct{}, maxViewsInFlight),
	}, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

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
	g.Go(func() error { b.outboxLoop(gctx); return nil })
	g.Go(func() error { b.timerLoop(gctx); return nil })
	err := g.Wait()
	b.setConnected(false)
	b.inflight.Wait()
	// Deliver what the finished handlers enqueued, within a bound, so a clean shutdown leaves
	// nothing for the next start.
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	b.deliverOutbox(drainCtx)
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
	case socketmode.EventTypeDisconnect, socketmode.EventTypeConnectionError:
		b.setConnected(false)
		b.log.WithField("event_type", string(evt.Type)).Warn("Slack connection interrupted; reconnecting")
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
			b.spawnIn(ctx, b.viewSem, func(ctx context.Context) { b.handleViewSubmission(ctx, sm, *evt.Request, cb) })
			return
		}
		handle = func(ctx context.Context) { b.handleInteraction(ctx, cb) }
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
		defer func() {
			if p := recover(); p != nil {
				b.log.WithField("panic", fmt.Sprint(p)).Error("Handler panicked; the bot keeps serving")
			}
		}()
		f(hctx)
	}()
}

// kick wakes the outbox loop.
func (b *Bot) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// randomID returns n random characters from an alphabet without look-alikes.
func randomID(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return idEncoding.EncodeToString(buf)[:n]
}

// idEncoding has no 0/O or 1/I, so ids survive being read aloud or retyped.
var idEncoding = base32.NewEncoding("23456789ABCDEFGHJKLMNPQRSTUVWXYZ").WithPadding(base32.NoPadding)

// newRequestID returns a short id that people can read out and search for in the audit channel.
func newRequestID() string { return "MB-" + randomID(8) }
