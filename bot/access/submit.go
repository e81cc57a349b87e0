package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// TargetKind says how a person named a user.
type TargetKind int

// The ways to name a user.
const (
	// ByEmail: jane@example.com.
	ByEmail TargetKind = iota + 1
	// ByID: a Metabase user id.
	ByID
	// ByChatUser: a chat mention, resolved to an email through the Directory.
	ByChatUser
)

// TargetRef is a user as a person named them, before any lookup.
type TargetRef struct {
	Kind TargetKind
	// Email (lower-cased), ID, or ChatUser, according to Kind.
	Email    string
	ID       int
	ChatUser string
	// Raw is the text as typed, for refusals that must repeat what the requester wrote.
	Raw string
}

// Key identifies the user a ref names, so the same user named twice counts once.
func (t TargetRef) Key() string {
	switch t.Kind {
	case ByEmail:
		return "e:" + t.Email
	case ByID:
		return "i:" + strconv.Itoa(t.ID)
	default:
		return "s:" + t.ChatUser
	}
}

// ChangeRequest is a request to disable or enable users, as a person made it.
type ChangeRequest struct {
	Action  approval.Action
	Targets []TargetRef
	// Until is the raw return date of a leave (`until DATE`); see ParseReturnDate.
	Until  string
	Reason string
	// Requester and Channel are the chat user and the conversation the request came from.
	Requester string
	Channel   string
	// SourceKey makes a redelivered command create nothing new.
	SourceKey string
	// Resolved, when set, are the targets already looked up (the inactive report's request).
	Resolved []metabase.User
	// Handover, on a disable, hands over what the targets leave running (consequences.go).
	Handover *HandoverRequest
}

// Submit validates c and, when everything holds, creates the request with its card, its target
// list and its audit event in one transaction. A refusal (*Refusal or *Refusals) creates nothing;
// ErrRedelivered means the same command already created a request.
func (s *Service) Submit(ctx context.Context, c ChangeRequest) (approval.Request, error) {
	r, err := validator{s}.build(ctx, c)
	if err == nil {
		r, err = validator{s}.extend(ctx, c, r, true)
	}
	if err != nil {
		return r, err
	}
	out := []store.Outbox{notice(ToCard, Event{Type: Requested, At: r.CreatedAt, Request: r})}
	if len(r.Targets) > 1 || ListsItems(r) {
		out = append(out, notice(ToThread, Event{Type: Requested, At: r.CreatedAt, Request: r}))
	}
	out = append(out, s.tell(Event{Type: Requested, Actor: r.Requester, At: r.CreatedAt, Request: r}, ToAudit)...)
	if err := s.st.Create(ctx, r, out...); err != nil {
		if errors.Is(err, store.ErrExists) {
			return r, ErrRedelivered
		}
		return r, fmt.Errorf("%w: %w", ErrNotSaved, err)
	}
	s.metrics.RequestCreated(r)
	s.kick()
	return r, nil
}

// Validate runs Submit's checks without creating anything, so a form can show problems next to
// its fields before it closes.
func (s *Service) Validate(ctx context.Context, c ChangeRequest) error {
	r, err := validator{s}.build(ctx, c)
	if err == nil {
		_, err = validator{s}.extend(ctx, c, r, false)
	}
	return err
}

