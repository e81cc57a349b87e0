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
	// Instance limits the ref to one Metabase instance (NAME:N, or --instance NAME); empty
	// looks in every instance (an id needs one when there are several).
	Instance string
}

// Key identifies the user a ref names, so the same user named twice counts once.
func (t TargetRef) Key() string {
	switch t.Kind {
	case ByEmail:
		return "e:" + t.Email
	case ByID:
		if t.Instance != "" {
			return "i:" + t.Instance + ":" + strconv.Itoa(t.ID)
		}
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
	// Resolved, when set, are the targets already looked up, each in its instance (the inactive
	// report's request).
	Resolved []InstanceUser
	// Handover, on a disable, hands over what the targets leave running (consequences.go).
	Handover *HandoverRequest
	// automatic marks a request the bot opens by itself (leavers.go), which no person makes: the
	// requester rules, which are about people, do not apply. Only the core can set it.
	automatic bool
	// requesterChecked says the requester rules were just applied (break-glass checks them
	// before asking whether the requester is a responder), so they are not read twice.
	requesterChecked bool
	// breakGlass marks a responder's `disable now` (breakglass.go): a target on leave, already
	// inactive, is taken rather than refused, so the action cancels the leave's return.
	breakGlass bool
	// RevokeKeys, on a disable, also deletes the API keys the card shows (revoke_exec.go).
	RevokeKeys bool
	// Unshare, on a disable, also removes the public links the card shows as the targets'.
	Unshare bool
}

// Submit validates c and, when everything holds, creates the request with its card, its target
// list and its audit event in one transaction. A refusal (*Refusal or *Refusals) creates nothing;
// ErrRedelivered means the same command already created a request.
func (s *Service) Submit(ctx context.Context, c ChangeRequest) (approval.Request, error) {
	// Everything here comes before the requester's answer (a card, or why there is none).
	ctx = s.replyCtx(ctx)
	r, err := s.Prepare(ctx, c)
	if err != nil {
		return r, err
	}
	return s.create(ctx, r)
}

// Prepare runs Submit's checks and returns the request Create would store, creating nothing: a
// form shows the problems next to its fields, then creates what it validated without looking
// every user up a second time.
//
// For a disable, the listing of what the targets leave running starts here, at the same time as
// the target lookup (prefetch.go), and Create uses it.
func (s *Service) Prepare(ctx context.Context, c ChangeRequest) (approval.Request, error) {
	return s.prepare(ctx, c, true)
}

// prepare is Prepare; with inventory false it reads nothing of what the targets leave running
// (a break-glass disable, where the disable comes first and needs only the user lookup).
func (s *Service) prepare(ctx context.Context, c ChangeRequest, inventory bool) (approval.Request, error) {
	var ls listings
	if inventory {
		ls = (lookups{s}).startListings(ctx, c)
	}
	r, err := validator{s}.build(ctx, c)
	if err != nil {
		return r, err
	}
	var counts *countRun
	var left chan map[int]*approval.Leftovers
	if r.Action == approval.Disable {
		if inventory {
			// Counting and what outlives the disable only read: they start as soon as the
			// targets are known, before the check that may still refuse the request, so the
			// card does not wait a round trip more for each.
			counts = (lookups{s}).startCounts(ctx, r)
			left = (lookups{s}).startLeftovers(ctx, r)
		}
		if err := (validator{s}).lastAdminCheck(ctx, r.Targets); err != nil {
			return approval.Request{}, err
		}
	}
	if r, err = (validator{s}).revokeOptions(c, r); err != nil {
		return r, err
	}
	if r, err = (validator{s}).extend(ctx, c, r); err != nil {
		return r, err
	}
	if inventory {
		(lookups{s}).keepPrefetch(r.ID, prefetched{ls: ls, counts: counts, left: left})
	}
	return r, nil
}

// Create stores a request Prepare returned, with its card, its target list and its audit event
// in one transaction, after looking up what its targets leave running (consequences.go).
// ErrRedelivered means the same command already created one.
func (s *Service) Create(ctx context.Context, r approval.Request) error {
	_, err := s.create(ctx, r)
	return err
}

// create is Create returning the request as stored, with what its card shows.
func (s *Service) create(ctx context.Context, r approval.Request) (approval.Request, error) {
	// What outlives the disable is looked up beside what the targets leave running, so the card
	// waits for the slower of the two, not their sum (revoke_lookup.go).
	left := (lookups{s}).prefetchedLeftovers(r.ID)
	if left == nil {
		left = (lookups{s}).startLeftovers(ctx, r)
	}
	r = (lookups{s}).lookUp(ctx, r)
	r = withLeftovers(r, <-left)
	if err := unshareRefusal(r); err != nil {
		return r, err
	}
	out := []store.Outbox{notice(ToCard, Event{Type: Requested, At: r.CreatedAt, Request: r})}
	if len(r.Targets) > 1 || ListsItems(r) {
		out = append(out, notice(ToThread, Event{Type: Requested, At: r.CreatedAt, Request: r}))
	}
	out = append(out, s.tell(Event{Type: Requested, Actor: r.Requester, At: r.CreatedAt, Request: r}, ToAudit)...)
	if err := s.st.CreateExclusive(s.replyCtx(ctx), r, out...); err != nil {
		return r, createError(r, err)
	}
	s.metrics.RequestCreated(r)
	s.kick()
	return r, nil
}

// emailOf names user as r's target does, or as typed in commands when r has no such target.
func emailOf(r approval.Request, user approval.UserKey) string {
	for _, t := range r.Targets {
		if t.Key() == user {
			return t.Email
		}
	}
	return user.String()
}

// createError is what a failed create of r means to the person who asked.
func createError(r approval.Request, err error) error {
	if errors.Is(err, store.ErrExists) {
		return ErrRedelivered
	}
	var oe *store.OpenRequestError
	if errors.As(err, &oe) {
		// Another request for the same person was made at the same moment: nothing created.
		return &Refusals{Items: []*Refusal{{Code: OpenRequest, Subject: emailOf(r, oe.User), Other: oe.RequestID}}, Validated: true}
	}
	return fmt.Errorf("%w: %w", ErrNotSaved, err)
}

// build checks who asks, where, and about whom, and returns the request to create.
func (s validator) build(ctx context.Context, c ChangeRequest) (approval.Request, error) {
	if !c.automatic && !c.requesterChecked {
		if err := s.dir.MayRequest(ctx, c.Requester, c.Channel); err != nil {
			return approval.Request{}, err
		}
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
	var fs []found
	if c.Resolved != nil {
		for _, iu := range c.Resolved {
			u := iu.User
			fs = append(fs, found{Instance: iu.Instance, User: &u, email: u.Email})
		}
	} else {
		var err error
		if fs, err = s.resolveAll(ctx, c.Targets); err != nil {
			return approval.Request{}, err
		}
	}
	var problems []*Refusal
	var supersedes []approval.Superseded
	var notes []approval.InstanceNote
	targets := make([]approval.Target, 0, len(fs))
	seen := map[approval.UserKey]bool{}
	// wanted counts, per ref, the instances where the change is to be made; a ref whose user is
	// in the wanted state everywhere is refused as with one instance.
	wanted := map[string]int{}
	var stateProblems []*Refusal
	required := s.policy.RequiredApprovals
	for _, f := range fs {
		if f.User == nil {
			switch {
			case f.Unreachable != nil && c.Action == approval.Disable:
				// The instance did not answer: the target is looked up again when the request
				// is executed, and a retry finishes what the first attempt could not.
				t := approval.Target{Instance: targetInstance(f.Instance), Email: f.email, Unresolved: true}
				if f.ref.Kind == ByID {
					t.UserID = f.ref.ID
				}
				targets = append(targets, t)
				wanted[f.ref.Key()]++
			case f.Unreachable != nil:
				notes = append(notes, approval.InstanceNote{Instance: f.Instance, Email: f.email, Note: "unreachable"})
			default:
				notes = append(notes, approval.InstanceNote{Instance: f.Instance, Email: f.email, Note: "not found"})
			}
			continue
		}
		u := *f.User
		key := approval.UserKey{Instance: f.Instance, ID: u.ID}
		if seen[key] {
			continue
		}
		seen[key] = true
		if rf := standingIn(s.Service, f.Instance, u, c.Action); rf != nil {
			problems = append(problems, rf)
			continue
		}
		// One read of the user's requests serves the open-request, scheduled-return and
		// recorded-access checks below.
		history, err := s.st.ByTarget(ctx, key)
		if err != nil {
			return approval.Request{}, fmt.Errorf("look up the requests of user %s: %w", key, err)
		}
		// Before the state checks: a redelivery of a command that already disabled the user must
		// stay silent, not report "already deactivated".
		if c.SourceKey != "" && slices.ContainsFunc(history, func(r approval.Request) bool { return r.SourceKey == c.SourceKey }) {
			return approval.Request{}, ErrRedelivered
		}
		_, onLeave := scheduledReturnIn(history)
		if rf := wantedState(u, c.Action); rf != nil && !(c.breakGlass && onLeave) {
			if s.in.multi() && c.Resolved == nil {
				// Already as wanted here, maybe not elsewhere: a note, unless it is so everywhere.
				notes = append(notes, approval.InstanceNote{Instance: f.Instance, Email: u.Email, Note: stateNote(c.Action)})
				stateProblems = append(stateProblems, rf)
				continue
			}
			problems = append(problems, rf)
			continue
		}
		wanted[f.ref.Key()]++
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
		t := approval.Target{Instance: targetInstance(f.Instance), UserID: u.ID, Email: u.Email, Name: u.Name(), Superuser: u.IsSuperuser,
			GroupIDs: u.Groups(), SSOSource: u.SSOSource, LastLogin: u.LastLogin, CollectionID: u.PersonalCollectionID}
		if c.Action == approval.Enable {
			t.Superuser, t.GroupIDs = false, nil
			if rec, ok := recordedAccessIn(history, key); ok && rec.Superuser {
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
	for _, rf := range stateProblems {
		// A user in the wanted state in every instance where they were found is refused as
		// before; a note does for one who is to be changed somewhere else.
		if !slices.ContainsFunc(fs, func(f found) bool {
			return f.User != nil && strings.EqualFold(f.User.Email, rf.Subject) && wanted[f.ref.Key()] > 0
		}) && !slices.ContainsFunc(problems, func(p *Refusal) bool { return p.Subject == rf.Subject && p.Code == rf.Code }) {
			problems = append(problems, rf)
		}
	}
	if len(problems) > 0 {
		return approval.Request{}, &Refusals{Items: problems, Validated: true}
	}
	// The last-admin check of a disable runs in Prepare, at the same time as the personal
	// collection counts.
	var looked []string
	if s.in.multi() {
		looked = s.in.names()
		if c.Resolved == nil && len(c.Targets) > 0 && !slices.ContainsFunc(c.Targets, func(t TargetRef) bool { return t.Instance == "" }) {
			// Every user named their instance (NAME:N, --instance): those are all it looked in.
			looked = slices.DeleteFunc(looked, func(name string) bool {
				return !slices.ContainsFunc(c.Targets, func(t TargetRef) bool { return t.Instance == name })
			})
		}
	}
	return approval.Request{
		Instances: looked, Notes: notes,
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
		u, err := targetUser(ctx, s.in.mb(t.InstanceName()), t)
		if errors.Is(err, metabase.ErrNotFound) {
			if t.Unresolved {
				continue // not there after all: the execution skips it
			}
			problems = append(problems, refuse(UserGone, t.Email))
			continue
		}
		if err != nil {
			return err
		}
		if t.Unresolved {
			continue // first seen now: the execution checks it as it acts
		}
		if rf := standingIn(s.Service, t.InstanceName(), *u, r.Action); rf != nil {
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
		history, err := s.st.ByTarget(ctx, t.Key())
		if err != nil {
			return fmt.Errorf("look up the requests of user %s: %w", t.Key(), err)
		}
		if rf := conflicts(*u, r.Action, history, r.ID); rf != nil && r.ParentID == "" {
			problems = append(problems, rf)
			continue
		}
		if r.Action == approval.Enable {
			if later, ok := disabledSince(history, t.Key(), r.CreatedAt); ok {
				// Re-enabling now would undo a later, separately approved disable.
				problems = append(problems, &Refusal{Code: DisabledSince, Subject: t.Email, Other: later})
				continue
			}
		}
		if r.Action == approval.Disable && u.IsSuperuser && u.IsActive {
			admins = append(admins, approval.Target{Instance: t.Instance, UserID: u.ID, Superuser: true})
		}
	}
	if len(problems) > 0 {
		return &Refusals{Items: problems, Validated: true, Retry: true}
	}
	return s.lastAdminCheck(ctx, admins)
}

// disabledSince returns a disable of user, made after since, that took effect: a retry of an
// older enable must not undo it.
func disabledSince(history []approval.Request, user approval.UserKey, since time.Time) (string, bool) {
	for _, h := range history {
		if h.Action != approval.Disable || h.DryRun || !h.CreatedAt.After(since) {
			continue
		}
		for _, t := range h.Targets {
			if t.Key() == user && t.Result.Outcome == approval.Done {
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

// Protected reports whether u, of the only (or default) instance, may never be targeted.
func (s *Service) Protected(u metabase.User) bool {
	return s.ProtectedIn(approval.DefaultInstance, u)
}

// ProtectedIn reports whether u of instance may never be targeted: listed in the policy by email
// (in every instance) or by id (NAME:N, or a bare N with one instance), or the bot's own account
// in that instance (disabling it would lock the bot out there).
func (s *Service) ProtectedIn(instance string, u metabase.User) bool {
	if in, ok := s.in.get(instance); ok && in.BotUserID != nil {
		if id := in.BotUserID(); id != 0 && u.ID == id {
			return true
		}
	}
	qualified := instance + ":" + strconv.Itoa(u.ID)
	for _, p := range s.policy.ProtectedUsers {
		p = strings.TrimSpace(p)
		if strings.EqualFold(p, u.Email) || p == qualified || (!s.in.multi() && p == strconv.Itoa(u.ID)) {
			return true
		}
	}
	return false
}

// stateNote is the card's word for a user already in the state action leads to.
func stateNote(action approval.Action) string {
	if action == approval.Enable {
		return "already active"
	}
	return "already inactive"
}

// standingIn refuses users the bot never changes, whatever the request: protected accounts and
// the users behind API keys.
func standingIn(s *Service, instance string, u metabase.User, action approval.Action) *Refusal {
	if s.ProtectedIn(instance, u) {
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
func recordedAccessIn(rs []approval.Request, user approval.UserKey) (approval.Target, bool) {
	for _, r := range rs { // newest first
		if (r.State != approval.Succeeded && r.State != approval.Partial) || r.DryRun {
			continue
		}
		for _, t := range r.Targets {
			if t.Key() != user || t.Result.Outcome != approval.Done {
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
//
// Each instance is counted on its own: every Metabase needs an admin who can sign in.
func (s validator) lastAdminCheck(ctx context.Context, targets []approval.Target) error {
	for _, g := range byInstance(targets, func(t approval.Target) bool { return t.Superuser }) {
		active, err := s.in.mb(g.name).ListUsers(ctx, metabase.StatusActive)
		if err != nil {
			return fmt.Errorf("count active admins: %w", err)
		}
		total := 0
		for _, u := range active {
			if u.IsSuperuser {
				total++
			}
		}
		if len(g.idx) >= total {
			if s.in.multi() {
				return refuse(LastAdmin, g.name)
			}
			return refuse(LastAdmin, "")
		}
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
