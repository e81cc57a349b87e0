package access

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

const (
	// outboxBatch is how many rows one claim takes.
	outboxBatch = 50
	// outboxWorkers bounds concurrent deliveries of one batch.
	outboxWorkers = 8
	// maxDeliveryAttempts drops a notice that keeps failing, so it cannot block its request's
	// later notices forever; the drop is logged at error level.
	maxDeliveryAttempts = 12
	// maxDeliveryTimeout bounds one delivery; it is also kept under half the outbox lease, so a
	// delivery has given up before another process may claim the same row. A delivery runs
	// detached from shutdown: once the chat may have accepted a message, recording that is worth
	// finishing, or the row stays claimed and the message is sent again after the lease.
	maxDeliveryTimeout = 15 * time.Second
)

// DeliveryError tells the deliverer how to treat a notice the Notifier could not deliver. Any
// other error is retried with backoff.
type DeliveryError struct {
	Err error
	// Permanent: retrying cannot help (the bot is not in the channel, a scope is missing).
	Permanent bool
	// RetryAfter, when positive, is the wait the chat service asked for (rate limiting).
	RetryAfter time.Duration
	// Code is the service's short error code, for the requester and the audit trail.
	Code string
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// outboxLoop delivers outbox rows: at once when this process enqueued something, and on every
// tick for rows other replicas left or that wait for a retry.
func (s deliverer) outboxLoop(ctx context.Context) {
	t := time.NewTicker(min(s.exec.Tick, 500*time.Millisecond))
	defer t.Stop()
	for {
		s.deliverOutbox(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// deliverOutbox delivers everything claimable now.
func (s deliverer) deliverOutbox(ctx context.Context) {
	for ctx.Err() == nil {
		rows, err := s.st.ClaimOutbox(ctx, s.exec.InstanceID, s.now(), s.exec.OutboxLease, outboxBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WithError(err).Error("Could not claim outbox messages")
			}
			return
		}
		if len(rows) == 0 {
			return
		}
		// A claim holds at most one row per request (a request's notices go out in order), so
		// the rows of one batch belong to different requests and can be sent concurrently.
		var wg sync.WaitGroup
		sem := make(chan struct{}, outboxWorkers)
		for _, row := range rows {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.deliverOne(ctx, row)
			})
		}
		wg.Wait()
	}
}

func (s deliverer) deliverOne(ctx context.Context, row store.Outbox) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(maxDeliveryTimeout, s.exec.OutboxLease/2))
	defer cancel()
	log := s.log.WithFields(logrus.Fields{"request_id": row.RequestID, "outbox_id": row.ID, "outbox_kind": row.Kind})
	ctx = WithLogger(ctx, log)
	err := s.deliver(ctx, row)
	if err == nil {
		return
	}
	var de *DeliveryError
	errors.As(err, &de)
	at := s.now().Add(backoff(row.Attempts))
	switch {
	case de != nil && de.RetryAfter > 0:
		at = s.now().Add(de.RetryAfter)
		log.WithField("retry_after", de.RetryAfter.String()).Warn("Slack rate limited a message; retrying after the delay it asked for")
	case (de != nil && de.Permanent) || row.Attempts >= maxDeliveryAttempts:
		log.WithError(err).WithField("attempts", row.Attempts).Error("Dropping a Slack message that cannot be delivered")
		if Kind(row.Kind) == ToCard {
			code := "error"
			if de != nil && de.Code != "" {
				code = de.Code
			}
			s.cardFailed(ctx, row, code)
			return
		}
		if cerr := s.st.CompleteOutbox(ctx, row.ID, s.exec.InstanceID); cerr != nil {
			log.WithError(cerr).Warn("Could not mark a dropped message")
		}
		return
	default:
		log.WithError(err).WithField("attempts", row.Attempts).Warn("Could not deliver a Slack message; will retry")
	}
	if rerr := s.st.RetryOutbox(ctx, row.ID, s.exec.InstanceID, at, err.Error()); rerr != nil {
		log.WithError(rerr).Warn("Could not schedule a retry")
	}
}

// cardFailed handles a card the chat will not take (most often: the bot is not in the channel).
// A request nobody can see must not wait for approvers, so it is withdrawn, with an audit event
// like every other state change, and the requester is told directly what to fix. The card is
// dropped only after the withdrawal is stored: a crash in between retries the card of a
// withdrawn request, which never leaves it pending.
func (s deliverer) cardFailed(ctx context.Context, row store.Outbox, code string) {
	log := Logger(ctx, s.log)
	_, err := s.st.Update(ctx, row.RequestID, func(r *approval.Request) ([]store.Outbox, error) {
		now := s.now()
		if r.Withdraw(now) != nil {
			return nil, errNoChange
		}
		return s.tell(Event{Type: Withdrawn, Code: code, At: now, Request: *r}, ToAudit, ToRequester), nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		log.WithError(err).Warn("Could not cancel a request whose card failed")
		return
	}
	if cerr := s.st.CompleteOutbox(ctx, row.ID, s.exec.InstanceID); cerr != nil {
		log.WithError(cerr).Warn("Could not mark a dropped card")
	}
	s.kick()
}

func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 6)
	return d/2 + rand.N(d/2+1)
}

// deliver sends one outbox row and marks it delivered.
func (s deliverer) deliver(ctx context.Context, row store.Outbox) error {
	owner := s.exec.InstanceID
	if row.Kind == kindScheduleReturn {
		if err := s.scheduleLegacyReturn(ctx, row.RequestID); err != nil {
			return err
		}
		return s.st.CompleteOutbox(ctx, row.ID, owner)
	}
	n, err := decodeNotice(row)
	if err != nil {
		s.log.WithError(err).WithField("outbox_id", row.ID).Error("Dropping an unreadable outbox message")
		return s.st.CompleteOutbox(ctx, row.ID, owner)
	}
	r, err := s.st.Get(ctx, row.RequestID)
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	n.Request = r
	if n.Kind == ToCard && r.MessageTS != "" {
		// Posted already by a delivery that completed the update but not the row: never twice.
		return s.st.CompleteOutbox(ctx, row.ID, owner)
	}
	posted, err := s.notifier.Tell(ctx, n)
	if err != nil {
		return err
	}
	if n.Kind == ToCard {
		_, err = s.st.CompleteOutboxAndUpdate(ctx, row.ID, owner, r.ID, func(r *approval.Request) error {
			r.MessageTS = posted
			return nil
		})
		return err
	}
	return s.st.CompleteOutbox(ctx, row.ID, owner)
}

// errNoChange ends a compare-and-set that has nothing to write.
var errNoChange = errors.New("nothing to change")