// build checks who asks, where, and about whom, and returns the request to create.
func (s validator) build(ctx context.Context, c ChangeRequest) (approval.Request, error) {
	if err := s.dir.MayRequest(ctx, c.Requester, c.Channel); err != nil {
		return approval.Request{}, err
	}
	if s.policy.RequireReason && strings.TrimSpace(c.Reason) == "" {
		first := ""
		if len(c.Targets) > 0 {
			first = c.Targets[0].Raw
		}
		return approval.Request{}, &Refusal{Code: ReasonRequired, Subject: string(c.Action), Other: first}
	}
	now := s.now()
	var returnAt *time.Time
	if c.Until != "" {
		t, err := ParseReturnDate(c.Until, s.policy.ReturnLocation, now, s.policy.MaxReturnAhead)
		if err != nil {
			return approval.Request{}, err
		}
		returnAt = &t
	}
	users := c.Resolved
	if users == nil {
		var problems []*Refusal
		for _, ref := range c.Targets {
			u, err := s.resolve(ctx, ref)
			var rf *Refusal
			if errors.As(err, &rf) {
				problems = append(problems, rf)
				continue
			}
			if err != nil {
				return approval.Request{}, err
			}
			users = append(users, *u)
		}
		if len(problems) > 0 {
			return approval.Request{}, &Refusals{Items: problems}
		}
	}
	var problems []*Refusal
	targets := make([]approval.Target, 0, len(users))
	seen := map[int]bool{}
	required := s.policy.RequiredApprovals
	for _, u := range users {
		if seen[u.ID] {
			continue
		}
		seen[u.ID] = true
		if s.Protected(u) {
			problems = append(problems, refuse(Protected, u.Email))
			continue
		}
		if u.IsAPIKey() {
			// Metabase answers a DELETE of an API key's user with success and changes nothing
			// (docs/metabase.md#api-key-users): reporting "disabled" would be a lie.
			problems = append(problems, refuse(APIKeyUser, u.Email))
			continue
		}
		// One read of the user's requests serves the open-request, scheduled-return and
		// recorded-access checks below.
		history, err := s.st.ByTarget(ctx, u.ID)
		if err != nil {
			return approval.Request{}, fmt.Errorf("look up the requests of user %d: %w", u.ID, err)
		}
		// Before the state checks: a redelivery of a command that already disabled the user must
		// stay silent, not report "already deactivated".
		if c.SourceKey != "" && slices.ContainsFunc(history, func(r approval.Request) bool { return r.SourceKey == c.SourceKey }) {
			return approval.Request{}, ErrRedelivered
		}
		switch {
		case c.Action == approval.Disable && !u.IsActive:
			problems = append(problems, refuse(AlreadyInactive, u.Email))
			continue
		case c.Action == approval.Enable && u.IsActive:
			problems = append(problems, refuse(AlreadyActive, u.Email))
			continue
		}
		if open := openRequestIn(history); open != "" {
			problems = append(problems, &Refusal{Code: OpenRequest, Subject: u.Email, Other: open})
			continue
		}
		if c.Action == approval.Enable {
			// Enabling now and letting the return run later would re-grant admin status and
			// groups that may have been changed in between.
			if ret, ok := scheduledReturnIn(history); ok {
				problems = append(problems, &Refusal{Code: ReturnPending, Subject: u.Email, Other: ret.ID, When: ret.NotBefore})
				continue
			}
		}
		t := approval.Target{UserID: u.ID, Email: u.Email, Name: u.Name(), Superuser: u.IsSuperuser,
			GroupIDs: u.Groups(), SSOSource: u.SSOSource, LastLogin: u.LastLogin, CollectionID: u.PersonalCollectionID}
		if c.Action == approval.Enable {
			t.Superuser, t.GroupIDs = false, nil
			if rec, ok := recordedAccessIn(history, u.ID); ok {
				t.Superuser, t.GroupIDs, t.Restore = rec.Superuser, rec.GroupIDs, true
			}
		}
		if c.Action == approval.Disable && u.IsSuperuser {
			required = max(required, s.policy.AdminRequiredApprovals)
		}
		targets = append(targets, t)
	}
	if len(problems) > 0 {
		return approval.Request{}, &Refusals{Items: problems, Validated: true}
	}
	if c.Action == approval.Disable {
		if err := s.lastAdminCheck(ctx, targets); err != nil {
			return approval.Request{}, err
		}
	}
	return approval.Request{
		ID: newRequestID(), SourceKey: c.SourceKey, Action: c.Action, State: approval.Pending,
		Requester: c.Requester, Targets: targets, Reason: c.Reason, ReturnAt: returnAt,
		ChannelID: c.Channel, RequiredApprovals: required,
		CreatedAt: now, ExpiresAt: now.Add(s.policy.RequestTTL), FinalReminder: s.finalReminder(),
		DryRun: s.policy.DryRun,
	}, nil
}

// finalReminder keeps the second reminder inside short lifetimes (tests, tight TTLs).
func (s validator) finalReminder() time.Duration {
	return min(s.policy.FinalReminder, s.policy.RequestTTL/10)
}

