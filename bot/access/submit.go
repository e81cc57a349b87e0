package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

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
	r, err := s.Prepare(ctx, c)
	if err != nil {
		return r, err
	}
	r = (lookups{s}).lookUp(ctx, r)
	return r, s.Create(ctx, r)
}

// Prepare runs Submit's checks and returns the request Create would store, creating nothing: a
// form shows the problems next to its fields, then creates what it validated without looking
// every user up a second time.
func (s *Service) Prepare(ctx context.Context, c ChangeRequest) (approval.Request, error) {
	r, err := validator{s}.build(ctx, c)
	if err != nil {
		return r, err
	}
	return validator{s}.extend(ctx, c, r)
}

// Create stores a request Prepare returned, with its card, its target list and its audit event
// in one transaction, after looking up what its targets leave running (consequences.go).
// ErrRedelivered means the same command already created one.
func (s *Service) Create(ctx context.Context, r approval.Request) error {
	r = (lookups{s}).lookUp(ctx, r)
	out := []store.Outbox{notice(ToCard, Event{Type: Requested, At: r.CreatedAt, Request: r})}
	if len(r.Targets) > 1 || ListsItems(r) {
		out = append(out, notice(ToThread, Event{Type: Requested, At: r.CreatedAt, Request: r}))
	}
	out = append(out, s.tell(Event{Type: Requested, Actor: r.Requester, At: r.CreatedAt, Request: r}, ToAudit)...)
	if err := s.st.Create(ctx, r, out...); err != nil {
		if errors.Is(err, store.ErrExists) {
			return ErrRedelivered
		}
		return fmt.Errorf("%w: %w", ErrNotSaved, err)
	}
	s.metrics.RequestCreated(r)
	s.kick()
	return nil
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
		var err error
		if users, err = s.resolveAll(ctx, c.Targets); err != nil {
			return approval.Request{}, err
		}
	}
	var problems []*Refusal
	var supersedes []approval.Superseded
	targets := make([]approval.Target, 0, len(users))
	seen := map[int]bool{}
	required := s.policy.RequiredApprovals
	for _, u := range users {
		if seen[u.ID] {
			continue
		}
		seen[u.ID] = true
		if rf := standing(s.Service, u, c.Action); rf != nil {
			problems = append(problems, rf)
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
		if rf := wantedState(u, c.Action); rf != nil {
			problems = append(problems, rf)
			continue
		}
		if rf := conflicts(u, c.Action, history, ""); rf != nil {
			problems = append(problems, rf)
			continue
		}
		if ret, ok := scheduledReturnIn(history); ok && c.Action == approval.Disable {
			// A disable during a leave (after an SSO login reactivated the user, say) replaces
			// the leave: its approval cancels the return, which would otherwise undo it.
			if !slices.ContainsFunc(supersedes, func(x approval.Superseded) bool { return x.ID == ret.ID }) {
				supersedes = append(supersedes, approval.Superseded{ID: ret.ID, At: ret.NotBefore})
			}
		}
		t := approval.Target{UserID: u.ID, Email: u.Email, Name: u.Name(), Superuser: u.IsSuperuser,
			GroupIDs: u.Groups(), SSOSource: u.SSOSource, LastLogin: u.LastLogin, CollectionID: u.PersonalCollectionID}
		if c.Action == approval.Enable {
			t.Superuser, t.GroupIDs = false, nil
			if rec, ok := recordedAccessIn(history, u.ID); ok && rec.Superuser {
				if rec.Stamp != "" && rec.Stamp == u.UpdatedAt {
					// Granting admin is at least as sensitive as removing it.
					t.Superuser, t.Restore, t.Stamp = true, true, rec.Stamp
					required = max(required, s.policy.AdminRequiredApprovals)
				} else {
					at := rec.Result.At
					t.NotRestored = &at
				}
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
		DryRun: s.policy.DryRun, Supersedes: supersedes,
	}, nil
}

// recheck validates the failed targets of r again, as a new request would be, before a retry
// acts on them: the approval was given for the moment it was given, and much may have changed.
// A target whose last attempt got no answer may be found in the wanted state already: the retry
// confirms it.
func (s validator) recheck(ctx context.Context, r approval.Request) error {
	var problems []*Refusal
	var admins []approval.Target
	for _, i := range r.PendingTargets() {
		t := r.Targets[i]
		u, err := s.mb.User(ctx, t.UserID)
		if errors.Is(err, metabase.ErrNotFound) {
			problems = append(problems, refuse(UserGone, t.Email))
			continue
		}
		if err != nil {
			return err
		}
		if rf := standing(s.Service, *u, r.Action); rf != nil {
			problems = append(problems, rf)
			continue
		}
		// A target whose hand-over failed after this request deactivated them is retried for
		// the hand-over: finding them inactive is expected.
		if !t.Unanswered && !(t.HandedOver != nil && t.HandedOver.UserDone) {
			if rf := wantedState(*u, r.Action); rf != nil {
				problems = append(problems, rf)
				continue
			}
		}
		history, err := s.st.ByTarget(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("look up the requests of user %d: %w", u.ID, err)
		}
		if rf := conflicts(*u, r.Action, history, r.ID); rf != nil && r.ParentID == "" {
			problems = append(problems, rf)
			continue
		}
		if r.Action == approval.Enable {
			if later, ok := disabledSince(history, u.ID, r.CreatedAt); ok {
				// Re-enabling now would undo a later, separately approved disable.
				problems = append(problems, &Refusal{Code: DisabledSince, Subject: t.Email, Other: later})
				continue
			}
		}
		if r.Action == approval.Disable && u.IsSuperuser && u.IsActive {
			admins = append(admins, approval.Target{UserID: u.ID, Superuser: true})
		}
	}
	if len(problems) > 0 {
		return &Refusals{Items: problems, Validated: true, Retry: true}
	}
	return s.lastAdminCheck(ctx, admins)
}

// disabledSince returns a disable of user, made after since, that took effect: a retry of an
// older enable must not undo it.
func disabledSince(history []approval.Request, user int, since time.Time) (string, bool) {
	for _, h := range history {
		if h.Action != approval.Disable || h.DryRun || !h.CreatedAt.After(since) {
			continue
		}
		for _, t := range h.Targets {
			if t.UserID == user && t.Result.Outcome == approval.Done {
				return h.ID, true
			}
		}
	}
	return "", false
}

// finalReminder keeps the second reminder inside short lifetimes (tests, tight TTLs).
func (s validator) finalReminder() time.Duration {
	return min(s.policy.FinalReminder, s.policy.RequestTTL/10)
}

// resolveAll looks every target up, several at once (BulkConcurrency), each once: a form naming
// thirty people must be answered within Slack's few seconds even when Metabase takes a tenth of a
// second per search. Refusals come back together, in the order the targets were named.
func (s validator) resolveAll(ctx context.Context, refs []TargetRef) ([]metabase.User, error) {
	users := make([]metabase.User, len(refs))
	problems := make([]*Refusal, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.exec.BulkConcurrency, 1))
	for i, ref := range refs {
		g.Go(func() error {
			u, err := s.resolve(gctx, ref)
			var rf *Refusal
			switch {
			case errors.As(err, &rf):
				problems[i] = rf
			case err != nil:
				return err
			default:
				users[i] = *u
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var refused []*Refusal
	for _, rf := range problems {
		if rf != nil {
			refused = append(refused, rf)
		}
	}
	if len(refused) > 0 {
		return nil, &Refusals{Items: refused}
	}
	return users, nil
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

// standing refuses users the bot never changes, whatever the request: protected accounts and
// the users behind API keys.
func standing(s *Service, u metabase.User, action approval.Action) *Refusal {
	if s.Protected(u) {
		return refuse(Protected, u.Email)
	}
	if u.IsAPIKey() {
		// Metabase answers a DELETE of an API key's user with success and changes nothing
		// (docs/metabase.md#api-key-users): reporting "disabled" would be a lie.
		return refuse(APIKeyUser, u.Email)
	}
	return nil
}

// wantedState refuses a user already in the state the action leads to.
func wantedState(u metabase.User, action approval.Action) *Refusal {
	switch {
	case action == approval.Disable && !u.IsActive:
		return refuse(AlreadyInactive, u.Email)
	case action == approval.Enable && u.IsActive:
		return refuse(AlreadyActive, u.Email)
	}
	return nil
}

// conflicts refuses a user who has another open request than self, or, for an enable, a
// scheduled return: enabling now and letting the return run later would re-grant admin status
// that may have been changed in between.
func conflicts(u metabase.User, action approval.Action, history []approval.Request, self string) *Refusal {
	if open := openRequestIn(history, self); open != "" {
		return &Refusal{Code: OpenRequest, Subject: u.Email, Other: open}
	}
	if ret, ok := scheduledReturnIn(history); ok && action == approval.Enable {
		return &Refusal{Code: ReturnPending, Subject: u.Email, Other: ret.ID, When: ret.NotBefore}
	}
	return nil
}

// openRequestIn returns the id of an open request among a user's requests other than self, so
// the same person is not asked about twice at once.
func openRequestIn(rs []approval.Request, self string) string {
	for _, r := range rs {
		if r.State.Open() && r.ParentID == "" && r.ID != self {
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
// last disabled the user, for an enable to restore: Metabase's reactivation resets is_superuser.
// A record counts only while it is the user's latest: once an enable or a return of that user
// has run, it was used, and whatever happened since is not the bot's to restore.
func recordedAccessIn(rs []approval.Request, userID int) (approval.Target, bool) {
	for _, r := range rs { // newest first
		if (r.State != approval.Succeeded && r.State != approval.Partial) || r.DryRun {
			continue
		}
		for _, t := range r.Targets {
			if t.UserID != userID || t.Result.Outcome != approval.Done {
				continue
			}
			if r.Action == approval.Enable {
				return approval.Target{}, false
			}
			return t, true
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
