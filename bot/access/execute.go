package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// flushEvery bounds how many outcomes of a bulk request wait in memory before being recorded;
// a crash redoes at most these, and redoing is safe because disable and enable are idempotent.
const flushEvery = 25

// execTimeout bounds one execution: a minute, plus a Metabase call's worst case (timeout and
// retries, about 30 s) for each round of concurrent calls.
func execTimeout(targets, concurrency int) time.Duration {
	rounds := (targets + concurrency - 1) / max(concurrency, 1)
	return time.Minute + time.Duration(rounds)*30*time.Second
}

// executor applies requests this process holds the execution lease on. It is the only code that
// calls Metabase's write endpoints.
type executor struct {
	// dryRun is the process's DRY_RUN: it overrides every request it executes.
	dryRun bool
	// adminApprovals is the quorum disabling an admin needs.
	adminApprovals int
	// protectedIn tells the accounts the bot never changes (Service.ProtectedIn).
	protectedIn func(instance string, u metabase.User) bool
	st          Store
	in          instanceSet
	cfg         Execution
	now         func() time.Time
	log         logrus.FieldLogger
	metrics     Metrics
	// update records outcomes and hands the messages of a finished request to this process's
	// deliverer (see Service.update).
	update func(ctx context.Context, id string, fn func(r *approval.Request) ([]store.Outbox, []store.Also, error)) (approval.Request, error)
	// tell builds the outbox rows of an event (see Service.tell).
	tell func(e Event, kinds ...Kind) []store.Outbox
	kick func()
}

// outcome is the result for target i, with what the user had before the change.
type outcome struct {
	i      int
	res    approval.Result
	before *approval.Before
	// handedOver is what the hand-over step did (handover.go); nil when there is none.
	handedOver *approval.HandoverResult
	// keys is what revoke-keys did (revoke_exec.go); nil when there is none.
	keys *approval.KeyRevocation
	// links is what unshare did (revoke_exec.go); nil when there is none.
	links *approval.LinkRemoval
}