// resolve looks a target up in Metabase, through the chat's profile email for a mention.
func (s validator) resolve(ctx context.Context, ref TargetRef) (*metabase.User, error) {
	switch ref.Kind {
	case ByID:
		u, err := s.mb.User(ctx, ref.ID)
		if errors.Is(err, metabase.ErrNotFound) {
			return nil, refuse(UnknownUserID, ref.Raw)
		}
		return u, err
	case ByChatUser:
		email, err := s.dir.Email(ctx, ref.ChatUser)
		if err != nil {
			return nil, err
		}
		u, err := s.mb.UserByEmail(ctx, email)
		if errors.Is(err, metabase.ErrNotFound) {
			return nil, &Refusal{Code: ChatEmailNoAccount, Subject: ref.ChatUser, Other: email}
		}
		return u, err
	default:
		u, err := s.mb.UserByEmail(ctx, ref.Email)
		if errors.Is(err, metabase.ErrNotFound) {
			return nil, refuse(UnknownEmail, ref.Raw)
		}
		return u, err
	}
}

// Protected reports whether u may never be targeted: listed in the policy by email or id, or the
// bot's own Metabase account (disabling it would lock the bot out).
func (s *Service) Protected(u metabase.User) bool {
	if s.policy.BotMetabaseUserID != 0 && u.ID == s.policy.BotMetabaseUserID {
		return true
	}
	for _, p := range s.policy.ProtectedUsers {
		p = strings.TrimSpace(p)
		if strings.EqualFold(p, u.Email) || p == strconv.Itoa(u.ID) {
			return true
		}
	}
	return false
}

// openRequestIn returns the id of an open request among a user's requests, so the same person is
// not asked about twice at once.
func openRequestIn(rs []approval.Request) string {
	for _, r := range rs {
		if r.State.Open() && r.ParentID == "" {
			return r.ID
		}
	}
	return ""
}

// scheduledReturnIn returns the automatic return from leave among a user's requests, if any.
func scheduledReturnIn(rs []approval.Request) (approval.Request, bool) {
	for _, r := range rs {
		if r.State == approval.Scheduled && r.ParentID != "" {
			return r, true
		}
	}
	return approval.Request{}, false
}

// recordedAccessIn finds, among a user's requests (newest first), what the bot recorded when it
// last disabled the user: Metabase's reactivation resets is_superuser, so an enable restores this.
func recordedAccessIn(rs []approval.Request, userID int) (approval.Target, bool) {
	for _, r := range rs { // newest first
		if r.Action != approval.Disable || (r.State != approval.Succeeded && r.State != approval.Partial) || r.DryRun {
			continue
		}
		for _, t := range r.Targets {
			if t.UserID == userID && t.Result.Outcome == approval.Done {
				return t, true
			}
		}
	}
	return approval.Target{}, false
}

// lastAdminCheck refuses to deactivate every remaining active person who is a Metabase admin.
// Metabase itself refuses only when no active member of the Admin group would remain, and an API
// key in Administrators (the bot's own, usually) counts there; but a Metabase that only API keys
// can administer has nobody left to sign in and fix things, so the bot refuses earlier. GET
// /api/user lists people only, which is exactly the count wanted.
func (s validator) lastAdminCheck(ctx context.Context, targets []approval.Target) error {
	admins := 0
	for _, t := range targets {
		if t.Superuser {
			admins++
		}
	}
	if admins == 0 {
		return nil
	}
	active, err := s.mb.ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		return fmt.Errorf("count active admins: %w", err)
	}
	total := 0
	for _, u := range active {
		if u.IsSuperuser {
			total++
		}
	}
	if admins >= total {
		return refuse(LastAdmin, "")
	}
	return nil
}

// ParseReturnDate reads `until` values: a date means 00:00 in loc; an RFC 3339 time is taken as
// written. Past dates and dates further than maxAhead are refused.
func ParseReturnDate(s string, loc *time.Location, now time.Time, maxAhead time.Duration) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		t, err = time.Parse(time.RFC3339, s)
	}
	if err != nil {
		return time.Time{}, refuse(BadReturnDate, s)
	}
	if !t.After(now) {
		return time.Time{}, refuse(ReturnInPast, s)
	}
	if t.Sub(now) > maxAhead {
		return time.Time{}, &Refusal{Code: ReturnTooFar, Subject: s, N: int(t.Sub(now).Hours() / 24), Limit: int(maxAhead.Hours() / 24)}
	}
	return t, nil
}
