package access

import (
	"context"
	"fmt"
	"slices"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Desk is what one person should see on their desk (the Slack Home tab, or `pending`): the
// requests waiting for them and their own. It is read from the store when asked, so it shows
// every replica's requests, and it is only a view: every button on it is checked again when
// clicked, as on the card.
type Desk struct {
	// Person is whose desk it is (a chat user id).
	Person string
	// Approver says Person was an approver when the desk was read; only then are Waiting and
	// Retryable filled.
	Approver bool
	// Waiting are the requests waiting for a decision, in every channel, oldest first.
	Waiting []DeskItem
	// BreakGlass are break-glass actions whose review (Confirm or Reverse) is still open, also
	// past their window, oldest first.
	BreakGlass []DeskItem
	// Retryable are failed or partial requests whose failed targets an approver may still retry
	// (within RequestTTL of their end), oldest first.
	Retryable []DeskItem
	// Own are Person's own open requests (pending, approved, executing), oldest first; an
	// approver's own pending requests are under Waiting instead, with the others.
	Own []DeskItem
	// Returns are the scheduled returns of Person's leaves, soonest first.
	Returns []DeskItem
}

// DeskItem is one request on a desk, with what Person may do about it as far as the desk can
// tell when it is read.
type DeskItem struct {
	Request approval.Request
	// MayDecide: Person may approve or deny it (an approver, not its requester unless
	// self-approval is allowed, and not one who approved it already).
	MayDecide bool
	// MayRetry: Person may retry its failed targets.
	MayRetry bool
	// MayCancel: Person may cancel it (their own pending request).
	MayCancel bool
	// MayReview: Person may Confirm or Reverse a break-glass action (an approver who is not its
	// responder: the review takes someone else, whatever self-approval allows).
	MayReview bool
}

// Requests returns the ids of every request on the desk, which the chat side remembers to
// accept a click from the desk and to know whose desk a change touches.
func (d Desk) Requests() []string {
	var ids []string
	for _, l := range [][]DeskItem{d.Waiting, d.BreakGlass, d.Retryable, d.Own, d.Returns} {
		for _, it := range l {
			ids = append(ids, it.Request.ID)
		}
	}
	return ids
}

// Desk reads person's desk. Approver membership is read now, so the buttons follow the group
// when the desk is drawn; a click is checked again.
func (s *Service) Desk(ctx context.Context, person string) (Desk, error) {
	approver, err := s.dir.IsApprover(ctx, person)
	if err != nil {
		return Desk{}, fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	return s.desk(ctx, person, approver)
}

// DeskIn reads person's desk for `pending` typed in channel: an approver's full desk anywhere;
// anyone else only their own requests, and only where they may make requests.
func (s *Service) DeskIn(ctx context.Context, person, channel string) (Desk, error) {
	approver, err := s.dir.IsApprover(ctx, person)
	if err != nil {
		return Desk{}, fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	if !approver {
		if err := s.dir.MayRequest(ctx, person, channel); err != nil {
			return Desk{}, err
		}
	}
	return s.desk(ctx, person, approver)
}

// DeskAs reads person's desk drawn as an approver or not, as the caller found from a membership
// read of its own (the chat side draws Homes from one recent read of the approver group, so
// drawing many Homes does not spend the group reads that clicks need). The desk is only a view:
// every click on it is checked again.
func (s *Service) DeskAs(ctx context.Context, person string, approver bool) (Desk, error) {
	return s.desk(ctx, person, approver)
}

func (s *Service) desk(ctx context.Context, person string, approver bool) (Desk, error) {
	open, err := s.st.List(ctx, approval.Pending, approval.Approved, approval.Executing, approval.Scheduled)
	if err != nil {
		return Desk{}, err
	}
	d := Desk{Person: person, Approver: approver}
	self := func(r approval.Request) bool { return r.Requester == person && !s.policy.AllowSelfApproval }
	for _, r := range open {
		mine := r.Requester == person
		switch {
		case r.State == approval.Scheduled:
			if mine {
				d.Returns = append(d.Returns, DeskItem{Request: r})
			}
		case r.State == approval.Pending:
			if approver {
				d.Waiting = append(d.Waiting, DeskItem{Request: r, MayDecide: !self(r) && !r.HasApproved(person), MayCancel: mine})
			} else if mine {
				d.Own = append(d.Own, DeskItem{Request: r, MayCancel: true})
			}
		case mine:
			d.Own = append(d.Own, DeskItem{Request: r})
		}
	}
	sortReturns(d.Returns)
	if !approver {
		return d, nil
	}
	failed, err := s.st.List(ctx, approval.Failed, approval.Partial)
	if err != nil {
		return Desk{}, err
	}
	done, err := s.st.List(ctx, approval.Succeeded)
	if err != nil {
		return Desk{}, err
	}
	for _, r := range slices.Concat(done, failed) {
		if r.IsBreakGlass() && r.BreakGlass.Review == approval.ReviewOpen {
			d.BreakGlass = append(d.BreakGlass, DeskItem{Request: r, MayReview: r.Requester != person})
		}
	}
	slices.SortStableFunc(d.BreakGlass, func(a, b DeskItem) int { return a.Request.CreatedAt.Compare(b.Request.CreatedAt) })
	now := s.now()
	for _, r := range failed {
		// A failed automatic return is listed too: its people stay disabled until it is retried.
		if now.Sub(r.FinishedAt) > s.policy.RequestTTL {
			continue
		}
		d.Retryable = append(d.Retryable, DeskItem{Request: r, MayRetry: !self(r)})
	}
	return d, nil
}

// sortReturns orders scheduled returns soonest first (the store lists by creation).
func sortReturns(rs []DeskItem) {
	slices.SortStableFunc(rs, func(a, b DeskItem) int { return a.Request.NotBefore.Compare(b.Request.NotBefore) })
}