// execute applies an executing request that this process holds the lease on, records each
// target's outcome, finishes the request and enqueues its messages. It returns the request as
// finally stored (or as given, when another process took it over).
func (x *executor) execute(ctx context.Context, r approval.Request) approval.Request {
	log := x.log.WithFields(logrus.Fields{"request_id": r.ID, "action": string(r.Action), "attempt": r.Attempts})
	ctx = WithLogger(ctx, log)
	start := time.Now()
	pending := r.PendingTargets()
	// An execution outlives the envelope that started it (a bulk request can take minutes) and
	// shutdown waits for it; its own bound is generous per target, and the lease is renewed
	// while it runs so no other replica takes it over meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execTimeout(len(pending), x.cfg.BulkConcurrency))
	defer cancel()
	stopRenewing := x.renewLease(ctx, cancel, r.ID)
	defer stopRenewing()
	results := make(chan outcome)
	step := x.withKeyRevocation(r, x.stepper(r))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(x.cfg.BulkConcurrency, max(len(pending), 1)) {
		wg.Go(func() {
			for i := range work {
				results <- step(ctx, i)
			}
		})
	}
	go func() {
		defer close(work)
		for _, i := range pending {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	var batch []outcome
	lastFlush := time.Now()
	for o := range results {
		batch = append(batch, o)
		if len(batch) >= flushEvery || time.Since(lastFlush) > 2*time.Second {
			if _, err := x.record(ctx, r.ID, batch, false); err != nil {
				log.WithError(err).Error("Could not record outcomes; another process will finish this request")
				// Stop calling Metabase before draining: the request is (or will be) another
				// executor's, and working on would write the same users twice.
				cancel()
				for range results {
				}
				return r
			}
			batch, lastFlush = nil, time.Now()
		}
	}
	stopRenewing()
	final, err := x.record(ctx, r.ID, batch, true)
	if err != nil {
		log.WithError(err).Error("Could not record the outcome; another process will finish this request")
		return r
	}
	x.metrics.Executed(final, time.Since(start))
	x.kick()
	return final
}

// renewLease extends the execution lease every third of its length until stop is called, so a
// Metabase call slower than the lease (outcomes are recorded only as they arrive) does not let
// another executor take over a request this live process is still writing. When the lease turns
// out to be lost, it calls lost to stop the execution. stop waits for the renewer to end.
func (x *executor) renewLease(ctx context.Context, lost context.CancelFunc, id string) (stop func()) {
	log := Logger(ctx, x.log)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(x.cfg.ExecLease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_, err := x.st.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
				return nil, r.RenewLease(x.cfg.InstanceID, x.now(), x.cfg.ExecLease)
			})
			switch {
			case errors.Is(err, approval.ErrLeaseLost):
				log.Warn("Execution lease lost to another process; stopping")
				lost()
				return
			case err != nil && ctx.Err() == nil:
				log.WithError(err).Warn("Could not renew the execution lease")
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// record stores outcomes while this process still holds the lease (renewing it), and when final
// also finishes the request and enqueues its events in the same write.
func (x *executor) record(ctx context.Context, id string, batch []outcome, final bool) (approval.Request, error) {
	if len(batch) == 0 && !final {
		return approval.Request{}, nil
	}
	return x.update(ctx, id, func(r *approval.Request) ([]store.Outbox, []store.Also, error) {
		now := x.now()
		if err := r.RenewLease(x.cfg.InstanceID, now, x.cfg.ExecLease); err != nil {
			return nil, nil, err
		}
		if x.dryRun && !r.DryRun {
			if err := r.MarkDryRun(x.cfg.InstanceID); err != nil {
				return nil, nil, err
			}
		}
		for _, o := range batch {
			if err := r.Record(x.cfg.InstanceID, o.i, o.res, o.before, now, x.cfg.ExecLease); err != nil {
				return nil, nil, err
			}
			r.RecordHandover(o.i, o.handedOver, o.before)
			r.RecordKeys(o.i, o.keys)
			r.RecordLinks(o.i, o.links)
		}
		if !final {
			return nil, nil, nil
		}
		if err := r.Finish(x.cfg.InstanceID, now); err != nil {
			return nil, nil, err
		}
		out := x.tell(Event{Type: Finished, Actor: r.DecidedBy, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit)
		return out, x.returnOf(*r, now), nil
	})
}

// returnOf creates, with the outcome of a leave, its scheduled return, so no delivery delay can
// lose it; when a retry of the leave disabled more users, they join the existing return.
func (x *executor) returnOf(leave approval.Request, now time.Time) []store.Also {
	ret, ok := approval.ReturnOf(leave, now)
	if !ok {
		return nil
	}
	return []store.Also{{
		Create:    &ret,
		CreateOut: x.tell(Event{Type: ReturnScheduled, Actor: leave.DecidedBy, At: now, Request: ret}, ToThread, ToAudit),
		Update: func(r *approval.Request) ([]store.Outbox, error) {
			added, err := r.Extend(ret.Targets)
			if err != nil || len(added) == 0 {
				return nil, store.ErrUnchanged
			}
			return x.tell(Event{Type: ReturnExtended, Actor: leave.DecidedBy, At: now, Added: added, Request: *r}, ToThread, ToAudit), nil
		},
	}}
}

// apply performs the request's action on target i, idempotently: a user already in the wanted
// state is skipped, so retries and takeovers never act twice.
func (x *executor) apply(ctx context.Context, r approval.Request, i int) outcome {
	t := r.Targets[i]
	mb := x.in.mb(t.InstanceName())
	now := x.now
	fail := func(err error) outcome {
		return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed, Message: FailureText(err), At: now()}}
	}
	r.DryRun = r.DryRun || x.dryRun
	if r.Action == approval.Enable {
		return x.applyEnable(ctx, r, i, fail)
	}
	u, err := x.breakGlassUser(r, t)
	if u == nil {
		u, err = targetUser(ctx, mb, t)
	}
	if errors.Is(err, metabase.ErrNotFound) && t.Unresolved {
		return outcome{i: i, res: approval.Result{Outcome: approval.Skipped, Message: "not found in " + t.InstanceName(), At: x.now()}}
	}
	if err != nil {
		return fail(err)
	}
	t.UserID = u.ID
	if t.Unresolved {
		// First seen now (its instance did not answer when the request was made): it gets the
		// checks a new request would have given it before anything is written.
		if why := x.unresolvedChecks(ctx, r, t, *u); why != "" {
			return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed, Message: why, At: x.now()}}
		}
	}
	found := func(b *approval.Before) *approval.Before {
		if t.Unresolved {
			b.UserID, b.Name = u.ID, u.Name()
		}
		return b
	}
	if !u.IsActive {
		// Deactivation keeps is_superuser, so what Metabase shows now is what the user had,
		// unless someone changed it since: the stamp read now covers exactly that.
		seen := found(&approval.Before{Superuser: u.IsSuperuser, GroupIDs: u.Groups(), Stamp: u.UpdatedAt})
		if r.Recovering {
			// A takeover after a crash: the earlier attempt most likely disabled them.
			return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: "confirmed inactive after a restart", At: x.now()}, before: seen}
		}
		if t.Unanswered {
			// The earlier attempt's DELETE got no answer but took effect.
			return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: "confirmed inactive: the earlier attempt took effect", At: x.now()}, before: seen}
		}
		return outcome{i: i, res: approval.Result{Outcome: approval.Skipped, Message: "already inactive", At: x.now()}, before: found(&approval.Before{})}
	}
	if u.IsSuperuser && r.RequiredApprovals < x.adminApprovals {
		// Promoted after the request was made: disabling an admin needs the admin quorum.
		return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed,
			Message: fmt.Sprintf("became a Metabase admin after the request was made; disabling an admin needs %d approvals: make a new request", x.adminApprovals), At: x.now()}}
	}
	before := found(&approval.Before{Superuser: u.IsSuperuser, GroupIDs: u.Groups()})
	if r.DryRun {
		return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: "dry run: not changed", At: now()}, before: before}
	}
	if u.IsSuperuser {
		// Checked again right before the DELETE, against every admin other executions are
		// deactivating: two requests approved at once must still leave an admin who can sign in.
		ok, err := x.mayDisableAdmin(ctx, r.ID, t.InstanceName(), u.ID)
		if err != nil {
			return fail(err)
		}
		if !ok {
			return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed, Message: LastAdminText, At: now()}}
		}
	}
	if err := mb.DisableUser(ctx, t.UserID); err != nil {
		o := fail(err)
		if isLastAdminRefusal(err) {
			o.res.Message = LastAdminText + " (" + o.res.Message + ")"
		}
		o.res.Unanswered = NoAnswer(err)
		o.before = before
		return o
	}
	// Metabase's updated_at right after the DELETE: an enable restores admin only while Metabase
	// still shows it, i.e. nobody changed the user since. Without it, nothing will be restored.
	if after, err := mb.User(ctx, t.UserID); err == nil && !after.IsActive {
		before.Stamp = after.UpdatedAt
		// A demotion between the read and the DELETE would otherwise hide under the new stamp.
		before.Superuser = before.Superuser && after.IsSuperuser
	}
	return outcome{i: i, res: approval.Result{Outcome: approval.Done, At: now()}, before: before}
}

