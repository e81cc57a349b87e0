package access

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

const (
	// outboxBatch is how many rows one claim takes.
	outboxBatch = 50
	// outboxWorkers bounds concurrent deliveries of one batch. Under Slack's rate limits a delivery
	// may wait for its paced slot on one channel (see bot's pacer), so there are enough workers for
	// the other channels' messages to keep flowing meanwhile.
	outboxWorkers = 32
	// maxDeliveryAttempts drops a notice that keeps failing, so it cannot block its request's
	// later notices forever; the drop is logged at error level.
	maxDeliveryAttempts = 12
	// maxDeliveryTimeout bounds one delivery; it is also kept under half the outbox lease, so a
	// delivery has given up before another process may claim the same row. A delivery runs
	// detached from shutdown: once the chat may have accepted a message, recording that is worth
	// finishing, or the row stays claimed and the message is sent again after the lease.
	maxDeliveryTimeout = 15 * time.Second
	// maxRecordAttempts bounds the writes one delivery tries to record a posted card's id;
	// recordTimeout bounds each of them, and recordBackoff is the pause before the second (it
	// doubles after each). Together (about 10 s at most, when every write hangs) they stay under
	// half of cmd/metabase-bot's 30 s outbox lease; past a shorter lease another process may have
	// taken the row over, which the write then reports (store.ErrNotClaimed).
	maxRecordAttempts = 5
	recordTimeout     = 2 * time.Second
	recordBackoff     = 20 * time.Millisecond
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

// rewrites are the kinds whose repetition sends nothing new: a card update re-renders the card
// from the request as it is when delivered, so sending one again shows the same card. A run of
// deliveries may go on past them; any other kind (a post a person would see twice) ends it.
var rewrites = []string{string(ToCardUpdate)}

// outboxState is the part of delivery that lives between rounds, in memory. Losing it (a crash)
// loses nothing: every row it names is claimed in the database and becomes claimable again when
// its lease runs out.
type outboxState struct {
	// round lets one delivery loop run at a time (the outbox loop, or Drain after it stopped).
	round sync.Mutex
	mu    sync.Mutex
	// handed are runs this process claimed in its own writes, waiting for the next round.
	handed []held
	// settled is what past rounds delivered or gave back and no transaction recorded yet.
	settled store.Settle
	// unrecorded are cards the chat accepted whose id no write has recorded yet, by outbox row.
	// Their rows stay claimed by this process, and only the write is tried again (each round,
	// and first thing should the row come back), never the post. A crash loses them: that one
	// card is then posted again, and the bot refuses clicks on the orphan with a link to the
	// live card.
	unrecorded map[int64]postedCard
}

// postedCard is a card the chat accepted: its request and the id the chat gave it.
type postedCard struct {
	requestID, ts string
}

// held is a run of rows this process claimed, and when (on the process's monotonic clock): its
// deliveries must end within half the lease from then, before another process may take it over.
type held struct {
	rows []store.Outbox
	at   time.Time
}

// claim is this process's claim of outbox runs, now.
func (s *Service) claim(limit int) store.Claim {
	return store.Claim{Owner: s.exec.InstanceID, Now: s.now(), Lease: s.exec.OutboxLease, Limit: limit, Rewrites: rewrites}
}

// update is Store.Update that also claims, in the same write, the run of messages the write queued
// when nothing of the request waits ahead of them, and hands that run to this process's
// deliverer: a decision's or an outcome's messages go out without a claim of their own. Should the
// process die first, the run is claimed again by anyone once its lease runs out.
func (s *Service) update(ctx context.Context, id string, fn func(r *approval.Request) ([]store.Outbox, []store.Also, error)) (approval.Request, error) {
	at := time.Now()
	r, run, err := s.st.UpdateAndClaim(ctx, id, s.claim(1), fn)
	if len(run) > 0 {
		s.ob.mu.Lock()
		s.ob.handed = append(s.ob.handed, held{rows: run, at: at})
		s.ob.mu.Unlock()
		s.kick()
	}
	return r, err
}

// plain adapts a change that touches only its own request to update's form.
func plain(fn func(r *approval.Request) ([]store.Outbox, error)) func(r *approval.Request) ([]store.Outbox, []store.Also, error) {
	return func(r *approval.Request) ([]store.Outbox, []store.Also, error) {
		out, err := fn(r)
		return out, nil, err
	}
}

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

// deliverOutbox delivers everything claimable now, in rounds. Each round begins with one
// transaction that records what the previous round delivered and claims the next runs; then the
// runs go out, different requests concurrently, each request's rows in order. What the last round
// delivered is recorded by the next call when ctx ends first (Drain does it at shutdown).
//
// What a crash can repeat: the rows sent since the last recorded round. A run ends at its first
// row that is not a rewrite, so that is at most one message a person sees per request, the one
// that was in flight, as when each row was recorded on its own; each message is sent again at
// most once per crash. The card's id is recorded with its delivery in one transaction, and a
// failed write is retried on its own, never by posting again (recordCard): only a crash between
// the post and that write posts a card twice.
func (s deliverer) deliverOutbox(ctx context.Context) {
	s.ob.round.Lock()
	defer s.ob.round.Unlock()
	for ctx.Err() == nil {
		s.recordUnrecorded(ctx)
		s.ob.mu.Lock()
		settled := s.ob.settled
		s.ob.mu.Unlock()
		at := time.Now()
		claimed, lost, err := s.st.CompleteAndClaim(ctx, settled, s.claim(outboxBatch))
		if err != nil {
			if ctx.Err() == nil {
				s.log.WithError(err).Error("Could not record delivered outbox messages or claim more; will try again")
			}
			return
		}
		for _, id := range lost {
			s.log.WithField("outbox_id", id).Warn("Another process took over a delivered message before it was recorded; it may be sent again")
		}
		s.ob.mu.Lock()
		s.ob.settled = store.Settle{}
		runs := byRequest(append(s.ob.handed, held{rows: claimed, at: at}))
		s.ob.handed = nil
		s.ob.mu.Unlock()
		if len(runs) == 0 {
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, outboxWorkers)
		for _, run := range runs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				delivered, released := s.deliverRun(ctx, run)
				s.ob.mu.Lock()
				s.ob.settled.Delivered = append(s.ob.settled.Delivered, delivered...)
				s.ob.settled.Released = append(s.ob.settled.Released, released...)
				s.ob.mu.Unlock()
			})
		}
		wg.Wait()
	}
}

