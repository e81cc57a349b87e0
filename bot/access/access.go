// Package access is metabase-bot's core: it owns requests to disable or enable Metabase users,
// from validation through decisions and execution to the timers that expire, remind and return,
// and it decides what people must be told. It knows nothing of Slack: it reaches the chat only
// through two small seams, a Directory (who may approve or request, and a mentioned user's
// email) and a Notifier (deliver one notice), the way Teleport's access plugins keep their
// logic apart from the messenger.
//
// Every state change is a transition of package approval applied by compare-and-set in package
// store, together with the outbox rows that tell of it, so a crash neither loses nor repeats a
// message beyond one redelivery. The one writer that reaches the quorum also takes the
// execution lease in the same write, so exactly one process calls Metabase; a timer on every
// replica finds expiries, reminders, scheduled returns and executions whose process died, and
// the compare-and-set lets exactly one of them act.
//
// Imports point inward: this package uses approval, store and metabase, never slack-go.
package access

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// Policy is the rules of requesting and approving, from configuration.
type Policy struct {
	// RequiredApprovals is the quorum (at least 1).
	RequiredApprovals int
	// AdminRequiredApprovals is the quorum for requests naming a Metabase admin; never below
	// RequiredApprovals.
	AdminRequiredApprovals int
	// AllowSelfApproval lets requesters approve their own requests.
	AllowSelfApproval bool
	// RequireReason refuses requests without a reason.
	RequireReason bool
	// RequestTTL is how long a request waits for approval.
	RequestTTL time.Duration
	// FinalReminder is how long before expiry the second reminder goes out; zero sends one.
	FinalReminder time.Duration
	// ProtectedUsers are Metabase emails or ids that can never be targeted.
	ProtectedUsers []string
	// BotMetabaseUserID is the bot's own Metabase account, always protected.
	BotMetabaseUserID int
	// DryRun marks new requests so they never call Metabase's write endpoints.
	DryRun bool
	// ReturnLocation is the time zone of a bare return date.
	ReturnLocation *time.Location
	// MaxReturnAhead bounds how far a return date may be.
	MaxReturnAhead time.Duration
	// ReviewWindow is how long approvers have to review a break-glass action (REVIEW_WINDOW).
	ReviewWindow time.Duration
	// IncidentMaxUsers bounds the users one responder disables by break-glass in an hour.
	IncidentMaxUsers int
}

// Execution is how this process works through approved requests.
type Execution struct {
	// InstanceID names this process as an executor and outbox owner; empty picks a random one.
	InstanceID string
	// BulkConcurrency bounds parallel Metabase calls of one request.
	BulkConcurrency int
	// ExecLease is how long an executor holds a request before others may take over.
	ExecLease time.Duration
	// OutboxLease is how long a process holds a delivery it claimed before another process (or
	// this one after a restart) sends it again; a delivery gives up after half of it, so a slow
	// call never overlaps a takeover.
	OutboxLease time.Duration
	// Tick is how often the timer loop looks for due work.
	Tick time.Duration
	// ReplyStoreTimeout bounds each store call a person's answer in Slack waits for; zero means
	// store.ReplyTimeout (1 s), which leaves time to say that nothing was done within Slack's
	// 3 s. Set it longer only where the database is known to be slow but healthy.
	ReplyStoreTimeout time.Duration
}

// Config is everything the core needs besides its seams. cmd/metabase-bot fills it from the
// environment and owns the defaults; New refuses a config that is not complete.
type Config struct {
	Policy    Policy
	Execution Execution
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives structured logs, never secrets; nil discards them.
	Log logrus.FieldLogger
	// Metrics, when set, is told as the core works.
	Metrics Metrics
	// CheckpointEvery is how often one replica posts the audit log's head to the audit trail
	// (checkpoint.go); zero posts no checkpoint at all, for a deployment with no audit trail.
	CheckpointEvery time.Duration
	// Watch is the reactivation watch (watch.go); a zero Interval turns it off.
	Watch Watch
}

