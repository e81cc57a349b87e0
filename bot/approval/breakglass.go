package approval

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Break-glass (issue 27) is a disable a responder runs at once, with no approval, and that
// approvers review afterwards:
//
//	pending ──(StartBreakGlass)──▶ executing ──▶ succeeded | partial | failed
//	                                                  │ review: open ──(Confirm)──▶ confirmed
//	                                                  │         open ──(VoteReverse × quorum)──▶ reversed
//	                                                  │         open ──(FlagUnreviewed, at ReviewBy)──▶ open, flagged
//
// The review lives beside the request's state rather than in it: the request's outcome (what
// was disabled) does not change when it is reviewed, and a flagged review stays open, so Confirm
// and Reverse keep working after the window.

// Review is where the review of a break-glass action stands.
type Review string

// The review outcomes. Stored in the database: never rename one.
const (
	// ReviewOpen waits for Confirm or Reverse.
	ReviewOpen Review = ""
	// ReviewConfirmed: an approver other than the responder agreed with the action.
	ReviewConfirmed Review = "confirmed"
	// ReviewReversed: a quorum of approvers other than the responder asked to undo it.
	ReviewReversed Review = "reversed"
)

// Errors of the review transitions.
var (
	// ErrNotBreakGlass: the request was not a break-glass action.
	ErrNotBreakGlass = errors.New("not a break-glass action")
	// ErrReviewed: Confirm or Reverse already finished the review.
	ErrReviewed = errors.New("the break-glass action was already reviewed")
	// ErrSelfReview: the responder cannot review their own action, whatever ALLOW_SELF_APPROVAL says.
	ErrSelfReview = errors.New("responders cannot review their own break-glass action")
	// ErrStillRunning: the action has not finished executing; there is nothing to review yet.
	ErrStillRunning = errors.New("the break-glass action is still running")
)

// BreakGlass is what a break-glass action carries besides an ordinary disable: its responder is
// the request's Requester, and the review that follows it.
type BreakGlass struct {
	// ReviewBy is the end of the review window; at that time an unreviewed action is flagged.
	ReviewBy time.Time `json:"review_by"`
	// FinalReminder is how long before ReviewBy the second reminder is due; zero sends only the
	// one at half the window. Fixed at creation so every replica agrees.
	FinalReminder time.Duration `json:"final_reminder,omitempty"`
	// RemindersSent counts review reminders posted.
	RemindersSent int `json:"reminders_sent,omitempty"`
	// Flagged says the window ended without a review and the audit trail was told, once.
	Flagged bool `json:"flagged,omitempty"`
	// ReverseRequired is how many approvers other than the responder a Reverse takes (the
	// quorum an enable of these targets would need), fixed when the action is taken.
	ReverseRequired int `json:"reverse_required"`
	// ReverseVotes are the approvers who asked to reverse, in order.
	ReverseVotes []Vote `json:"reverse_votes,omitempty"`
	// Review, ReviewedBy and ReviewedAt are the outcome of the review.
	Review     Review    `json:"review,omitempty"`
	ReviewedBy string    `json:"reviewed_by,omitempty"`
	ReviewedAt time.Time `json:"reviewed_at,omitzero"`
	// Handover is the hand-over the responder asked for: kept aside, so the action itself never
	// runs it; Confirm runs it (HandoverOnConfirm), Reverse never does.
	Handover *Handover `json:"handover,omitempty"`
	// FellBack, on an ordinary pending request, says why a break-glass command became one
	// (the responder group could not be read, or the limit was reached); the action is then not
	// a break-glass one and the other fields are unset.
	FellBack string `json:"fell_back,omitempty"`
}

// IsBreakGlass reports whether r was executed as a break-glass action.
func (r Request) IsBreakGlass() bool { return r.BreakGlass != nil && r.BreakGlass.FellBack == "" }

