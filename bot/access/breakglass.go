package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// Break-glass (issue 27): a responder disables at once in a security incident, approvers review
// afterwards. The action gets every check an ordinary disable gets (validation, protection,
// last admin, one open request per user, exactly-once execution); only the approval is moved to
// after the fact. Its lifecycle is package approval's (approval/breakglass.go).

// Responders says who may break glass (INCIDENT_GROUP). Like the Directory it is asked when the
// command arrives, so a removal from the group takes effect at once.
type Responders interface {
	// IsResponder reports whether user is an incident responder.
	IsResponder(ctx context.Context, user string) (bool, error)
}

// breakGlassPeriod is the rolling window of the per-responder limit (INCIDENT_MAX_USERS).
const breakGlassPeriod = time.Hour

// Why a break-glass command became an ordinary pending request (approval.BreakGlass.FellBack).
const (
	// FellBackUnreadable: the responder group could not be read, so nobody could tell whether
	// the person is a responder; approvers decide instead.
	FellBackUnreadable = "group_unreadable"
	// FellBackLimit: the responder reached INCIDENT_MAX_USERS users in the last hour.
	FellBackLimit = "limit"
)

// Refusals of break-glass commands and reviews.
const (
	// BreakGlassOff: INCIDENT_GROUP is not set.
	BreakGlassOff Code = "break_glass_off"
	// NotResponder: Subject is not in the incident group.
	NotResponder Code = "not_responder"
	// NotBreakGlass: request Subject was not a break-glass action.
	NotBreakGlass Code = "not_break_glass"
	// AlreadyReviewed: request Subject was already confirmed or reversed (Request says how).
	AlreadyReviewed Code = "already_reviewed"
	// SelfReview: the responder tried to review their own action.
	SelfReview Code = "self_review"
	// StillRunning: the action is still executing; review it once it has finished.
	StillRunning Code = "still_running"
)

// The events of break-glass actions.
const (
	// BrokeGlass: a responder's disable was created and is executing, with no approval.
	BrokeGlass EventType = "break_glass"
	// ReviewConfirmed: an approver confirmed a break-glass action.
	ReviewConfirmed EventType = "review_confirmed"
	// ReverseVoted: an approver voted to reverse, short of the quorum.
	ReverseVoted EventType = "reverse_voted"
	// ReviewReversed: the reverse quorum was reached; the reversal (an enable) is executing.
	ReviewReversed EventType = "review_reversed"
	// ReviewReminded: a break-glass action still waits for its review.
	ReviewReminded EventType = "review_reminded"
	// Unreviewed: the review window ended without a review.
	Unreviewed EventType = "unreviewed"
)

// breakGlassAuditName is the audit name of a break-glass event.
func breakGlassAuditName(e Event) (string, bool) {
	switch e.Type {
	case BrokeGlass:
		return "break-glass", true
	case ReviewConfirmed:
		return "reviewed: confirmed", true
	case ReviewReversed:
		return "reviewed: reversed", true
	case ReverseVoted:
		bg := e.Request.BreakGlass
		if bg == nil {
			return "reverse vote", true
		}
		return fmt.Sprintf("reverse vote %d of %d", len(bg.ReverseVotes), bg.ReverseRequired), true
	case ReviewReminded:
		return "review reminder", true
	case Unreviewed:
		return "unreviewed", true
	}
	return "", false
}

// BreakGlassOn reports whether break-glass is configured.
func (s *Service) BreakGlassOn() bool { return s.responders != nil }