// Deps are the seams the core works through.
type Deps struct {
	Store Store
	// Instances are the Metabase instances the bot manages, in a stable order (the order of the
	// configuration). When empty, Metabase and Notifications below are the one instance, named
	// approval.DefaultInstance.
	Instances []Instance
	Metabase  Metabase
	Directory Directory
	Notifier  Notifier
	// Notifications, when set, shows on cards what targets leave running in Metabase and
	// carries out hand-overs; without it neither happens.
	Notifications Notifications
	// ChatUsers, when set, records chat accounts' changes, so a deactivation can open a request
	// once (leavers.go).
	ChatUsers ChatUsers
	// Responders, when set, turns break-glass on (breakglass.go).
	Responders Responders
}

// Service is the core. It is safe for concurrent use.
type Service struct {
	policy   Policy
	exec     Execution
	st       Store
	in       instanceSet
	dir      Directory
	notifier Notifier
	// chatUsers is Deps.ChatUsers.
	chatUsers ChatUsers
	// responders is Deps.Responders.
	responders Responders
	now        func() time.Time
	log        logrus.FieldLogger
	metrics    Metrics
	// checkpointEvery is Config.CheckpointEvery.
	checkpointEvery time.Duration
	// watch is the reactivation watch's configuration and store (watch.go).
	watch watching

	// wake nudges the outbox loop when this process enqueued something, so the common path does
	// not wait for the next tick.
	wake chan struct{}
	// work tracks executions the timer started, so shutdown waits for them.
	work sync.WaitGroup
	x    *executor
	// ob is the deliverer's state between rounds.
	ob outboxState
	// prefetch holds the listings started for prepared requests (prefetch.go).
	prefetch prefetches
}

// New checks cfg and returns the core.
func New(cfg Config, d Deps) (*Service, error) {
	if len(d.Instances) == 0 && d.Metabase != nil {
		botID := cfg.Policy.BotMetabaseUserID
		d.Instances = []Instance{{Name: approval.DefaultInstance, Metabase: d.Metabase, Notifications: d.Notifications,
			BotUserID: func() int { return botID }}}
	}
	if d.Store == nil || len(d.Instances) == 0 || d.Directory == nil || d.Notifier == nil {
		return nil, errors.New("access: store, metabase, directory and notifier are required")
	}
	in, err := newInstanceSet(d.Instances)
	if err != nil {
		return nil, err
	}
	p, e := cfg.Policy, cfg.Execution
	var problems []string
	check := func(ok bool, msg string) {
		if !ok {
			problems = append(problems, msg)
		}
	}
	check(p.RequiredApprovals >= 1, "RequiredApprovals must be at least 1")
	check(p.AdminRequiredApprovals >= p.RequiredApprovals, "AdminRequiredApprovals must not be below RequiredApprovals")
	check(p.RequestTTL > 0, "RequestTTL must be positive")
	check(p.FinalReminder >= 0, "FinalReminder must not be negative")
	check(p.ReturnLocation != nil, "ReturnLocation is required")
	check(p.MaxReturnAhead > 0, "MaxReturnAhead must be positive")
	check(e.BulkConcurrency >= 1, "BulkConcurrency must be at least 1")
	check(e.ExecLease > 0, "ExecLease must be positive")
	check(e.OutboxLease > 0, "OutboxLease must be positive")
	check(e.Tick > 0, "Tick must be positive")
	check(cfg.CheckpointEvery >= 0, "CheckpointEvery must not be negative")
	w, err := newWatching(cfg.Watch, d.Store)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if d.Responders != nil {
		check(p.ReviewWindow > 0, "ReviewWindow must be positive when break-glass is on")
		check(p.IncidentMaxUsers >= 1, "IncidentMaxUsers must be at least 1 when break-glass is on")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("access: invalid config: %v", problems)
	}
	if e.InstanceID == "" {
		e.InstanceID = "bot-" + RandomID(6)
	}
	s := &Service{policy: p, exec: e, st: d.Store, in: in, dir: d.Directory, notifier: d.Notifier, chatUsers: d.ChatUsers, responders: d.Responders,
		now: cfg.Now, log: cfg.Log, metrics: cfg.Metrics, checkpointEvery: cfg.CheckpointEvery, watch: w, wake: make(chan struct{}, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		s.log = l
	}
	if s.metrics == nil {
		s.metrics = nopMetrics{}
	}
	s.x = &executor{dryRun: p.DryRun, adminApprovals: p.AdminRequiredApprovals, protectedIn: s.ProtectedIn, st: s.st, in: s.in, cfg: s.exec, now: s.now, log: s.log, metrics: s.metrics, tell: s.tell, kick: s.kick, update: s.update}
	return s, nil
}

// Policy returns the rules in force, for the chat side's forms and help text.
func (s *Service) Policy() Policy { return s.policy }

// Now is the core's clock, so the chat side checks dates against the same time the core does.
func (s *Service) Now() time.Time { return s.now() }

// InstanceID is this process's name as an executor and outbox owner.
func (s *Service) InstanceID() string { return s.exec.InstanceID }

// Run delivers the outbox and runs the timers until ctx is cancelled, then waits for the
// executions the timers started (they finish under their own bounds) and returns.
func (s *Service) Run(ctx context.Context) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { deliverer{s}.outboxLoop(gctx); return nil })
	g.Go(func() error { timers{s}.timerLoop(gctx); return nil })
	g.Go(func() error { timers{s}.checkpointLoop(gctx); return nil })
	g.Go(func() error { watcher{s}.watchLoop(gctx); return nil })
	_ = g.Wait()
	s.work.Wait()
}

