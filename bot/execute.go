package bot

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

// errLostLease: another process took the request over (this one was presumed dead).
var errLostLease = errors.New("execution lease lost to another process")

// flushEvery bounds how many outcomes of a bulk request wait in memory before being recorded;
// a crash redoes at most these, and redoing is safe because disable and enable are idempotent.
const flushEvery = 25

// execTimeout bounds one execution: a minute, plus a Metabase call's worst case (timeout and
// retries, about 30 s) for each round of concurrent calls.
func execTimeout(targets, concurrency int) time.Duration {
	rounds := (targets + concurrency - 1) / max(concurrency, 1)
	return time.Minute + time.Duration(rounds)*30*time.Second
}

// outcome is the result for target i, with the user as Metabase showed it before the change.
type outcome struct {
	i      int
	res    approval.Result
	before *metabase.User
}

// execute applies an Executing request that this process holds the lease on, records each
// target's outcome, finishes the request and enqueues its messages.
func (b *Bot) execute(ctx context.Context, r approval.Request) {
	log := b.log.WithFields(logrus.Fields{"request_id": r.ID, "action": string(r.Action), "attempt": r.Attempts})
	start := time.Now()
	pending := r.PendingTargets()
	// An execution outlives the envelope that started it (a bulk request can take minutes) and
	// shutdown waits for it; its own bound is generous per target, and the lease is renewed at
	// every flush so no other replica takes it over meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execTimeout(len(pending), b.cfg.BulkConcurrency))
	defer cancel()
	stopRenewing := b.renewLease(ctx, cancel, r.ID, log)
	defer stopRenewing()
	results := make(chan outcome)
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(b.cfg.BulkConcurrency, max(len(pending), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results <- b.apply(ctx, r, i)
			}
		}()
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
			if _, err := b.record(ctx, r.ID, batch, false); err != nil {
				log.WithError(err).Error("Could not record outcomes; another process will finish this request")
				// Stop calling Metabase before draining: the request is (or will be) another
				// executor's, and working on would write the same users twice.
				cancel()
				for range results {
				}
				return
			}
			batch, lastFlush = nil, time.Now()
		}
	}
	stopRenewing()
	final, err := b.record(ctx, r.ID, batch, true)
	if err != nil {
		log.WithError(err).Error("Could not record the outcome; another process will finish this request")
		return
	}
	b.cfg.Metrics.executed(final, time.Since(start))
	b.kick()
}

// renewLease extends the execution lease every third of its length until stop is called, so a
// Metabase call slower than the lease (outcomes are recorded only as they arrive) does not let
// another executor take over a request this live process is still writing. When the lease turns
// out to be lost, it calls lost to stop the execution. stop waits for the renewer to end.
func (b *Bot) renewLease(ctx context.Context, lost context.CancelFunc, id string, log logrus.FieldLogger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(b.cfg.ExecLease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_, err := b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
				if r.State != approval.Executing || r.LeaseOwner != b.cfg.InstanceID {
					return nil, errLostLease
				}
				r.LeaseUntil = b.now().Add(b.cfg.ExecLease)
				return nil, nil
			})
			switch {
			case errors.Is(err, errLostLease):
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
// also finishes the request and enqueues the card update, thread outcome and audit message in
// the same write.
func (b *Bot) record(ctx context.Context, id string, batch []outcome, final bool) (approval.Request, error) {
	if len(batch) == 0 && !final {
		return approval.Request{}, nil
	}
	return b.store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		if r.State != approval.Executing || r.LeaseOwner != b.cfg.InstanceID {
			return nil, errLostLease
		}
		now := b.now()
		for _, o := range batch {
			if o.before != nil && r.Action == approval.Disable && o.res.Outcome == approval.Done {
				// What the user had when disabled is what an enable restores.
				r.Targets[o.i].Superuser = o.before.IsSuperuser
				r.Targets[o.i].GroupIDs = o.before.Groups()
			}
			if err := r.Record(o.i, o.res); err != nil {
				return nil, err
			}
		}
		r.LeaseUntil = now.Add(b.cfg.ExecLease)
		if !final {
			return nil, nil
		}
		if err := r.Finish(now); err != nil {
			return nil, err
		}
		return b.finishMessages(*r), nil
	})
}