// unresolvedChecks gives a target first found at execution the checks a new request gives every
// target: never a protected account, the bot's own or an API key's user; no other open request
// for the user; and no scheduled return, which only a request made while the user is known can
// supersede. It returns why the target may not be acted on, or "".
func (x *executor) unresolvedChecks(ctx context.Context, r approval.Request, t approval.Target, u metabase.User) string {
	if x.protectedIn(t.InstanceName(), u) {
		return "protected: the bot never changes this account"
	}
	if u.IsAPIKey() {
		return "is an API key, which disabling would not stop; revoke it under Admin settings → Authentication → API keys"
	}
	history, err := x.st.ByTarget(ctx, approval.UserKey{Instance: t.InstanceName(), ID: u.ID})
	if err != nil {
		return FailureText(err)
	}
	if open := openRequestIn(history, r.ID); open != "" {
		return "has another open request, " + open + ": make a new request once it has ended"
	}
	if ret, ok := scheduledReturnIn(history); ok && r.Action == approval.Disable {
		return "comes back automatically by " + ret.ID + ": make a new request, whose approval cancels that return"
	}
	return x.successorChecks(ctx, r, t, u)
}

// successorChecks gives the successor of a hand-over, for a target first found at execution, the
// checks validator.handover gave it against the targets known when the request was made: the
// successor is not this target, lives in the target's instance (the hand-over's one instance),
// and is still active. It returns why the target may not be acted on, or "".
func (x *executor) successorChecks(ctx context.Context, r approval.Request, t approval.Target, u metabase.User) string {
	id := successorOf(r.Handover)
	if id == 0 {
		return ""
	}
	switch {
	case id == u.ID:
		return "is the successor of this hand-over, who would take over their own items: make a new request naming someone else"
	case handoverInstance(r.Targets, "") != t.InstanceName():
		return "is not in the instance of the hand-over's successor: make one request per instance"
	}
	s, err := x.in.mb(t.InstanceName()).User(ctx, id)
	switch {
	case err != nil:
		return "could not check the successor: " + FailureText(err)
	case !s.IsActive:
		return successorEmail(r.Handover) + ", who takes over their items, is no longer active in Metabase: make a new request naming an active successor"
	case s.IsAPIKey():
		return successorEmail(r.Handover) + ", who takes over their items, is an API key, not a person: make a new request naming a person"
	}
	return ""
}

