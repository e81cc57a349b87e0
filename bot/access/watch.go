package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// The reactivation watch: a user the bot disabled can come back without anyone deciding it (a
// SCIM push, a JWT or SAML sign-in with user provisioning on, an admin's click in Metabase;
// docs/metabase.md#reactivation-watch). Every interval one replica lists each instance's active
// users once and compares them with the users the bot disabled and expects to stay disabled.

// ReactivationPolicy says what the bot does about a user found reactivated outside it.
type ReactivationPolicy string

// The policies (REACTIVATION_POLICY).
const (
	// ReactivationRequest reports the user and lets an approver open a request to disable them
	// again, or accept the reactivation.
	ReactivationRequest ReactivationPolicy = "request"
	// ReactivationDisable disables the user again at once (with a disable's checks), and reports it.
	ReactivationDisable ReactivationPolicy = "disable"
)

// Watch configures the reactivation watch.
type Watch struct {
	// Interval is how often each instance is checked; zero turns the watch off.
	Interval time.Duration
	// Policy is what happens to a user found reactivated; empty means ReactivationRequest.
	Policy ReactivationPolicy
	// WayBack gathers what bears on how a reactivated user most likely came back: what Metabase
	// shows of them and what is known of instance's sign-in and provisioning settings. Nil uses
	// the user's sso_source only (WayBackFromSSOSource); the instance facts learned at start-up
	// can take its place.
	WayBack func(instance string, u metabase.User) WayBack
}

// WayBack is what is known of how a reactivated user most likely came back; the chat side words it.
type WayBack struct {
	// SSOSource is the user's sso_source: "" for a password user, else e.g. "jwt", "saml", "scim".
	SSOSource string `json:"sso_source,omitempty"`
	// Settings are the instance's sign-in and provisioning settings that bear on it, by Metabase's
	// setting name (e.g. "jwt-user-provisioning-enabled?": "true"), when known.
	Settings map[string]string `json:"settings,omitempty"`
}

// WatchStore is the part of the store the watch needs; package store implements it. It is
// asserted when the watch is on, so stores of tests that do not watch need not implement it.
type WatchStore interface {
	ClaimWatch(ctx context.Context, instance, owner string, now time.Time, every time.Duration) (bool, error)
	WatchChecked(ctx context.Context, instance string, at time.Time) error
	WatchCheckedAt(ctx context.Context, instance string) (time.Time, error)
	WatchRows(ctx context.Context, instance string) ([]store.WatchRow, error)
	WatchRow(ctx context.Context, user approval.UserKey) (store.WatchRow, bool, error)
	PutWatchRow(ctx context.Context, w store.WatchRow, out ...store.Outbox) (bool, error)
	WatchCandidates(ctx context.Context) ([]approval.Request, error)
}

// Watch events: what the watch found and what people decided about it. Stored: never rename.
const (
	// Reactivated: a user the bot disabled was found active without the bot bringing them back
	// (Event.Watch says who, how, and whether the bot disabled them again).
	Reactivated EventType = "reactivated"
	// ReactivationAccepted: an approver chose to keep the reactivated user active.
	ReactivationAccepted EventType = "reactivation_accepted"
	// DisableAgainRequested: an approver opened a request to disable the user again (Event.By).
	DisableAgainRequested EventType = "disable_again_requested"
)

// Watch row states. Stored: never rename one.
const (
	// watchReported: the reactivation was reported and waits for an approver.
	watchReported = "reported"
	// watchAccepted: an approver kept the user active; the user is no longer watched.
	watchAccepted = "accepted"
	// watchDisabling: one replica is disabling the user again (REACTIVATION_POLICY=disable).
	watchDisabling = "disabling"
	// watchRedisabled: the bot disabled the user again; a later reactivation is a new finding.
	watchRedisabled = "redisabled"
	// watchRefused: a check refused to disable the user again; reported with Disable again.
	watchRefused = "refused"
	// watchInactive: a reported user was found inactive again (someone disabled them); a later
	// reactivation is a new finding.
	watchInactive = "inactive"
)

// staleDisabling is how long a replica may take to disable a user again before another one
// takes the finding over: longer than a Metabase call's worst case with retries.
const staleDisabling = 2 * time.Minute