// StartBreakGlass executes a pending disable at once on its requester's word, the responder:
// the request goes straight to Executing under owner's lease, with its review window open until
// now+window. reverseRequired is the quorum a Reverse takes (at least 1).
func (r *Request) StartBreakGlass(owner string, now time.Time, lease, window, finalReminder time.Duration, reverseRequired int) error {
	switch {
	case r.State != Pending:
		return fmt.Errorf("%w: cannot break glass on a %s request", ErrInvalidTransition, r.State)
	case r.Action != Disable:
		return fmt.Errorf("%w: break-glass only disables", ErrInvalidTransition)
	case len(r.Approvals) > 0:
		return fmt.Errorf("%w: the request already has approvals", ErrInvalidTransition)
	case window <= 0 || reverseRequired < 1:
		return fmt.Errorf("%w: a break-glass action needs a review window and a reverse quorum", ErrInvalidTransition)
	}
	// The hand-over waits for the review: set aside, the execution does not run it.
	r.BreakGlass = &BreakGlass{ReviewBy: now.Add(window), FinalReminder: max(finalReminder, 0), ReverseRequired: reverseRequired, Handover: r.Handover}
	r.Handover = nil
	r.State = Approved
	r.DecidedBy = r.Requester
	r.DecidedAt = now
	return r.Start(owner, now, lease)
}

// reviewable checks that user may review r now.
func (r Request) reviewable(user string) error {
	switch {
	case !r.IsBreakGlass():
		return ErrNotBreakGlass
	case !r.State.Final():
		return ErrStillRunning
	case r.BreakGlass.Review != ReviewOpen:
		return fmt.Errorf("%w: %s by %s", ErrReviewed, r.BreakGlass.Review, r.BreakGlass.ReviewedBy)
	case user == r.Requester:
		return ErrSelfReview
	}
	return nil
}

// Confirm ends the review of a break-glass action with one approver's agreement. The caller
// checks that user is an approver; the window's end does not stop it.
func (r *Request) Confirm(user string, now time.Time) error {
	if err := r.reviewable(user); err != nil {
		return err
	}
	r.BreakGlass.Review, r.BreakGlass.ReviewedBy, r.BreakGlass.ReviewedAt = ReviewConfirmed, user, now
	return nil
}

// VoteReverse records user's vote to reverse a break-glass action and reports whether it reached
// the reverse quorum, required (the quorum of the enable that undoes it: more when it restores
// admin); when it does the review is over (reversed) and the caller that stores this version
// re-enables the targets. A second vote of the same user is ErrAlreadyVoted.
func (r *Request) VoteReverse(user string, now time.Time, required int) (reached bool, err error) {
	if err := r.reviewable(user); err != nil {
		return false, err
	}
	bg := r.BreakGlass
	bg.ReverseRequired = max(required, bg.ReverseRequired, 1)
	if slices.ContainsFunc(bg.ReverseVotes, func(v Vote) bool { return v.UserID == user }) {
		return false, ErrAlreadyVoted
	}
	bg.ReverseVotes = append(bg.ReverseVotes, Vote{UserID: user, At: now})
	if len(bg.ReverseVotes) < max(bg.ReverseRequired, 1) {
		return false, nil
	}
	bg.Review, bg.ReviewedBy, bg.ReviewedAt = ReviewReversed, user, now
	return true, nil
}

// WithdrawReverseVotes drops the reverse votes of users who may no longer approve.
func (r *Request) WithdrawReverseVotes(users []string) []string {
	if !r.IsBreakGlass() || r.BreakGlass.Review != ReviewOpen {
		return nil
	}
	var dropped []string
	r.BreakGlass.ReverseVotes = slices.DeleteFunc(r.BreakGlass.ReverseVotes, func(v Vote) bool {
		if slices.Contains(users, v.UserID) {
			dropped = append(dropped, v.UserID)
			return true
		}
		return false
	})
	return dropped
}

// RemindReview counts one review reminder if one is due (see NextReviewReminder); a late one
// also counts any later one already due, so approvers are pinged once.
func (r *Request) RemindReview(now time.Time) error {
	next, ok := r.NextReviewReminder()
	if !ok || now.Before(next) {
		return ErrNotDue
	}
	for ok && !now.Before(next) {
		r.BreakGlass.RemindersSent++
		next, ok = r.NextReviewReminder()
	}
	return nil
}