// byRequest regroups claimed rows into one run per request, its rows in ID order, claimed at the
// earliest of their claims.
func byRequest(hs []held) []held {
	var runs []held
	at := map[string]int{}
	for _, h := range hs {
		for _, row := range h.rows {
			i, ok := at[row.RequestID]
			if !ok {
				i = len(runs)
				at[row.RequestID] = i
				runs = append(runs, held{at: h.at})
			}
			runs[i].rows = append(runs[i].rows, row)
			if h.at.Before(runs[i].at) {
				runs[i].at = h.at
			}
		}
	}
	for _, r := range runs {
		slices.SortFunc(r.rows, func(a, b store.Outbox) int { return cmp.Compare(a.ID, b.ID) })
	}
	return runs
}

// deliverRun sends one request's run in order, all within half the outbox lease from its claim, so
// it has ended before another process may claim the same rows. It returns the rows to record as
// delivered and the rows it gives back unsent: those after a row that failed (it waits for its
// retry, and they behind it) or that the time bound cut off.
func (s deliverer) deliverRun(ctx context.Context, h held) (delivered, released []int64) {
	// A delivery runs detached from shutdown: once the chat may have accepted a message,
	// recording that is worth finishing, or the message is sent again after the lease.
	deadline := h.at.Add(s.exec.OutboxLease / 2)
	if bound := time.Now().Add(maxDeliveryTimeout); bound.Before(deadline) {
		deadline = bound
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	run := h.rows
	for i, row := range run {
		if ctx.Err() != nil {
			return delivered, append(released, ids(run[i:])...)
		}
		complete, next := s.deliverOne(ctx, row)
		if complete {
			delivered = append(delivered, row.ID)
		}
		if !next {
			return delivered, append(released, ids(run[i+1:])...)
		}
	}
	return delivered, released
}

func ids(rows []store.Outbox) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// deliverOne sends one row. complete: the row is to be recorded delivered (sent, or dropped for
// good); next: the rows after it may follow.
func (s deliverer) deliverOne(ctx context.Context, row store.Outbox) (complete, next bool) {
	log := s.log.WithFields(logrus.Fields{"request_id": row.RequestID, "outbox_id": row.ID, "outbox_kind": row.Kind})
	ctx = WithLogger(ctx, log)
	complete, err := s.deliver(ctx, row)
	if err == nil {
		return complete, true
	}
	if errors.Is(err, errUnrecorded) {
		// The card is out: neither a retry nor a drop may follow, or it would be posted again
		// (or its request withdrawn under it). The row stays claimed while later rounds record it.
		log.WithError(err).Error("Slack accepted a card but its id could not be recorded; recording it later, never posting it again")
		return false, false
	}
	var de *DeliveryError
	errors.As(err, &de)
	at := s.now().Add(backoff(row.Attempts))
	switch {
	case de != nil && de.RetryAfter > 0:
		at = s.now().Add(de.RetryAfter)
		log.WithField("retry_after", de.RetryAfter.String()).Info("Slack rate limited a message; retrying after the delay it asked for")
	case (de != nil && de.Permanent) || row.Attempts >= maxDeliveryAttempts:
		log.WithError(err).WithField("attempts", row.Attempts).Error("Dropping a Slack message that cannot be delivered")
		if Kind(row.Kind) == ToCard {
			code := "error"
			if de != nil && de.Code != "" {
				code = de.Code
			}
			s.cardFailed(ctx, row, code)
			return false, false
		}
		return true, true
	default:
		log.WithError(err).WithField("attempts", row.Attempts).Warn("Could not deliver a Slack message; will retry")
	}
	retry := s.st.RetryOutbox
	if de != nil && de.RetryAfter > 0 {
		// Waiting because the chat asked to is not a failed attempt: a message is never given up
		// for being rate limited.
		retry = s.st.DeferOutbox
	}
	if rerr := retry(ctx, row.ID, s.exec.InstanceID, at, err.Error()); rerr != nil {
		log.WithError(rerr).Warn("Could not schedule a retry")
	}
	return false, false
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

// deliver sends one outbox row. complete says the round must record it delivered; a card records
// its own delivery, with its id, before the next row of its request may go.
func (s deliverer) deliver(ctx context.Context, row store.Outbox) (complete bool, err error) {
	if row.Kind == kindScheduleReturn {
		if err := s.scheduleLegacyReturn(ctx, row.RequestID); err != nil {
			return false, err
		}
		return true, nil
	}
	n, err := decodeNotice(row)
	if err != nil {
		s.log.WithError(err).WithField("outbox_id", row.ID).Error("Dropping an unreadable outbox message")
		return true, nil
	}
	r, err := s.st.Get(ctx, row.RequestID)
	if err != nil {
		return false, fmt.Errorf("read request: %w", err)
	}
	n.Request = r
	if n.Kind == ToCard && r.MessageTS != "" {
		// Posted already by a delivery that completed the update but not the row: never twice.
		s.forgetCard(row.ID)
		return true, nil
	}
	if p, ok := s.unrecordedCard(row.ID); ok && n.Kind == ToCard {
		// This process posted it and could not record it: the row came back, the card did not go.
		return false, s.recordCard(ctx, row, p.ts)
	}
	posted, err := s.notifier.Tell(ctx, n)
	if err != nil {
		return false, err
	}
	if n.Kind == ToCard {
		return false, s.recordCard(ctx, row, posted)
	}
	return true, nil
}

// errUnrecorded: the chat accepted a card and no write could record its id (or its delivery).
var errUnrecorded = errors.New("the posted card's id is not recorded yet")

// recordCard records the id of a card the chat accepted, with its row's delivery, in one
// transaction. The post is done, so whatever becomes of the write the card must not be posted
// again: only the write is retried, up to maxRecordAttempts times, each with a context of its own
// (the delivery's may have run out at its deadline while the chat answered). When every attempt
// fails the row stays claimed, the id is kept in memory, and each later round tries the write
// again (recordUnrecorded); errUnrecorded tells deliverOne so.
func (s deliverer) recordCard(ctx context.Context, row store.Outbox, ts string) error {
	var err error
	for attempt := range maxRecordAttempts {
		if attempt > 0 {
			time.Sleep(recordBackoff << (attempt - 1))
		}
		err = s.writeCard(ctx, row.ID, row.RequestID, ts)
		if err == nil {
			s.forgetCard(row.ID)
			return nil
		}
		if errors.Is(err, store.ErrNotClaimed) || errors.Is(err, store.ErrNotFound) {
			// Trying again cannot help: another process holds the row now, or the request is
			// gone. The run stops here, as for any failed delivery.
			s.forgetCard(row.ID)
			return fmt.Errorf("record the posted card %s: %w", ts, err)
		}
	}
	s.ob.mu.Lock()
	if s.ob.unrecorded == nil {
		s.ob.unrecorded = map[int64]postedCard{}
	}
	s.ob.unrecorded[row.ID] = postedCard{requestID: row.RequestID, ts: ts}
	s.ob.mu.Unlock()
	return fmt.Errorf("%w (card %s): %w", errUnrecorded, ts, err)
}

// writeCard is the one write that records a posted card: its row delivered and its id on the
// request. It runs detached from the caller's context, under recordTimeout.
func (s deliverer) writeCard(ctx context.Context, rowID int64, requestID, ts string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	_, err := s.st.CompleteOutboxAndUpdate(ctx, rowID, s.exec.InstanceID, requestID, func(r *approval.Request) error {
		if r.MessageTS == "" {
			// A card recorded already stays the live one; this one is then an orphan.
			r.MessageTS = ts
		}
		return nil
	})
	return err
}

// recordUnrecorded tries once more to record every card this process posted and could not
// record, before a round claims anything.
func (s deliverer) recordUnrecorded(ctx context.Context) {
	s.ob.mu.Lock()
	pending := maps.Clone(s.ob.unrecorded)
	s.ob.mu.Unlock()
	for id, p := range pending {
		log := s.log.WithFields(logrus.Fields{"request_id": p.requestID, "outbox_id": id, "message_ts": p.ts})
		err := s.writeCard(ctx, id, p.requestID, p.ts)
		switch {
		case err == nil:
			s.forgetCard(id)
			log.Info("Recorded the id of a posted card after earlier writes failed")
		case errors.Is(err, store.ErrNotClaimed) || errors.Is(err, store.ErrNotFound):
			s.forgetCard(id)
			log.WithError(err).Warn("Could not record a posted card: its outbox row is no longer this process's")
		default:
			log.WithError(err).Warn("Still cannot record the id of a posted card; will try again")
		}
	}
}

func (s deliverer) unrecordedCard(id int64) (postedCard, bool) {
	s.ob.mu.Lock()
	defer s.ob.mu.Unlock()
	p, ok := s.ob.unrecorded[id]
	return p, ok
}

func (s deliverer) forgetCard(id int64) {
	s.ob.mu.Lock()
	defer s.ob.mu.Unlock()
	delete(s.ob.unrecorded, id)
}

// errNoChange ends a compare-and-set that has nothing to write.
var errNoChange = errors.New("nothing to change")