// finishMessages are the card update, the thread outcome and the audit line of a finished
// request, plus the scheduled return of a leave.
func (b *Bot) finishMessages(r approval.Request) []store.Outbox {
	lines := outcomeLines(r)
	done, skipped, failed := r.Counts()
	var head string
	switch r.State {
	case approval.Succeeded:
		head = ":white_check_mark: Done."
	case approval.Partial:
		head = ":warning: Partly done: some users failed."
	default:
		head = ":x: Failed."
	}
	if r.DryRun {
		head += " DRY RUN: Metabase was not changed."
	}
	summary := fmt.Sprintf("%s %s %d, skipped %d, failed %d.", head, verbPast(r.Action), done, skipped, failed)
	var out []store.Outbox
	out = append(out, cardUpdate(r))
	var buttons []string
	if failed > 0 {
		buttons = []string{actionRetry}
	}
	if len(r.Targets) == 1 {
		out = append(out, thread(r, lines[0][len("• "):]+"\n"+summary, buttons...))
	} else {
		chunks := chunkLines(lines, maxSectionText)
		for _, c := range chunks {
			out = append(out, thread(r, c))
		}
		out = append(out, thread(r, summary, buttons...))
	}
	event := map[approval.State]string{approval.Succeeded: "executed", approval.Partial: "partially executed", approval.Failed: "failed"}[r.State]
	detail := fmt.Sprintf("result: %s %d, skipped %d, failed %d", verbPast(r.Action), done, skipped, failed)
	if len(r.Targets) == 1 && r.Targets[0].Result.Message != "" {
		detail += " (" + escape(r.Targets[0].Result.Message) + ")"
	}
	actor := r.DecidedBy
	out = append(out, b.audit(r, event, actor, detail))
	if r.Action == approval.Disable && r.ReturnAt != nil && done+skipped > 0 && !r.DryRun && r.ParentID == "" {
		out = append(out, outbox(r.ID, kindScheduleReturn, message{}))
	}
	return out
}

// apply performs the request's action on target i, idempotently: a user already in the wanted
// state is skipped, so retries and takeovers never act twice.
func (b *Bot) apply(ctx context.Context, r approval.Request, i int) outcome {
	t := r.Targets[i]
	now := b.now
	fail := func(err error) outcome {
		return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed, Message: userMessage(err), At: now()}}
	}
	if r.Action == approval.Enable {
		return b.applyEnable(ctx, r, i, fail)
	}
	u, err := b.mb.User(ctx, t.UserID)
	if err != nil {
		return fail(err)
	}
	if !u.IsActive {
		if r.Recovering {
			// A takeover after a crash: the earlier attempt most likely disabled them.
			return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: "confirmed inactive after a restart", At: now()}}
		}
		return outcome{i: i, res: approval.Result{Outcome: approval.Skipped, Message: "already inactive", At: now()}}
	}
	if r.DryRun {
		return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: "dry run: not changed", At: now()}, before: u}
	}
	if err := b.mb.DisableUser(ctx, t.UserID); err != nil {
		return fail(err)
	}
	return outcome{i: i, res: approval.Result{Outcome: approval.Done, At: now()}, before: u}
}

func (b *Bot) applyEnable(ctx context.Context, r approval.Request, i int, fail func(error) outcome) outcome {
	t := r.Targets[i]
	now := b.now
	if r.DryRun {
		return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: "dry run: not changed", At: now()}}
	}
	_, err := b.mb.ReactivateUser(ctx, t.UserID)
	already := errors.Is(err, metabase.ErrAlreadyActive)
	if err != nil && !already {
		return fail(err)
	}
	var notes []string
	if t.Restore && (t.Superuser || len(t.GroupIDs) > 0) {
		upd := metabase.UserUpdate{GroupIDs: t.GroupIDs}
		if t.Superuser {
			admin := true
			upd.IsSuperuser = &admin
		}
		if _, err := b.mb.UpdateUser(ctx, t.UserID, upd); err != nil {
			return outcome{i: i, res: approval.Result{Outcome: approval.TargetFailed,
				Message: "reactivated, but restoring admin status and groups failed: " + userMessage(err), At: now()}}
		}
		if t.Superuser {
			notes = append(notes, "admin status restored")
		}
		if len(t.GroupIDs) > 0 {
			notes = append(notes, plural(len(t.GroupIDs), "group membership", "group memberships")+" restored")
		}
	}
	switch {
	case already && r.Recovering:
		notes = append([]string{"confirmed active after a restart"}, notes...)
	case already && len(notes) == 0:
		return outcome{i: i, res: approval.Result{Outcome: approval.Skipped, Message: "already active", At: now()}}
	case already:
		notes = append([]string{"already active"}, notes...)
	}
	return outcome{i: i, res: approval.Result{Outcome: approval.Done, Message: strings.Join(notes, ", "), At: now()}}
}