// NextReviewReminder returns when the next reminder of an open review is due: at half the
// window, then FinalReminder before its end (when that is after the first). None once the
// window has ended or the review is over.
func (r Request) NextReviewReminder() (time.Time, bool) {
	if !r.IsBreakGlass() || !r.State.Final() || r.BreakGlass.Review != ReviewOpen || r.BreakGlass.Flagged {
		return time.Time{}, false
	}
	bg := r.BreakGlass
	half := r.DecidedAt.Add(bg.ReviewBy.Sub(r.DecidedAt) / 2)
	final := bg.ReviewBy.Add(-bg.FinalReminder)
	switch bg.RemindersSent {
	case 0:
		return half, true
	case 1:
		if bg.FinalReminder > 0 && final.After(half) {
			return final, true
		}
	}
	return time.Time{}, false
}

// FlagUnreviewed marks a break-glass action whose window ended without a review, once; the
// users stay disabled and the review stays open.
func (r *Request) FlagUnreviewed(now time.Time) error {
	switch {
	case !r.IsBreakGlass():
		return ErrNotBreakGlass
	case !r.State.Final():
		return ErrStillRunning
	case r.BreakGlass.Review != ReviewOpen:
		return ErrReviewed
	case r.BreakGlass.Flagged || now.Before(r.BreakGlass.ReviewBy):
		return ErrNotDue
	}
	r.BreakGlass.Flagged = true
	return nil
}

// reviewDue is when a finished break-glass action next needs a timer: a reminder or the end of
// its window.
func (r Request) reviewDue() (time.Time, bool) {
	if !r.IsBreakGlass() || !r.State.Final() || r.BreakGlass.Review != ReviewOpen || r.BreakGlass.Flagged {
		return time.Time{}, false
	}
	if next, ok := r.NextReviewReminder(); ok && next.Before(r.BreakGlass.ReviewBy) {
		return next, true
	}
	return r.BreakGlass.ReviewBy, true
}

func (b *BreakGlass) clone() *BreakGlass {
	if b == nil {
		return nil
	}
	c := *b
	c.ReverseVotes = slices.Clone(b.ReverseVotes)
	if b.Handover != nil {
		h := *b.Handover
		c.Handover = &h
	}
	return &c
}

// HandoverID is the id of the hand-over a confirmed break-glass action runs: derived from the
// action's, so it is created once.
func HandoverID(id string) string { return id + "-H" }

// HandoverOnConfirm is the hand-over a break-glass action set aside, for the users it disabled,
// approved by the confirming approver (actor) and ready to start. It reports false when there is
// none to run: no hand-over asked for, or nobody disabled.
func HandoverOnConfirm(bg Request, actor string, now time.Time) (Request, bool) {
	if !bg.IsBreakGlass() || bg.BreakGlass.Handover == nil {
		return Request{}, false
	}
	var targets []Target
	for _, t := range bg.Targets {
		if t.Result.Outcome == Done {
			targets = append(targets, Target{Instance: t.Instance, UserID: t.UserID, Email: t.Email, Name: t.Name,
				SSOSource: t.SSOSource, LastLogin: t.LastLogin, Consequences: t.Consequences.clone()})
		}
	}
	if len(targets) == 0 {
		return Request{}, false
	}
	h := *bg.BreakGlass.Handover
	return Request{
		ID: HandoverID(bg.ID), SourceKey: "handover:" + bg.ID, Action: HandOver, State: Approved,
		Requester: bg.Requester, Targets: targets, Reason: "hand-over of break-glass " + bg.ID + ": " + bg.Reason,
		ChannelID: bg.ChannelID, RequiredApprovals: 1, Approvals: []Vote{{UserID: actor, At: now}},
		DecidedBy: actor, DecidedAt: now, CreatedAt: now, ExpiresAt: now, DryRun: bg.DryRun,
		Handover: &h, Instances: slices.Clone(bg.Instances),
	}, true
}