// SubmitNow is `disable now`: when c.Requester is a responder, the disable is validated as any
// disable, created and executed before SubmitNow returns, with no approval. Anyone else is
// refused (*Refusal NotResponder) and nothing is written. When the responder group cannot be
// read, or the responder reached the hourly limit, an ordinary pending request is created
// instead and returned with BreakGlass.FellBack saying why.
func (s *Service) SubmitNow(ctx context.Context, c ChangeRequest) (approval.Request, error) {
	if s.responders == nil {
		return approval.Request{}, refuse(BreakGlassOff, "")
	}
	if c.Action != approval.Disable {
		return approval.Request{}, fmt.Errorf("access: break-glass only disables, not %s", c.Action)
	}
	// ALLOWED_CHANNELS and REQUESTER_GROUP apply to responders as to anyone, first, so a person
	// who may not request at all hears that rather than whether they are a responder.
	if err := s.dir.MayRequest(ctx, c.Requester, c.Channel); err != nil {
		return approval.Request{}, err
	}
	c.requesterChecked, c.breakGlass = true, true
	ok, err := s.responders.IsResponder(ctx, c.Requester)
	if err != nil {
		Logger(ctx, s.log).WithError(err).Warn("Could not read the incident group; the break-glass command becomes a request for approval")
		return s.fallBack(ctx, c, FellBackUnreadable)
	}
	if !ok {
		return approval.Request{}, refuse(NotResponder, c.Requester)
	}
	// What the targets leave running is not looked up first: in an incident the disable comes
	// before the inventory, which an ordinary request or /metabase orphans gives afterwards.
	r, err := s.prepare(ctx, c, false)
	if err != nil {
		return r, err
	}
	if r.RevokeKeys || r.Unshare {
		// revoke-keys and unshare act at once too, on what the card shows: the keys and links
		// are looked up first (one round trip more), and refused as for any request when the
		// card could not say what they remove.
		r = withLeftovers(r, (lookups{s}).leftoversFor(ctx, r))
		if err := unshareRefusal(r); err != nil {
			return r, err
		}
	}
	pending := r.Clone()
	now := s.now()
	if err := r.StartBreakGlass(s.exec.InstanceID, now, s.exec.ExecLease, s.policy.ReviewWindow, s.reviewReminder(), r.RequiredApprovals); err != nil {
		return r, err
	}
	ev := Event{Type: BrokeGlass, Actor: r.Requester, At: now, Request: r}
	out := []store.Outbox{notice(ToCard, ev)}
	if len(r.Targets) > 1 {
		out = append(out, notice(ToThread, ev))
	}
	out = append(out, s.tell(ev, ToAudit)...)
	// A target on leave has its return cancelled in the same transaction, as a termination's
	// approval does, so the return never undoes the incident's disable.
	also := decisions{s}.supersede(r, r.Requester, now)
	limit := store.BreakGlassLimit{Requester: r.Requester, Since: now.Add(-breakGlassPeriod), Max: s.policy.IncidentMaxUsers}
	err = s.st.CreateBreakGlass(ctx, r, limit, also, out...)
	var le *store.LimitError
	switch {
	case errors.As(err, &le):
		Logger(ctx, s.log).WithField("used", le.Used).Info("Break-glass limit reached; the command becomes a request for approval")
		pending.BreakGlass = &approval.BreakGlass{FellBack: FellBackLimit}
		return pending, s.Create(ctx, pending)
	case errors.Is(err, approval.ErrReturnRunning):
		return r, refuse(ReturnRunning, r.ID)
	case err != nil:
		return r, createError(r, err)
	}
	s.metrics.RequestCreated(r)
	s.metrics.Decided("break_glass")
	s.kick()
	Logger(ctx, s.log).WithField("request_id", r.ID).Warn("Break-glass: disabling without approval")
	return s.x.execute(ctx, r), nil
}

// fallBack creates c as an ordinary pending request, marked with why it is not a break-glass one.
func (s *Service) fallBack(ctx context.Context, c ChangeRequest, why string) (approval.Request, error) {
	r, err := s.Prepare(ctx, c)
	if err != nil {
		return r, err
	}
	r.BreakGlass = &approval.BreakGlass{FellBack: why}
	return r, s.Create(ctx, r)
}

// reviewReminder is how long before the review window's end the second reminder goes out: the
// same REMINDER_BEFORE_EXPIRY as requests, bounded the same way by the window.
func (s *Service) reviewReminder() time.Duration {
	return min(s.policy.FinalReminder, s.policy.ReviewWindow/10)
}