// Drain delivers what is claimable now, within ctx, so a clean shutdown leaves nothing for the
// next start.
func (s *Service) Drain(ctx context.Context) {
	deliverer{s}.deliverOutbox(ctx)
	s.ob.mu.Lock()
	defer s.ob.mu.Unlock()
	for id, p := range s.ob.unrecorded {
		// Nothing keeps it once the process is gone: the card is posted again after the lease.
		s.log.WithFields(logrus.Fields{"request_id": p.requestID, "outbox_id": id, "message_ts": p.ts}).
			Error("Stopping with a posted card whose id is not recorded; it will be posted again, and clicks on this copy refused")
	}
}

// Request returns a stored request.
func (s *Service) Request(ctx context.Context, id string) (approval.Request, error) {
	r, err := s.st.Get(s.replyCtx(ctx), id)
	if errors.Is(err, store.ErrNotFound) {
		return r, &Refusal{Code: UnknownRequest, Subject: id}
	}
	return r, err
}

// The core's work is split by concern into components that share the Service's dependencies:
// validator checks new requests, deliverer empties the outbox through the Notifier, timers act on
// what is due, decisions check approvers and apply votes, lookups read what targets leave running,
// checkpoints anchor the audit chain in the chat. Each is a view of the same Service, so none of them holds state of its own.
type (
	validator   struct{ *Service }
	deliverer   struct{ *Service }
	timers      struct{ *Service }
	decisions   struct{ *Service }
	lookups     struct{ *Service }
	checkpoints struct{ *Service }
)

// kick wakes the outbox loop.
func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RandomID returns n random characters from an alphabet without look-alikes.
func RandomID(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return idEncoding.EncodeToString(buf)[:n]
}

// idEncoding has no 0/O or 1/I, so ids survive being read aloud or retyped.
var idEncoding = base32.NewEncoding("23456789ABCDEFGHJKLMNPQRSTUVWXYZ").WithPadding(base32.NoPadding)

// newRequestID returns a short id that people can read out and search for in the audit channel.
func newRequestID() string { return "MB-" + RandomID(8) }

// replyCtx is ctx whose store calls each give up after Execution.ReplyStoreTimeout: the calls a person's
// answer in Slack waits for (reading what a click names, recording a request or a decision), so
// that a database that does not answer still leaves time to say that nothing was done.
func (s *Service) replyCtx(ctx context.Context) context.Context {
	d := s.exec.ReplyStoreTimeout
	if d <= 0 {
		d = store.ReplyTimeout
	}
	return store.WithCallTimeout(ctx, d)
}

// StoreUnavailable reports whether err means the database could not record or read what was
// asked (down, unreachable, read-only, full, or no answer within the call's budget): nothing was
// changed, and the same thing may be tried again.
func StoreUnavailable(err error) bool { return errors.Is(err, store.ErrUnavailable) }