// Finding is what the watch found about one user, kept on the watch row and carried by the
// events that tell of it.
type Finding struct {
	Instance string `json:"instance"`
	UserID   int    `json:"user_id"`
	Email    string `json:"email"`
	// RequestID is the disable whose thread the finding is reported in.
	RequestID string    `json:"request_id"`
	FoundAt   time.Time `json:"found_at"`
	// Superuser says the user is a Metabase admin now.
	Superuser bool   `json:"superuser,omitempty"`
	SSOSource string `json:"sso_source,omitempty"`
	// WayBack is what bears on how the user most likely came back (Watch.WayBack).
	WayBack WayBack `json:"way_back,omitzero"`
	// Count numbers the reactivations found since the disable (one, unless the bot disabled the
	// user again and they came back again).
	Count int `json:"count"`
	// DisabledAgain is when the bot disabled the user again automatically.
	DisabledAgain *time.Time `json:"disabled_again,omitempty"`
	// NotDisabledAgain is why a check refused to disable the user again.
	NotDisabledAgain string `json:"not_disabled_again,omitempty"`
	// AcceptedBy is the approver who kept the user active.
	AcceptedBy string    `json:"accepted_by,omitempty"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	// FollowUp is the request an approver opened with Disable again.
	FollowUp string `json:"follow_up,omitempty"`
	// Basis names the disable the finding is about (the watch row's basis).
	Basis string `json:"basis"`
}

// Key is the finding's user.
func (f Finding) Key() approval.UserKey { return approval.UserKey{Instance: f.Instance, ID: f.UserID} }

// WayBackFromSSOSource is the likely way back known from the user alone: their sso_source.
func WayBackFromSSOSource(_ string, u metabase.User) WayBack { return WayBack{SSOSource: u.SSOSource} }

// watching is the watch's state in a Service.
type watching struct {
	cfg Watch
	st  WatchStore
}

// newWatching checks cfg against the store.
func newWatching(cfg Watch, st Store) (watching, error) {
	if cfg.Interval == 0 {
		return watching{cfg: cfg}, nil
	}
	if cfg.Interval < 0 {
		return watching{}, fmt.Errorf("watch interval %s must not be negative", cfg.Interval)
	}
	switch cfg.Policy {
	case "":
		cfg.Policy = ReactivationRequest
	case ReactivationRequest, ReactivationDisable:
	default:
		return watching{}, fmt.Errorf("reactivation policy %q is neither %q nor %q", cfg.Policy, ReactivationRequest, ReactivationDisable)
	}
	if cfg.WayBack == nil {
		cfg.WayBack = WayBackFromSSOSource
	}
	ws, ok := st.(WatchStore)
	if !ok {
		return watching{}, errors.New("the store does not keep the reactivation watch")
	}
	return watching{cfg: cfg, st: ws}, nil
}

// watcher is the watch's view of the Service.
type watcher struct{ *Service }

// watchLoop checks every instance once per interval. Every replica polls; the store's claim
// (ClaimWatch) lets one of them check each instance per interval, and a missed interval (its
// claimer died) is claimed again at the next poll.
func (s watcher) watchLoop(ctx context.Context) {
	if s.watch.cfg.Interval <= 0 {
		return
	}
	t := time.NewTicker(max(s.watch.cfg.Interval/5, time.Millisecond))
	defer t.Stop()
	for {
		for _, name := range s.in.names() {
			s.maybeCheck(ctx, name)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maybeCheck checks instance when this replica wins the interval's claim.
func (s watcher) maybeCheck(ctx context.Context, instance string) {
	won, err := s.watch.st.ClaimWatch(ctx, instance, s.exec.InstanceID, s.now(), s.watch.cfg.Interval)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WithError(err).WithField("instance", instance).Error("Could not claim the reactivation watch")
		}
		return
	}
	if won {
		if err := s.Check(ctx, instance); err != nil && ctx.Err() == nil {
			s.log.WithError(err).WithField("instance", instance).Warn("The reactivation watch could not check an instance; the next interval tries again")
		}
	}
}

// expectation is a user the bot disabled and expects to stay disabled.
type expectation struct {
	req    approval.Request
	target approval.Target
	at     time.Time
	basis  string
}

// Check runs one check of instance: one listing of its active users, then who is expected
// disabled (read after the listing returned, so an enable that reactivated someone during the
// listing is already known), then a finding for each user in both.
func (s watcher) Check(ctx context.Context, instance string) error {
	// Taken before the listing, as the last-admin reservation wants: a reservation made since
	// may not show in it.
	listedAt := s.now()
	active, err := s.in.mb(instance).ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		return err
	}
	reqs, err := s.watch.st.WatchCandidates(ctx)
	if err != nil {
		return err
	}
	s.notePendingDisabledElsewhere(ctx, reqs, instance, active)
	expected := expectedDisabled(reqs, instance, s.now())
	if len(expected) > 0 {
		rows, err := s.watch.st.WatchRows(ctx, instance)
		if err != nil {
			return err
		}
		byUser := make(map[int]store.WatchRow, len(rows))
		for _, w := range rows {
			byUser[w.UserID] = w
		}
		var admins []int
		for _, u := range active {
			if u.IsSuperuser {
				admins = append(admins, u.ID)
			}
		}
		isActive := make(map[int]bool, len(active))
		for _, u := range active {
			isActive[u.ID] = true
			e, ok := expected[u.ID]
			if !ok {
				continue
			}
			if err := s.found(ctx, e, u, byUser[u.ID], admins, listedAt); err != nil {
				s.log.WithError(err).WithFields(logrus.Fields{"instance": instance, "user_id": u.ID}).Error("Could not record a reactivation")
			}
		}
		for _, w := range rows {
			if e, ok := expected[w.UserID]; ok && e.basis == w.Basis && !isActive[w.UserID] {
				if err := s.inactiveAgain(ctx, e, w, listedAt); err != nil {
					s.log.WithError(err).WithFields(logrus.Fields{"instance": instance, "user_id": w.UserID}).Error("Could not record a user inactive again")
				}
			}
		}
	}
	return s.watch.st.WatchChecked(ctx, instance, listedAt)
}

// notePendingDisabledElsewhere edits the card of each pending disable whose target of instance
// the listing no longer shows active: someone deactivated them in Metabase while it waited.
func (s watcher) notePendingDisabledElsewhere(ctx context.Context, reqs []approval.Request, instance string, active []metabase.User) {
	isActive := make(map[int]bool, len(active))
	for _, u := range active {
		isActive[u.ID] = true
	}
	for _, r := range reqs {
		if r.State != approval.Pending || r.Action != approval.Disable {
			continue
		}
		var gone []approval.UserKey
		for _, t := range r.Targets {
			noted := slices.ContainsFunc(r.DisabledElsewhere, func(e approval.Elsewhere) bool { return e.Key() == t.Key() })
			if t.InstanceName() == instance && !t.Unresolved && t.UserID != 0 && !isActive[t.UserID] && !noted {
				gone = append(gone, t.Key())
			}
		}
		if len(gone) == 0 {
			continue
		}
		_, err := s.st.Update(ctx, r.ID, func(r *approval.Request) ([]store.Outbox, error) {
			added, err := r.NoteDisabledElsewhere(gone, s.now())
			if err != nil {
				return nil, err
			}
			if len(added) == 0 {
				return nil, errNothingNew
			}
			return []store.Outbox{notice(ToCardUpdate, Event{Type: Requested, At: s.now(), Request: *r})}, nil
		})
		switch {
		case err == nil:
			s.kick()
		case errors.Is(err, errNothingNew), errors.Is(err, approval.ErrNotPending):
		default:
			s.log.WithError(err).WithField("request_id", r.ID).Error("Could not note a target deactivated by someone else on a pending card")
		}
	}
}

// errNothingNew leaves a request unchanged: what the watch found was noted already.
var errNothingNew = errors.New("nothing new")

// expectedDisabled derives, from the requests that ran, the users of instance the bot disabled
// for real and has not brought back: the newest done disable of each user, minus users with an
// enable (or a return) approved and not yet recorded, or recorded done since that disable.
func expectedDisabled(reqs []approval.Request, instance string, now time.Time) map[int]expectation {
	out := map[int]expectation{}
	for _, r := range reqs {
		if r.Action != approval.Disable || r.DryRun {
			continue
		}
		for _, t := range r.Targets {
			if t.InstanceName() != instance || t.Result.Outcome != approval.Done {
				continue
			}
			if cur, ok := out[t.UserID]; ok && !t.Result.At.After(cur.at) {
				continue
			}
			out[t.UserID] = expectation{req: r, target: t, at: t.Result.At,
				basis: r.ID + "@" + strconv.FormatInt(t.Result.At.UnixMilli(), 10)}
		}
	}
	for _, r := range reqs {
		if r.Action != approval.Enable || r.DryRun {
			continue
		}
		running := r.State == approval.Approved || r.State == approval.Executing ||
			(r.State == approval.Scheduled && !r.NotBefore.After(now))
		for _, t := range r.Targets {
			e, ok := out[t.UserID]
			if !ok || t.InstanceName() != instance {
				continue
			}
			back := (t.Result.Outcome == approval.Done || t.Result.Outcome == approval.Skipped) && !t.Result.At.Before(e.at)
			if running || back {
				delete(out, t.UserID)
			}
		}
	}
	return out
}

// found records that e's user is active. A reactivation is recorded (and reported) once: the
// watch row is written by compare-and-set, with the messages in the same transaction.
func (s watcher) found(ctx context.Context, e expectation, u metabase.User, row store.WatchRow, admins []int, listedAt time.Time) error {
	var prev Finding
	if row.Version > 0 && row.Basis == e.basis {
		if err := json.Unmarshal(row.Data, &prev); err != nil {
			return err
		}
		switch row.State {
		case watchRedisabled, watchInactive:
			// Disabled again (by the bot, or someone else), and back again: a new reactivation.
		case watchDisabling:
			if listedAt.Sub(prev.FoundAt) < staleDisabling {
				return nil
			}
			// The replica disabling them died: take the finding over.
			prev.Count--
		default:
			return nil
		}
	}
	f := Finding{Instance: e.target.InstanceName(), UserID: u.ID, Email: u.Email, RequestID: e.req.ID, FoundAt: listedAt,
		Superuser: u.IsSuperuser, SSOSource: u.SSOSource, WayBack: s.watch.cfg.WayBack(e.target.InstanceName(), u),
		Count: prev.Count + 1, Basis: e.basis}
	next := store.WatchRow{Instance: f.Instance, UserID: u.ID, Basis: e.basis, Version: row.Version}
	if s.watch.cfg.Policy != ReactivationDisable || s.policy.DryRun {
		next.State = watchReported
		_, err := s.putFinding(ctx, next, f, s.reactivatedEvent(e.req, f, ""))
		return err
	}
	// Claim the re-disable first, so one replica calls Metabase.
	next.State = watchDisabling
	won, err := s.putFinding(ctx, next, f)
	if err != nil || !won {
		return err
	}
	next.Version = row.Version + 1
	// The claim is spent: the DELETE and its report are finished even when the process is
	// stopping, within a bound shorter than the time after which another replica takes over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), staleDisabling/2)
	defer cancel()
	if why := s.disableAgain(ctx, e, u, admins, listedAt); why != "" {
		f.NotDisabledAgain = why
		next.State = watchRefused
	} else {
		at := s.now()
		f.DisabledAgain = &at
		next.State = watchRedisabled
	}
	_, err = s.putFinding(ctx, next, f, s.reactivatedEvent(e.req, f, ""))
	return err
}

// inactiveAgain settles the row of a user found reactivated who is inactive again: a reported
// user someone disabled since is watched afresh (their next reactivation is a new report), and
// a re-disable whose replica died after its DELETE took effect is reported as done.
func (s watcher) inactiveAgain(ctx context.Context, e expectation, w store.WatchRow, listedAt time.Time) error {
	var f Finding
	if err := json.Unmarshal(w.Data, &f); err != nil {
		return err
	}
	switch {
	case w.State == watchReported || w.State == watchRefused:
		w.State = watchInactive
		_, err := s.putFinding(ctx, w, f)
		return err
	case w.State == watchDisabling && listedAt.Sub(f.FoundAt) >= staleDisabling:
		at := listedAt
		f.DisabledAgain = &at
		w.State = watchRedisabled
		_, err := s.putFinding(ctx, w, f, s.reactivatedEvent(e.req, f, ""))
		return err
	}
	return nil
}

// disableAgain deactivates u again with the checks any disable gets: never a protected account,
// never the last admin who can sign in. It returns why it did not, or "". Nothing is recorded
// that an enable or a return would restore admin from: the original disable's record stands.
func (s watcher) disableAgain(ctx context.Context, e expectation, u metabase.User, admins []int, listedAt time.Time) string {
	instance := e.target.InstanceName()
	if s.ProtectedIn(instance, u) {
		return "protected: the bot never changes this account"
	}
	if u.IsSuperuser {
		ok, err := s.st.ReserveAdminDisable(ctx, e.req.ID, instance, u.ID, admins, listedAt)
		if err != nil {
			return FailureText(err)
		}
		if !ok {
			return LastAdminText
		}
	}
	if err := s.in.mb(instance).DisableUser(ctx, u.ID); err != nil {
		if isLastAdminRefusal(err) {
			return LastAdminText
		}
		return FailureText(err)
	}
	return ""
}

// reactivatedEvent is the report of f in the thread of req and the audit trail. The event's
// request names only f's user, so the audit record is about them alone.
func (s watcher) reactivatedEvent(req approval.Request, f Finding, actor string) []store.Outbox {
	return s.watchEvent(Reactivated, req, f, actor, "")
}

func (s *Service) watchEvent(typ EventType, req approval.Request, f Finding, actor, by string) []store.Outbox {
	r := req.Clone()
	r.Targets = nil
	for _, t := range req.Targets {
		if t.Key() == f.Key() {
			r.Targets = append(r.Targets, t)
		}
	}
	fc := f
	return s.tell(Event{Type: typ, Actor: actor, At: s.now(), By: by, Request: r, Watch: &fc}, ToThread, ToAudit)
}

// putFinding stores f on row next with out, and reports whether this replica won.
func (s *Service) putFinding(ctx context.Context, next store.WatchRow, f Finding, out ...[]store.Outbox) (bool, error) {
	data, err := json.Marshal(f)
	if err != nil {
		return false, err
	}
	next.Data = data
	var rows []store.Outbox
	for _, o := range out {
		rows = append(rows, o...)
	}
	won, err := s.watch.st.PutWatchRow(ctx, next, rows...)
	if won && len(rows) > 0 {
		s.kick()
	}
	return won, err
}

// finding reads the watch row of user about basis, refusing when it is gone or about another
// disable (the button is from an older report).
func (s *Service) finding(ctx context.Context, user approval.UserKey, basis string) (store.WatchRow, Finding, error) {
	if s.watch.st == nil {
		return store.WatchRow{}, Finding{}, &Refusal{Code: NoFinding, Subject: user.String()}
	}
	row, ok, err := s.watch.st.WatchRow(ctx, user)
	if err != nil {
		return row, Finding{}, err
	}
	if !ok || row.Basis != basis {
		return row, Finding{}, &Refusal{Code: NoFinding, Subject: user.String()}
	}
	var f Finding
	if err := json.Unmarshal(row.Data, &f); err != nil {
		return row, f, err
	}
	return row, f, nil
}

// NoFinding: a button of a reactivation report that no longer applies (decided already, or the
// user was disabled again since).
const NoFinding Code = "no_finding"

// KeepActive is an approver's decision to keep a reactivated user active: the watch stops
// reporting them until the bot disables them again. Others are refused.
func (s *Service) KeepActive(ctx context.Context, actor string, user approval.UserKey, basis string) (Finding, error) {
	if err := s.mustApprove(ctx, actor); err != nil {
		return Finding{}, err
	}
	row, f, err := s.finding(ctx, user, basis)
	if err != nil {
		return f, err
	}
	if row.State != watchReported && row.State != watchRefused {
		return f, &Refusal{Code: NoFinding, Subject: f.Email}
	}
	req, err := s.st.Get(ctx, f.RequestID)
	if err != nil {
		return f, err
	}
	f.AcceptedBy, f.AcceptedAt = actor, s.now()
	row.State = watchAccepted
	won, err := s.putFinding(ctx, row, f, s.watchEvent(ReactivationAccepted, req, f, actor, ""))
	if err == nil && !won {
		err = &Refusal{Code: NoFinding, Subject: f.Email}
	}
	return f, err
}

// DisableAgain is an approver's request to disable a reactivated user again: a normal disable
// request for that user, its card in the original request's channel, its reason naming the
// original, and the usual approval. Others are refused.
func (s *Service) DisableAgain(ctx context.Context, actor string, user approval.UserKey, basis string) (approval.Request, error) {
	if err := s.mustApprove(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	row, f, err := s.finding(ctx, user, basis)
	if err != nil {
		return approval.Request{}, err
	}
	if row.State != watchReported && row.State != watchRefused {
		return approval.Request{}, &Refusal{Code: NoFinding, Subject: f.Email}
	}
	if f.FollowUp != "" {
		// One request at a time: a second click while the first request is open is refused; once
		// it ended without disabling them (denied, expired), another may be opened.
		prev, err := s.st.Get(ctx, f.FollowUp)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return approval.Request{}, err
		}
		if err == nil && prev.State.Open() {
			return approval.Request{}, &Refusal{Code: OpenRequest, Subject: f.Email, Other: prev.ID}
		}
	}
	orig, err := s.st.Get(ctx, f.RequestID)
	if err != nil {
		return approval.Request{}, err
	}
	reason := fmt.Sprintf("Disable again: reactivated outside the bot after %s", orig.ID)
	if orig.Reason != "" {
		reason += " (" + orig.Reason + ")"
	}
	r, err := s.Submit(ctx, ChangeRequest{Action: approval.Disable, Reason: reason, Requester: actor, Channel: orig.ChannelID,
		SourceKey: fmt.Sprintf("watch:%s:%s:%d:%s", user, basis, f.Count, f.FollowUp),
		Targets:   []TargetRef{{Kind: ByID, ID: user.ID, Instance: user.Instance, Raw: f.Email}}})
	if err != nil {
		return r, err
	}
	f.FollowUp = r.ID
	if _, err := s.putFinding(ctx, row, f, s.watchEvent(DisableAgainRequested, orig, f, actor, r.ID)); err != nil {
		s.log.WithError(err).WithField("request_id", r.ID).Error("Could not note the follow-up request on the reactivation report")
	}
	return r, nil
}

// mustApprove refuses actor unless they are an approver.
func (s *Service) mustApprove(ctx context.Context, actor string) error {
	ok, err := s.dir.IsApprover(ctx, actor)
	if err != nil {
		return errors.Join(ErrDirectory, err)
	}
	if !ok {
		return refuse(NotApprover, actor)
	}
	return nil
}

// WatchStatus is what the watch knows of one user, for /metabase status.
type WatchStatus struct {
	// On says the watch runs.
	On bool
	// CheckedAt is when the user's instance was last checked (zero: never).
	CheckedAt time.Time
	// Finding is the newest thing the watch found about the user, nil for nothing.
	Finding *Finding
	// State is the finding's state: "reported", "accepted", "disabled again", "could not disable again".
	State string
}

// WatchStatusOf returns what the watch knows of user.
func (s *Service) WatchStatusOf(ctx context.Context, user approval.UserKey) (WatchStatus, error) {
	if s.watch.st == nil {
		return WatchStatus{}, nil
	}
	if user.Instance == "" {
		user.Instance = approval.DefaultInstance
	}
	at, err := s.watch.st.WatchCheckedAt(ctx, user.Instance)
	if err != nil {
		return WatchStatus{}, err
	}
	ws := WatchStatus{On: true, CheckedAt: at}
	row, ok, err := s.watch.st.WatchRow(ctx, user)
	if err != nil || !ok {
		return ws, err
	}
	var f Finding
	if err := json.Unmarshal(row.Data, &f); err != nil {
		return ws, err
	}
	ws.Finding = &f
	ws.State = map[string]string{watchReported: "reported", watchAccepted: "accepted", watchDisabling: "being disabled again",
		watchRedisabled: "disabled again", watchRefused: "could not disable again", watchInactive: "inactive again"}[row.State]
	return ws, nil
}

// watchStatus is WatchStatusOf for status, nil when the watch is off or could not be read (logged).
func (s *Service) watchStatus(ctx context.Context, user approval.UserKey) *WatchStatus {
	if s.watch.st == nil {
		return nil
	}
	ws, err := s.WatchStatusOf(ctx, user)
	if err != nil {
		s.log.WithError(err).Error("Could not read the reactivation watch for status")
		return nil
	}
	return &ws
}

// watchAuditName is the audit name of a watch event.
func watchAuditName(e Event) string {
	switch e.Type {
	case ReactivationAccepted:
		return "reactivation accepted"
	case DisableAgainRequested:
		return "disable again requested"
	}
	return "reactivated outside the bot"
}

// watchAuditDetail is what the audit log says about a watch event besides its name.
func watchAuditDetail(e Event) string {
	f := e.Watch
	switch e.Type {
	case ReactivationAccepted:
		return "reactivation accepted by " + e.Actor
	case DisableAgainRequested:
		return "request " + e.By
	}
	d := fmt.Sprintf("%s in %s, admin now: %t, sso_source: %q", f.Email, f.Instance, f.Superuser, f.WayBack.SSOSource)
	for _, k := range slices.Sorted(maps.Keys(f.WayBack.Settings)) {
		d += fmt.Sprintf(", %s: %s", k, f.WayBack.Settings[k])
	}
	switch {
	case f.DisabledAgain != nil:
		d += "; disabled again automatically"
	case f.NotDisabledAgain != "":
		d += "; could not disable again: " + f.NotDisabledAgain
	}
	return d
}
