package access

import (
	"context"
	"errors"
	"fmt"
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
	// The watch rows as they stood before the listing: a row another check changed while this
	// one listed (a re-disable, a user seen inactive) is newer than this listing, which then
	// says nothing about that user; the next interval looks again. Versions, not clocks, so
	// replicas whose clocks disagree cannot mistake a stale listing for a new reactivation.
	before, err := s.watch.st.WatchRows(ctx, instance)
	if err != nil {
		return err
	}
	seen := make(map[int]int64, len(before))
	for _, w := range before {
		seen[w.UserID] = w.Version
	}
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
			if !ok || byUser[u.ID].Version != seen[u.ID] {
				continue
			}
			if err := s.found(ctx, e, u, byUser[u.ID], admins, listedAt); err != nil {
				s.log.WithError(err).WithFields(logrus.Fields{"instance": instance, "user_id": u.ID}).Error("Could not record a reactivation")
			}
		}
		for _, w := range rows {
			if e, ok := expected[w.UserID]; ok && e.basis == w.Basis && !isActive[w.UserID] && w.Version == seen[w.UserID] {
				if err := s.inactiveAgain(ctx, e, w, listedAt); err != nil {
					s.log.WithError(err).WithFields(logrus.Fields{"instance": instance, "user_id": w.UserID}).Error("Could not record a user inactive again")
				}
			}
		}
	}
	return s.watch.st.WatchChecked(ctx, instance, listedAt)
}

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