// Confirm ends the review of break-glass action id with actor's agreement; actor must be an
// approver other than the responder, whatever ALLOW_SELF_APPROVAL says.
func (s *Service) Confirm(ctx context.Context, id, actor string) (approval.Request, error) {
	if err := (decisions{s}).requireApprover(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	var handover *approval.Request
	r, err := s.update(ctx, id, func(r *approval.Request) ([]store.Outbox, []store.Also, error) {
		now := s.now()
		handover = nil
		if err := r.Confirm(actor, now); err != nil {
			return nil, nil, err
		}
		out := s.tell(Event{Type: ReviewConfirmed, Actor: actor, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit)
		// The hand-over the responder asked for runs now, once, in a request of its own created
		// with the confirmation: a crash after this write leaves it for the timer to take over.
		h, ok := approval.HandoverOnConfirm(*r, actor, now)
		if !ok {
			return out, nil, nil
		}
		if err := h.Start(s.exec.InstanceID, now, s.exec.ExecLease); err != nil {
			return nil, nil, err
		}
		handover = &h
		hout := append([]store.Outbox{notice(ToCard, Event{Type: Approved, Actor: actor, At: now, Request: h})},
			s.tell(Event{Type: Approved, Actor: actor, At: now, Request: h}, ToAudit)...)
		return out, []store.Also{{Create: &h, CreateOut: hout}}, nil
	})
	if err != nil {
		return r, s.reviewRefusal(ctx, id, err)
	}
	s.metrics.Decided("confirmed")
	Logger(ctx, s.log).WithFields(map[string]any{"request_id": id, "slack_user_id": actor}).Info("Break-glass action confirmed")
	s.kick()
	if handover != nil {
		if h, err := s.st.Get(ctx, handover.ID); err == nil && (decisions{s}).won(h) && h.Attempts == 1 {
			s.x.execute(ctx, h)
		}
	}
	return r, nil
}

// Reverse records actor's vote to undo break-glass action id. The vote that reaches the quorum
// (REQUIRED_APPROVALS approvers other than the responder, ADMIN_REQUIRED_APPROVALS when admin is
// to be restored) creates, in the same write, the enable that re-enables the users the action
// disabled, built by the enable path with all its checks (admin restored only from the bot's own
// record, while Metabase still shows the user as the bot left them), and executes it before
// Reverse returns. It returns the break-glass action as stored.
func (s *Service) Reverse(ctx context.Context, id, actor string) (approval.Request, error) {
	if err := (decisions{s}).requireApprover(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	cur, err := s.st.Get(ctx, id)
	if err != nil {
		return cur, s.reviewRefusal(ctx, id, err)
	}
	probe := cur.Clone()
	if err := probe.Confirm(actor, s.now()); err != nil {
		// The same checks as a reverse vote (a dry run of the transition on a copy), before any
		// Metabase read.
		return cur, s.reviewRefusal(ctx, id, err)
	}
	enable, err := s.reversal(ctx, cur, actor)
	if err != nil {
		return cur, err
	}
	// Votes of people who are no longer approvers do not count towards the quorum.
	var gone []string
	for _, v := range cur.BreakGlass.ReverseVotes {
		if err := (decisions{s}).requireApprover(ctx, v.UserID); err != nil {
			if !isRefusal(err, NotApprover) {
				return cur, err
			}
			gone = append(gone, v.UserID)
		}
	}
	reversed := false
	r, err := s.update(ctx, id, func(r *approval.Request) ([]store.Outbox, []store.Also, error) {
		now := s.now()
		reversed = false
		r.WithdrawReverseVotes(gone)
		reached, err := r.VoteReverse(actor, now, enable.RequiredApprovals)
		if err != nil {
			return nil, nil, err
		}
		if !reached {
			return s.tell(Event{Type: ReverseVoted, Actor: actor, At: now, Request: *r}, ToCardUpdate, ToAudit), nil, nil
		}
		out := s.tell(Event{Type: ReviewReversed, Actor: actor, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit)
		if len(enable.Targets) == 0 {
			return out, nil, nil // nothing was disabled for real: nothing to re-enable
		}
		reversed = true
		e := enable.Clone()
		e.CreatedAt, e.DecidedAt, e.DecidedBy = now, now, actor
		e.Approvals = append([]approval.Vote(nil), r.BreakGlass.ReverseVotes...)
		e.State = approval.Approved
		if err := e.Start(s.exec.InstanceID, now, s.exec.ExecLease); err != nil {
			return nil, nil, err
		}
		eout := append([]store.Outbox{notice(ToCard, Event{Type: Approved, Actor: actor, At: now, Request: e})},
			s.tell(Event{Type: Approved, Actor: actor, At: now, Request: e}, ToAudit)...)
		return out, []store.Also{{Create: &e, CreateOut: eout}}, nil
	})
	if err != nil {
		return r, s.reviewRefusal(ctx, id, err)
	}
	s.kick()
	if !reversed {
		return r, nil
	}
	s.metrics.Decided("reversed")
	Logger(ctx, s.log).WithFields(map[string]any{"request_id": id, "slack_user_id": actor, "reversal_id": enable.ID}).Info("Break-glass action reversed")
	e, err := s.st.Get(ctx, enable.ID)
	if err == nil && (decisions{s}).won(e) && e.Attempts == 1 {
		s.x.execute(ctx, e)
	}
	return r, nil
}

// ReversalID is the id of the enable that reverses break-glass action id: derived from it, so a
// second reversal is refused by the store.
func ReversalID(id string) string { return id + "-X" }

// reversal builds the enable that undoes break-glass action bg: the users it disabled, through
// the enable path's validation, requested on behalf of the reviewers.
func (s *Service) reversal(ctx context.Context, bg approval.Request, actor string) (approval.Request, error) {
	var refs []TargetRef
	for _, t := range bg.Targets {
		if t.Result.Outcome != approval.Done || bg.DryRun {
			continue
		}
		ref := TargetRef{Kind: ByID, ID: t.UserID, Raw: t.Email}
		if s.in.multi() {
			ref.Instance = t.InstanceName()
		}
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		// Nothing was disabled for real (a dry run, or every user skipped or failed): the
		// reversal is only a record.
		return approval.Request{ID: ReversalID(bg.ID), Action: approval.Enable, RequiredApprovals: s.policy.RequiredApprovals}, nil
	}
	c := ChangeRequest{Action: approval.Enable, Targets: refs, Requester: actor, Channel: bg.ChannelID,
		Reason: "reverses break-glass " + bg.ID + ": " + bg.Reason, automatic: true}
	r, err := validator{s}.build(ctx, c)
	if active := alreadyActive(err); active != nil {
		// Someone re-enabled some of them since: the reversal is for the others, and nobody's
		// refusal blocks undoing the rest.
		c.Targets = slices.DeleteFunc(c.Targets, func(t TargetRef) bool { return active[strings.ToLower(t.Raw)] })
		if len(c.Targets) == 0 {
			return approval.Request{ID: ReversalID(bg.ID), Action: approval.Enable, RequiredApprovals: s.policy.RequiredApprovals}, nil
		}
		r, err = validator{s}.build(ctx, c)
	}
	if err != nil {
		return r, err
	}
	r.ID, r.SourceKey = ReversalID(bg.ID), "reverse:"+bg.ID
	return r, nil
}

// alreadyActive returns the emails err refuses as already active, when that is all it refuses.
func alreadyActive(err error) map[string]bool {
	var rs *Refusals
	if !errors.As(err, &rs) || len(rs.Items) == 0 {
		return nil
	}
	out := map[string]bool{}
	for _, rf := range rs.Items {
		if rf.Code != AlreadyActive {
			return nil
		}
		out[strings.ToLower(rf.Subject)] = true
	}
	return out
}

// reviewRefusal turns a review transition's refusal into a Refusal for the person who clicked.
func (s *Service) reviewRefusal(ctx context.Context, id string, err error) error {
	code := Code("")
	switch {
	case errors.Is(err, approval.ErrNotBreakGlass):
		code = NotBreakGlass
	case errors.Is(err, approval.ErrReviewed):
		code = AlreadyReviewed
	case errors.Is(err, approval.ErrSelfReview):
		code = SelfReview
	case errors.Is(err, approval.ErrStillRunning):
		code = StillRunning
	default:
		return (decisions{s}).decisionRefusal(ctx, id, err)
	}
	rf := &Refusal{Code: code, Subject: id}
	if cur, gerr := s.st.Get(ctx, id); gerr == nil {
		rf.Request = cur
	}
	return rf
}

// review reminds approvers of an open review, or flags it once its window has ended.
func (s timers) review(ctx context.Context, id string) {
	log := Logger(ctx, s.log)
	_, err := s.update(ctx, id, plain(func(r *approval.Request) ([]store.Outbox, error) {
		now := s.now()
		if r.RemindReview(now) == nil {
			return []store.Outbox{notice(ToThread, Event{Type: ReviewReminded, At: now, Request: *r})}, nil
		}
		if err := r.FlagUnreviewed(now); err != nil {
			return nil, err
		}
		return s.tell(Event{Type: Unreviewed, At: now, Request: *r}, ToCardUpdate, ToThread, ToAudit), nil
	}))
	switch {
	case errors.Is(err, approval.ErrNotDue), errors.Is(err, approval.ErrReviewed):
		// Another replica got there first, or a click reviewed it meanwhile.
	case err != nil:
		log.WithError(err).Error("Could not remind of or flag a break-glass review")
	default:
		s.kick()
	}
}

// breakGlassUser is, on the first attempt of a break-glass action, the target as validation read
// it a moment ago, so the DELETE is the command's second Metabase call rather than its third; nil
// everywhere else, where execution reads the user first. A takeover, a retry, an unresolved
// target and an action that takes a user on leave (validated inactive) read again. The admin
// checks right before the DELETE still run for a target validated as an admin.
func (x *executor) breakGlassUser(r approval.Request, t approval.Target) (*metabase.User, error) {
	if !r.IsBreakGlass() || r.Attempts != 1 || r.Recovering || t.Unresolved || t.Unanswered || t.Result.Outcome != "" || len(r.Supersedes) > 0 {
		return nil, nil
	}
	return &metabase.User{ID: t.UserID, Email: t.Email, IsActive: true, IsSuperuser: t.Superuser, GroupIDs: t.GroupIDs}, nil
}