// LastAdminText is why a disable of an admin failed when it would leave Metabase without a person
// admin who can sign in; the bot's own words come first, Metabase's own (when it refused) after.
const LastAdminText = "would leave no Metabase admin who can sign in"

// mayDisableAdmin reserves the deactivation of admin user of instance for request, when a person
// admin of that instance other than the ones executions are deactivating would remain
// (store.ReserveAdminDisable). The store marks where the reservations stand before the list is
// read, so no replica's clock decides which reservations the list may not show yet.
func (x *executor) mayDisableAdmin(ctx context.Context, request, instance string, user int) (bool, error) {
	return reserveAdminDisable(ctx, x.st, x.in.mb(instance), request, instance, user)
}

// reserveAdminDisable is mayDisableAdmin for any caller that deactivates an admin (an execution,
// the watch's re-disable): the mark first, then the list of active admins, then the reservation.
func reserveAdminDisable(ctx context.Context, st Store, mb Metabase, request, instance string, user int) (bool, error) {
	mark, err := st.MarkAdminList(ctx, instance)
	if err != nil {
		return false, err
	}
	active, err := mb.ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		return false, err
	}
	var admins []int
	for _, a := range active {
		if a.IsSuperuser {
			admins = append(admins, a.ID)
		}
	}
	return st.ReserveAdminDisable(ctx, request, instance, user, admins, mark)
}

// isLastAdminRefusal reports Metabase's own refusal to deactivate the last member of the Admin
// group (docs/metabase.md#last-admin). The client decides it from the status and a re-read of the
// user, never from the refusal's words, which Metabase translates.
func isLastAdminRefusal(err error) bool {
	return errors.Is(err, metabase.ErrLastAdmin)
}

func (x *executor) applyEnable(ctx context.Context, r approval.Request, i int, fail func(error) outcome) outcome {
	t := r.Targets[i]
	mb := x.in.mb(t.InstanceName())
	now := x.now
	if r.DryRun {
		return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: "dry run: not changed", At: now()}}
	}
	restore := t.Restore && t.Superuser
	var notes []string
	if restore {
		// Read before reactivating (which moves it): only the user exactly as the bot left them
		// gets admin back.
		cur, err := mb.User(ctx, t.UserID)
		if err != nil {
			return fail(err)
		}
		if cur.UpdatedAt != t.Stamp {
			restore = false
			notes = append(notes, "admin not restored: changed in Metabase since the bot disabled them")
		}
	}
	_, err := mb.ReactivateUser(ctx, t.UserID)
	already := errors.Is(err, metabase.ErrAlreadyActive)
	if err != nil && !already {
		o := fail(err)
		o.res.Unanswered = NoAnswer(err)
		return o
	}
	if restore {
		// Reactivation drops only the admin flag: Metabase keeps every other group membership
		// through deactivation and reactivation. So the flag is sent alone; rewriting the groups
		// would undo what admins changed meanwhile, and fails the whole PUT on Pro/Enterprise
		// with advanced permissions (docs/metabase.md#reactivate, docs/metabase.md#advanced-permissions).
		admin := true
		if _, err := mb.UpdateUser(ctx, t.UserID, metabase.UserUpdate{IsSuperuser: &admin}); err != nil {
			return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed,
				Message: "reactivated, but restoring admin status failed: " + FailureText(err), At: now()}}
		}
		notes = append(notes, "admin status restored")
	}
	switch {
	case already && r.Recovering:
		notes = append([]string{"confirmed active after a restart"}, notes...)
	case already && t.Unanswered:
		notes = append([]string{"confirmed active: the earlier attempt took effect"}, notes...)
	case already && !restore:
		return outcome{i: i, res: approval.Result{Outcome: approval.Skipped, Message: strings.Join(append([]string{"already active"}, notes...), ", "), At: now()}}
	case already:
		notes = append([]string{"already active"}, notes...)
	}
	return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: strings.Join(notes, ", "), At: now()}}
}
