package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// requireApprover refuses actor unless the directory says they approve now: membership is read
// at decision time so a removal takes effect at once.
func (s decisions) requireApprover(ctx context.Context, actor string) error {
	ok, err := s.dir.IsApprover(ctx, actor)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	if !ok {
		return refuse(NotApprover, actor)
	}
	return nil
}

// Approve records actor's approval of request id. The approval that reaches the quorum also
// takes the execution lease in the same write, so exactly one process calls Metabase: that
// caller executes the request before Approve returns. The returned request is as stored after
// the decision (or after the execution, when this call ran it).
func (s *Service) Approve(ctx context.Context, id, actor string) (approval.Request, error) {
	if err := (decisions{s}).requireApprover(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	// Recording the vote is what the clicker's answer waits for; the execution that follows
	// (Metabase, then its outcome) has the ordinary budgets. A vote the store could not record
	// returns here: Metabase is never called for it.
	rctx := s.replyCtx(ctx)
	for attempt := 0; ; attempt++ {
		r, err := (decisions{s}).approveOnce(rctx, id, actor)
		if errors.Is(err, errRecheck) && attempt < maxRechecks {
			continue
		}
		if err != nil {
			return r, (decisions{s}).decisionRefusal(rctx, id, err)
		}
		s.kick()
		if !(decisions{s}).won(r) {
			s.log.WithFields(map[string]any{"request_id": id, "slack_user_id": actor}).Info("Approval recorded; waiting for more approvals")
			return r, nil
		}
		s.metrics.Decided("approved")
		s.log.WithFields(map[string]any{"request_id": id, "slack_user_id": actor}).Info("Request approved")
		return s.x.execute(ctx, r), nil
	}
}

// errRecheck: a vote arrived between the approver check and the write; check again.
var errRecheck = errors.New("approvers changed while checking them")

// maxRechecks bounds how often an approval re-reads the votes before giving up.
const maxRechecks = 5

// approveOnce records actor's vote. When it would reach the quorum, every earlier vote is
// checked against the directory first: votes of people who are no longer approvers are
// withdrawn, and the request stays pending unless the current approvers alone reach the quorum.
func (s decisions) approveOnce(ctx context.Context, id, actor string) (approval.Request, error) {
	cur, err := s.st.Get(ctx, id)
	if err != nil {
		return cur, err
	}
	checked := map[string]bool{actor: true}
	var gone []string
	if cur.State == approval.Pending && len(cur.Approvals)+1 >= cur.RequiredApprovals {
		for _, v := range cur.Approvals {
			if checked[v.UserID] {
				continue
			}
			if err := s.requireApprover(ctx, v.UserID); err != nil {
				if !isRefusal(err, NotApprover) {
					return cur, err
				}
				gone = append(gone, v.UserID)
			}
			checked[v.UserID] = true
		}
	}
	return s.update(ctx, id, func(r *approval.Request) ([]store.Outbox, []store.Also, error) {
		now := s.now()
		var out []store.Outbox
		if len(gone) > 0 {
			dropped, err := r.WithdrawVotes(gone)
			if err != nil {
				return nil, nil, err
			}
			for _, u := range dropped {
				out = append(out, s.tell(Event{Type: VoteWithdrawn, Actor: u, At: now, Request: *r}, ToThread, ToAudit)...)
			}
		}
		reached, err := r.Approve(actor, now, approval.Policy{AllowSelfApproval: s.policy.AllowSelfApproval})
		if err != nil {
			return nil, nil, err
		}
		if !reached {
			out = append(out, notice(ToCardUpdate, Event{Type: Voted, Actor: actor, At: now, Request: *r}))
			return append(out, s.tell(Event{Type: Voted, Actor: actor, At: now, Request: *r}, ToAudit)...), nil, nil
		}
		for _, v := range r.Approvals {
			if !checked[v.UserID] {
				return nil, nil, errRecheck
			}
		}
		if err := r.Start(s.exec.InstanceID, now, s.exec.ExecLease); err != nil {
			return nil, nil, err
		}
		out = append(out, s.tell(Event{Type: Approved, Actor: actor, At: now, Request: *r}, ToCardUpdate, ToAudit)...)
		return out, s.supersede(*r, actor, now), nil
	})
}

// isRefusal reports whether err is a Refusal with code.
func isRefusal(err error, code Code) bool {
	var rf *Refusal
	return errors.As(err, &rf) && rf.Code == code
}

// supersede takes the targets of disable r, with the approval that executes it, out of the
// scheduled returns r replaces. A dry run changes nothing real, so it supersedes nothing; a
// return running right now fails the approval (ErrReturnRunning), to be clicked again once the
// return has run, rather than let its reactivation land after the disable.
func (s decisions) supersede(r approval.Request, actor string, now time.Time) []store.Also {
	if r.DryRun || s.policy.DryRun {
		return nil
	}
	users := make([]approval.UserKey, len(r.Targets))
	for i, t := range r.Targets {
		users[i] = t.Key()
	}
	var also []store.Also
	for _, sup := range r.Supersedes {
		also = append(also, store.Also{ID: sup.ID, Update: func(ret *approval.Request) ([]store.Outbox, error) {
			removed, err := ret.Supersede(r.ID, users, now)
			switch {
			case errors.Is(err, approval.ErrReturnRunning):
				return nil, err
			case err != nil || len(removed) == 0:
				return nil, store.ErrUnchanged // it already ran or was cancelled
			}
			return s.tell(Event{Type: ReturnCancelled, Actor: actor, By: r.ID, At: now, Removed: removed, Request: *ret}, ToThread, ToAudit), nil
		}})
	}
	return also
}

// won reports whether the stored request is an execution this process just started: a
// successful compare-and-set that left the request executing under this process's lease.
func (s decisions) won(r approval.Request) bool {
	return r.State == approval.Executing && r.LeaseOwner == s.exec.InstanceID
}

// decisionRefusal turns a transition's refusal into a Refusal for the person who clicked, reading
// the request again where the words describe how it stands now.
func (s decisions) decisionRefusal(ctx context.Context, id string, err error) error {
	code := Code("")
	switch {
	case errors.Is(err, store.ErrNotFound):
		code = UnknownRequest
	case errors.Is(err, approval.ErrSelfApproval):
		code = SelfApproval
	case errors.Is(err, approval.ErrAlreadyVoted):
		code = AlreadyVoted
	case errors.Is(err, approval.ErrExpired):
		code = RequestExpired
	case errors.Is(err, approval.ErrNotPending):
		code = AlreadyDecided
	case errors.Is(err, approval.ErrNotRequester):
		code = NotRequester
	case errors.Is(err, approval.ErrReturnRunning):
		code = ReturnRunning
	default:
		return err
	}
	rf := &Refusal{Code: code, Subject: id}
	if code == AlreadyDecided {
		if cur, gerr := s.st.Get(ctx, id); gerr == nil {
			rf.Request = cur
		}
	}
	return rf
}

// Deny ends a pending request; one denial from an approver is enough, whatever the quorum.
func (s *Service) Deny(ctx context.Context, id, actor, reason string) (approval.Request, error) {
	ctx = s.replyCtx(ctx)
	if err := (decisions{s}).requireApprover(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	r, err := s.update(ctx, id, plain(func(r *approval.Request) ([]store.Outbox, error) {
		now := s.now()
		if err := r.Deny(actor, reason, now); err != nil {
			return nil, err
		}
		return s.tell(Event{Type: Denied, Actor: actor, Reason: reason, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit), nil
	}))
	if err != nil {
		return r, (decisions{s}).decisionRefusal(ctx, id, err)
	}
	s.metrics.Decided("denied")
	s.log.WithFields(map[string]any{"request_id": id, "slack_user_id": actor}).Info("Request denied")
	s.kick()
	return r, nil
}

// Cancel withdraws a pending request; only its requester may.
func (s *Service) Cancel(ctx context.Context, id, actor string) (approval.Request, error) {
	ctx = s.replyCtx(ctx)
	r, err := s.update(ctx, id, plain(func(r *approval.Request) ([]store.Outbox, error) {
		now := s.now()
		if err := r.Cancel(actor, now); err != nil {
			return nil, err
		}
		return s.tell(Event{Type: Cancelled, Actor: actor, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit), nil
	}))
	if err != nil {
		return r, (decisions{s}).decisionRefusal(ctx, id, err)
	}
	s.log.WithFields(map[string]any{"request_id": id, "slack_user_id": actor}).Info("Request cancelled")
	s.kick()
	return r, nil
}

// Retry sends the failed targets of a failed or partial request back to execution, and executes
// them before returning.
func (s *Service) Retry(ctx context.Context, id, actor string) (approval.Request, error) {
	if err := (decisions{s}).requireApprover(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	rctx := s.replyCtx(ctx)
	cur, err := s.st.Get(rctx, id)
	if err != nil {
		return cur, (decisions{s}).decisionRefusal(rctx, id, err)
	}
	if actor == cur.Requester && !s.policy.AllowSelfApproval {
		return cur, &Refusal{Code: SelfApproval, Subject: id}
	}
	if cur.State == approval.Failed || cur.State == approval.Partial {
		if s.now().Sub(cur.FinishedAt) > s.policy.RequestTTL {
			return cur, &Refusal{Code: RetryTooLate, Subject: id, When: cur.FinishedAt}
		}
		if err := (validator{s}).recheck(ctx, cur); err != nil {
			return cur, err
		}
	}
	r, err := s.update(rctx, id, plain(func(r *approval.Request) ([]store.Outbox, error) {
		now := s.now()
		if err := r.Retry(actor, now); err != nil {
			return nil, err
		}
		if err := r.Start(s.exec.InstanceID, now, s.exec.ExecLease); err != nil {
			return nil, err
		}
		return s.tell(Event{Type: Retrying, Actor: actor, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit), nil
	}))
	var oe *store.OpenRequestError
	if errors.As(err, &oe) {
		// A new request for one of its users was made since the recheck: the store re-opens a
		// request under the lock a new request takes, and refused this one.
		return r, &Refusals{Items: []*Refusal{{Code: OpenRequest, Subject: emailOf(cur, oe.User), Other: oe.RequestID}}, Validated: true, Retry: true}
	}
	if err != nil {
		if !errors.Is(err, approval.ErrInvalidTransition) && !errors.Is(err, approval.ErrNothingToRetry) {
			return r, err
		}
		rf := &Refusal{Code: NothingToRetry, Subject: id}
		if cur, gerr := s.st.Get(ctx, id); gerr == nil {
			rf.Request = cur
		}
		return r, rf
	}
	s.kick()
	if !(decisions{s}).won(r) {
		return r, nil
	}
	s.log.WithField("request_id", id).Info("Retrying failed targets")
	return s.x.execute(ctx, r), nil
}

// CancelReturn cancels the scheduled re-enable that a leave created; any approver may.
func (s *Service) CancelReturn(ctx context.Context, id, actor string) (approval.Request, error) {
	ctx = s.replyCtx(ctx)
	if err := (decisions{s}).requireApprover(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	r, err := s.update(ctx, id, plain(func(r *approval.Request) ([]store.Outbox, error) {
		now := s.now()
		if err := r.CancelReturn(actor, now); err != nil {
			return nil, err
		}
		return s.tell(Event{Type: ReturnCancelled, Actor: actor, At: now, Request: *r}, ToThread, ToAudit), nil
	}))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r, refuse(NoReturn, id)
	case errors.Is(err, approval.ErrNotScheduled):
		return r, refuse(ReturnNotScheduled, id)
	case err != nil:
		return r, err
	}
	s.log.WithFields(map[string]any{"request_id": id, "slack_user_id": actor}).Info("Automatic return cancelled")
	s.kick()
	return r, nil
}
