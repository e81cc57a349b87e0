package access

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// dueBatch bounds the requests one tick looks at.
const dueBatch = 100

// timerLoop finds work no click will trigger: expiries, reminders, scheduled returns, approved
// requests nobody started and executions whose holder died. It runs on every replica; the
// compare-and-set in the store lets exactly one of them act on each request.
func (s timers) timerLoop(ctx context.Context) {
	t := time.NewTicker(s.exec.Tick)
	defer t.Stop()
	for {
		s.runDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runDue handles every request that is due now.
func (s timers) runDue(ctx context.Context) {
	due, err := s.st.Due(ctx, s.now(), dueBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WithError(err).Error("Could not look for due requests")
		}
		return
	}
	for _, r := range due {
		ctx := WithLogger(ctx, s.log.WithFields(logrus.Fields{"request_id": r.ID, "state": string(r.State)}))
		switch r.State {
		case approval.Pending:
			s.remindOrExpire(ctx, r.ID)
		case approval.Approved, approval.Scheduled, approval.Executing:
			s.takeOver(ctx, r.ID)
		default:
			if r.IsBreakGlass() {
				s.review(ctx, r.ID)
			}
		}
	}
}

func (s timers) remindOrExpire(ctx context.Context, id string) {
	log := Logger(ctx, s.log)
	r, err := s.st.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		now := s.now()
		if r.Remind(now) == nil {
			return []store.Outbox{notice(ToThread, Event{Type: Reminded, At: now, Request: *r})}, nil
		}
		if err := r.Expire(now); err != nil {
			return nil, err
		}
		return s.tell(Event{Type: Expired, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit), nil
	})
	switch {
	case errors.Is(err, approval.ErrNotDue), errors.Is(err, approval.ErrNotPending):
		// Another replica got there first, or a click decided it meanwhile.
	case err != nil:
		log.WithError(err).Error("Could not expire or remind a request")
	default:
		event := "reminder"
		if r.State == approval.Expired {
			event = "expired"
			s.metrics.Decided("expired")
		}
		log.WithField("event", event).Info("Timer acted on a request")
		s.kick()
	}
}

// takeOver starts an approved or scheduled request, or reclaims an execution whose lease ran out
// (its process died between winning and recording the outcome), and executes it. Execution
// re-reads each user from Metabase first, so a target the dead process already changed is
// recorded as done without a second write.
func (s timers) takeOver(ctx context.Context, id string) {
	log := Logger(ctx, s.log)
	var from approval.State
	r, err := s.st.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
		from = r.State
		now := s.now()
		if s.policy.DryRun && !r.DryRun && r.State == approval.Executing {
			// Part of it may have been done for real: a dry run taking over would mark it all as
			// not done (no return, no access record). A replica not in dry run finishes it.
			return nil, errNoChange
		}
		if err := r.Start(s.exec.InstanceID, now, s.exec.ExecLease); err != nil {
			return nil, err
		}
		if from == approval.Scheduled {
			return s.tell(Event{Type: ReturnStarted, At: now, Request: *r}, ToAudit), nil
		}
		return nil, nil
	})
	switch {
	case errors.Is(err, approval.ErrLeaseHeld), errors.Is(err, approval.ErrNotDue), errors.Is(err, approval.ErrInvalidTransition),
		errors.Is(err, errNoChange):
		return
	case err != nil:
		log.WithError(err).Error("Could not take over a request")
		return
	}
	log.WithField("from_state", string(from)).Info("Executing a request found by the timer")
	s.kick()
	s.work.Go(func() { s.x.execute(ctx, r) })
}
