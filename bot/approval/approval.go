// Package approval is the lifecycle of a metabase-bot request, as pure values and transitions.
//
// A Request moves through an explicit state machine:
//
//	pending ──(quorum of approvals)──▶ approved ──▶ executing ──▶ succeeded | partial | failed
//	pending ──▶ denied | expired | cancelled
//	scheduled ──(return date reached)──▶ executing        (the automatic re-enable after a leave)
//	scheduled ──▶ cancelled
//	failed | partial ──(retry failed)──▶ approved
//
// Every transition is a method that returns an error and changes nothing when it refuses, so the
// durable store can apply one inside a compare-and-set: read the row, apply the transition to a
// copy, write it back only if nobody else wrote in between. Only the caller whose write wins
// performs the side effect (a Metabase call, a Slack message). Nothing here does I/O or knows
// about Slack; time comes in as an argument.
package approval

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// State is where a request is in its lifecycle.
type State string

// The states of a request. Their string values are stored in the database: never rename one.
const (
	// Pending waits for approvers.
	Pending State = "pending"
	// Approved reached its quorum and waits for an executor to pick it up.
	Approved State = "approved"
	// Scheduled is an approved action that waits for its NotBefore time (a return from leave).
	Scheduled State = "scheduled"
	// Executing is held by one executor, which is calling Metabase. A lease lets another
	// process take over when the holder died.
	Executing State = "executing"
	// Succeeded means every target ended done or skipped.
	Succeeded State = "succeeded"
	// Partial means some targets succeeded and some failed.
	Partial State = "partial"
	// Failed means every target failed.
	Failed State = "failed"
	// Denied was refused by an approver.
	Denied State = "denied"
	// Expired passed its deadline while pending.
	Expired State = "expired"
	// Cancelled was withdrawn: a pending request by its requester, a scheduled one by an approver.
	Cancelled State = "cancelled"
)

// String returns the stored name of the state.
func (s State) String() string { return string(s) }

// Final reports whether no further transition except a retry can leave the state.
func (s State) Final() bool {
	switch s {
	case Succeeded, Partial, Failed, Denied, Expired, Cancelled:
		return true
	}
	return false
}

// Open reports whether the request still waits for something: approvals, execution or its date.
func (s State) Open() bool {
	switch s {
	case Pending, Approved, Scheduled, Executing:
		return true
	}
	return false
}

// Valid reports whether s is one of the states above; the store refuses anything else.
func (s State) Valid() bool { return s.Open() || s.Final() }

// Action is what the request does to its targets once approved.
type Action string

// The actions. Stored in the database: never rename one.
const (
	// Disable deactivates the targets (DELETE /api/user/:id).
	Disable Action = "disable"
	// Enable reactivates the targets and restores what the bot recorded when it disabled them.
	Enable Action = "enable"
)

// Errors returned by transitions. Callers branch on them with errors.Is to choose what to tell
// the person who clicked.
var (
	// ErrNotPending: the request was already decided (or is not waiting for a decision).
	ErrNotPending = errors.New("request is no longer pending")
	// ErrExpired: the request's deadline has passed.
	ErrExpired = errors.New("request has expired")
	// ErrSelfApproval: the requester tried to approve their own request.
	ErrSelfApproval = errors.New("requesters cannot approve their own request")
	// ErrAlreadyVoted: the approver already approved; their vote counts once.
	ErrAlreadyVoted = errors.New("you already approved this request")
	// ErrNotRequester: only the requester may cancel a pending request.
	ErrNotRequester = errors.New("only the requester can cancel a pending request")
	// ErrNotDue: a scheduled action was started before its time, or an expiry before the deadline.
	ErrNotDue = errors.New("not due yet")
	// ErrLeaseHeld: another executor holds the request and its lease has not run out.
	ErrLeaseHeld = errors.New("another executor holds this request")
	// ErrNothingToRetry: there are no failed targets to retry.
	ErrNothingToRetry = errors.New("nothing to retry")
	// ErrInvalidTransition: the transition does not apply to the request's state.
	ErrInvalidTransition = errors.New("invalid transition")
	// ErrLeaseLost: the caller no longer holds the execution lease; another executor took the
	// request over (this one was presumed dead), or it already finished.
	ErrLeaseLost = errors.New("execution lease lost to another process")
	// ErrReturnRunning: the automatic return is being executed right now.
	ErrReturnRunning = errors.New("the automatic return is running")
	// ErrNotScheduled: the automatic return is no longer scheduled (it ran or was cancelled).
	ErrNotScheduled = errors.New("the automatic return is no longer scheduled")
)

// Target is one Metabase user named by a request, with what the bot saw when it was requested.
type Target struct {
	// Instance names the Metabase the user lives in; empty means DefaultInstance, so requests
	// stored before there could be several instances read as the one configured then.
	Instance string `json:"instance,omitempty"`
	// UserID is the Metabase user id, unique within Instance only.
	UserID int `json:"user_id"`
	// Email and Name are shown on cards and in audit messages.
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
	// Superuser records whether the user was a Metabase admin; an enable restores it, because
	// Metabase's reactivation resets is_superuser to false.
	Superuser bool `json:"superuser,omitempty"`
	// GroupIDs are the Metabase group memberships recorded before a disable. They are kept for the
	// record, not restored: Metabase keeps them through deactivation and reactivation.
	GroupIDs []int `json:"group_ids,omitempty"`
	// Restore, on an enable, says Superuser was recorded when the bot disabled this user and is
	// to be put back after reactivation, while Metabase still shows the user as the bot left
	// them (Stamp).
	Restore bool `json:"restore,omitempty"`
	// Stamp is Metabase's updated_at of the user right after the bot disabled them. Any change
	// in Metabase since (a demotion, a reactivation, a login) moves it, so a record whose stamp
	// no longer matches restores nothing.
	Stamp string `json:"stamp,omitempty"`
	// NotRestored, on an enable, is when the bot disabled a user who was an admin then, but whose
	// record cannot be trusted any more (changed in Metabase since): admin is not restored.
	NotRestored *time.Time `json:"not_restored,omitempty"`
	// SSOSource is non-empty when the user signs in through SSO (a warning on the card).
	SSOSource string `json:"sso_source,omitempty"`
	// LastLogin is when the user last signed in, nil for never.
	LastLogin *time.Time `json:"last_login,omitempty"`
	// Unanswered says the last attempt on this target sent its write but got no answer (a
	// timeout): Metabase may have applied it. A later attempt that finds the user in the wanted
	// state counts it as done, with what was recorded, rather than as skipped.
	Unanswered bool `json:"unanswered,omitempty"`
	// Result is what execution did to this target; empty until then.
	Result Result `json:"result,omitzero"`
	// CollectionID is the user's personal collection, when the lookup that found them said it
	// (Metabase's GET /api/user/:id does not), so counting its items needs no second lookup.
	CollectionID int `json:"collection_id,omitempty"`
	// Consequences is what the target leaves running in Metabase, looked up when the request
	// was made; nil when it was not looked up (enables, older requests).
	Consequences *Consequences `json:"consequences,omitempty"`
	// Leftovers is what outlives the disable (API keys, public links, secrets, sign-ins that
	// re-activate), looked up when the request was made; nil when it was not.
	Leftovers *Leftovers `json:"leftovers,omitempty"`
	// KeysRevoked is what an approved `revoke-keys` did for this target; nil until then.
	KeysRevoked *KeyRevocation `json:"keys_revoked,omitempty"`
	// LinksRemoved is what an approved `unshare` did for this target; nil until then.
	LinksRemoved *LinkRemoval `json:"links_removed,omitempty"`
	// HandedOver is what the request's hand-over did with those items; nil until then.
	HandedOver *HandoverResult `json:"handed_over,omitempty"`
	// Unresolved says Instance did not answer when the request was made: what the card shows is
	// not known, and a target named by email has no UserID yet. Execution looks the user up
	// again (Resolve records what it found).
	Unresolved bool `json:"unresolved,omitempty"`
}

// InstanceNote says why the user named Email is not a target in Instance.
type InstanceNote struct {
	Instance string `json:"instance"`
	Email    string `json:"email"`
	Note     string `json:"note"`
}

// DefaultInstance names the one Metabase of a single-instance configuration (METABASE_URL), in
// storage, audit records and metrics.
const DefaultInstance = "default"

// InstanceName returns the Metabase instance t lives in, DefaultInstance for a target stored
// without one.
func (t Target) InstanceName() string {
	if t.Instance == "" {
		return DefaultInstance
	}
	return t.Instance
}

// Key identifies t's user across instances: the same id in two instances is two people.
func (t Target) Key() UserKey { return UserKey{Instance: t.InstanceName(), ID: t.UserID} }

// UserKey is a Metabase user in one instance.
type UserKey struct {
	Instance string
	ID       int
}

// String is the user as typed in commands: "eu:42", or "42" in the default instance.
func (k UserKey) String() string {
	if k.Instance == "" || k.Instance == DefaultInstance {
		return strconv.Itoa(k.ID)
	}
	return k.Instance + ":" + strconv.Itoa(k.ID)
}

// Outcome is what execution did to one target.
type Outcome string

// Per-target outcomes.
const (
	// Done: the user was disabled (or enabled).
	Done Outcome = "done"
	// Skipped: the user was already in the wanted state.
	Skipped Outcome = "skipped"
	// TargetFailed: Metabase refused or could not be reached.
	TargetFailed Outcome = "failed"
)

// Result is the outcome for one target with Metabase's message when it failed.
type Result struct {
	Outcome Outcome   `json:"outcome,omitempty"`
	Message string    `json:"message,omitempty"`
	At      time.Time `json:"at,omitzero"`
	// Unanswered marks a failure where the write was sent and no answer came back.
	Unanswered bool `json:"unanswered,omitempty"`
}

// Vote is one approver's approval.
type Vote struct {
	UserID string    `json:"user_id"`
	At     time.Time `json:"at"`
}

// Request is one request to disable or enable Metabase users, from its creation to its outcome.
// It is a plain value: copy it, change the copy with a transition, store the copy.
type Request struct {
	// ID is the short public id shown on cards and in audit messages.
	ID string `json:"id"`
	// SourceKey makes creation idempotent: a redelivered slash command carries the same key
	// (its trigger id), and the store refuses a second request with it.
	SourceKey string `json:"source_key,omitempty"`
	// ParentID links a scheduled return to the disable that created it.
	ParentID string `json:"parent_id,omitempty"`
	Action   Action `json:"action"`
	State    State  `json:"state"`
	// Requester is the Slack user id of the person who asked; identity is never a display name.
	Requester string   `json:"requester"`
	Targets   []Target `json:"targets"`
	Reason    string   `json:"reason"`
	// ReturnAt, on a disable, is when the bot re-enables the targets.
	ReturnAt *time.Time `json:"return_at,omitempty"`
	// NotBefore, on a scheduled request, is when it may start.
	NotBefore time.Time `json:"not_before,omitzero"`
	// ChannelID and MessageTS locate the approval card; thread replies go under it.
	ChannelID string `json:"channel_id"`
	MessageTS string `json:"message_ts,omitempty"`
	// RequiredApprovals is the quorum, fixed when the request is created.
	RequiredApprovals int    `json:"required_approvals"`
	Approvals         []Vote `json:"approvals,omitempty"`
	// DecidedBy is the approver whose click decided the request (the last approval, or the denial).
	DecidedBy  string `json:"decided_by,omitempty"`
	DenyReason string `json:"deny_reason,omitempty"`
	// CancelledBy is who cancelled it.
	CancelledBy string    `json:"cancelled_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	// LeaseOwner and LeaseUntil name the executor working on it; past LeaseUntil another
	// process may take over (crash recovery).
	LeaseOwner string    `json:"lease_owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Attempts counts executions started, including takeovers.
	Attempts int `json:"attempts,omitempty"`
	// Recovering marks an execution taken over from a process that died while executing: a
	// target found already in the wanted state was most likely changed by that process.
	Recovering bool `json:"recovering,omitempty"`
	// RemindersSent counts reminders posted while pending (at half-life, then near expiry).
	RemindersSent int `json:"reminders_sent,omitempty"`
	// FinalReminder is how long before expiry the second reminder is due; zero turns reminders
	// off. It is fixed at creation so every replica agrees on when reminders are due.
	FinalReminder time.Duration `json:"final_reminder,omitempty"`
	// DryRun requests never call Metabase's write endpoints.
	DryRun bool `json:"dry_run,omitempty"`
	// Handover, on a disable or a hand-over, says who takes over what the targets leave running.
	Handover *Handover `json:"handover,omitempty"`
	// RevokeKeys: the approval also deletes the API keys the card showed for each target whose
	// updated_by is still the target when the execution re-reads them (`revoke-keys`).
	RevokeKeys bool `json:"revoke_keys,omitempty"`
	// Unshare: the approval also removes the public links the card showed as each target's
	// (`unshare`), each only while Metabase still names the target as its sharer.
	Unshare bool `json:"unshare,omitempty"`
	// Lookup says how the targets' Consequences were looked up; nil when they were not.
	Lookup *Lookup `json:"lookup,omitempty"`
	// Supersedes, on a disable, are the scheduled returns of earlier leaves of its targets: the
	// approval that executes this request cancels them, so a termination during a leave is never
	// undone by the leave's return.
	Supersedes []Superseded `json:"supersedes,omitempty"`
	// SupersededBy, on a cancelled return, is the request whose approval cancelled it.
	SupersededBy string `json:"superseded_by,omitempty"`
	// Notes, when several Metabase instances are configured, say where a named user is not a
	// target and why ("not found", "already inactive"), so the card accounts for every instance.
	Notes []InstanceNote `json:"instance_notes,omitempty"`
	// Instances, when several Metabase instances are configured, are the ones the request looked
	// its targets up in (one, for a request limited with --instance), so the card can say where a
	// user was not found. Nil in a single-instance configuration.
	Instances []string `json:"instances,omitempty"`
	// DisabledElsewhere, on a pending disable, are targets found deactivated in Metabase by
	// someone else while it waited (elsewhere.go).
	DisabledElsewhere []Elsewhere `json:"disabled_elsewhere,omitempty"`
	// BreakGlass, on a disable a responder ran at once, is its review (breakglass.go).
	BreakGlass *BreakGlass `json:"break_glass,omitempty"`
	// Version is the compare-and-set counter kept by the store.
	Version int64 `json:"version"`
}

// Superseded names a scheduled return that a new request will cancel, and when it was due.
type Superseded struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// Policy holds the rules that come from configuration.
type Policy struct {
	// AllowSelfApproval lets a requester approve their own request.
	AllowSelfApproval bool
}

// Clone returns a deep copy, so a transition on the copy never aliases the original's slices.
func (r Request) Clone() Request {
	c := r
	c.Targets = make([]Target, len(r.Targets))
	for i, t := range r.Targets {
		t.GroupIDs = slices.Clone(t.GroupIDs)
		if t.NotRestored != nil {
			nr := *t.NotRestored
			t.NotRestored = &nr
		}
		if t.LastLogin != nil {
			ll := *t.LastLogin
			t.LastLogin = &ll
		}
		t.Leftovers = t.Leftovers.clone()
		if t.KeysRevoked != nil {
			k := *t.KeysRevoked
			k.Revoked, k.NotRevoked = slices.Clone(k.Revoked), slices.Clone(k.NotRevoked)
			t.KeysRevoked = &k
		}
		if t.LinksRemoved != nil {
			l := *t.LinksRemoved
			l.Removed, l.NotRemoved = slices.Clone(l.Removed), slices.Clone(l.NotRemoved)
			t.LinksRemoved = &l
		}
		c.Targets[i] = t
	}
	c.Approvals = slices.Clone(r.Approvals)
	c.cloneHandover(r)
	c.Supersedes = slices.Clone(r.Supersedes)
	c.Instances = slices.Clone(r.Instances)
	c.Notes = slices.Clone(r.Notes)
	c.DisabledElsewhere = slices.Clone(r.DisabledElsewhere)
	c.BreakGlass = r.BreakGlass.clone()
	if r.ReturnAt != nil {
		ra := *r.ReturnAt
		c.ReturnAt = &ra
	}
	return c
}

// Approvers returns the user ids that have approved, in order.
func (r Request) Approvers() []string {
	ids := make([]string, len(r.Approvals))
	for i, v := range r.Approvals {
		ids[i] = v.UserID
	}
	return ids
}

// HasApproved reports whether user already approved.
func (r Request) HasApproved(user string) bool {
	return slices.ContainsFunc(r.Approvals, func(v Vote) bool { return v.UserID == user })
}

// Approve records user's approval and reports whether it reached the quorum. When it does, the
// request becomes Approved and the caller that stores this version is the one that must execute
// it. A second approval by the same user is ErrAlreadyVoted and changes nothing.
func (r *Request) Approve(user string, now time.Time, p Policy) (reached bool, err error) {
	if r.State != Pending {
		return false, fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	if !now.Before(r.ExpiresAt) {
		return false, ErrExpired
	}
	if user == r.Requester && !p.AllowSelfApproval {
		return false, ErrSelfApproval
	}
	if r.HasApproved(user) {
		return false, ErrAlreadyVoted
	}
	r.Approvals = append(r.Approvals, Vote{UserID: user, At: now})
	if len(r.Approvals) < max(r.RequiredApprovals, 1) {
		return false, nil
	}
	r.State = Approved
	r.DecidedBy = user
	r.DecidedAt = now
	return true, nil
}

// WithdrawVotes drops the approvals of users who may no longer approve, so a quorum is only
// reached with votes of current approvers. It returns the users whose votes it dropped.
func (r *Request) WithdrawVotes(users []string) ([]string, error) {
	if r.State != Pending {
		return nil, fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	var dropped []string
	r.Approvals = slices.DeleteFunc(r.Approvals, func(v Vote) bool {
		if slices.Contains(users, v.UserID) {
			dropped = append(dropped, v.UserID)
			return true
		}
		return false
	})
	return dropped, nil
}

// Deny ends a pending request; one denial from an approver is enough, whatever the quorum.
func (r *Request) Deny(user, reason string, now time.Time) error {
	if r.State != Pending {
		return fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	if !now.Before(r.ExpiresAt) {
		return ErrExpired
	}
	r.State = Denied
	r.DecidedBy = user
	r.DenyReason = reason
	r.DecidedAt = now
	return nil
}

// Cancel withdraws a pending request; only its requester may.
func (r *Request) Cancel(user string, now time.Time) error {
	if r.State != Pending {
		return fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	if user != r.Requester {
		return ErrNotRequester
	}
	r.State = Cancelled
	r.CancelledBy = user
	r.DecidedAt = now
	return nil
}

// CancelReturn cancels a scheduled return from leave, so its targets stay disabled. The caller
// checks that user is an approver: cancelling keeps access closed, which any approver may decide.
func (r *Request) CancelReturn(user string, now time.Time) error {
	if r.State != Scheduled {
		return fmt.Errorf("%w: it is %s", ErrNotScheduled, r.State)
	}
	r.State = Cancelled
	r.CancelledBy = user
	r.DecidedAt = now
	return nil
}

// Supersede takes the users of a later disable (request by) out of a scheduled return, so the
// return never undoes it, and cancels the return when nobody is left in it. It returns the
// targets it took out. A return already running cannot be superseded (ErrReturnRunning): the
// caller must not go ahead as if it had been.
func (r *Request) Supersede(by string, users []UserKey, now time.Time) ([]Target, error) {
	switch r.State {
	case Scheduled:
	case Executing, Approved:
		return nil, ErrReturnRunning
	default:
		return nil, fmt.Errorf("%w: it is %s", ErrNotScheduled, r.State)
	}
	var removed []Target
	r.Targets = slices.DeleteFunc(r.Targets, func(t Target) bool {
		if slices.Contains(users, t.Key()) {
			removed = append(removed, t)
			return true
		}
		return false
	})
	if len(r.Targets) == 0 {
		r.Targets = removed // a cancelled return still says whom it was for
		r.State = Cancelled
		r.SupersededBy = by
		r.DecidedAt = now
	}
	return removed, nil
}

// Withdraw cancels a pending request on the system's behalf, with nobody as the canceller: its
// card could not be shown, and a request nobody can see must not wait for approvers.
func (r *Request) Withdraw(now time.Time) error {
	if r.State != Pending {
		return fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	r.State = Cancelled
	r.DecidedAt = now
	return nil
}

// Expire ends a pending request whose deadline has passed.
func (r *Request) Expire(now time.Time) error {
	if r.State != Pending {
		return fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	if now.Before(r.ExpiresAt) {
		return ErrNotDue
	}
	r.State = Expired
	r.DecidedAt = now
	return nil
}

// Start hands the request to executor owner for lease. It applies to an Approved request, a
// Scheduled one whose time has come, and an Executing one whose previous holder's lease ran out
// (the holder died between winning and recording the outcome). Targets already done or skipped
// are kept, so a takeover or a retry only works on what is left.
func (r *Request) Start(owner string, now time.Time, lease time.Duration) error {
	switch r.State {
	case Approved:
	case Scheduled:
		if now.Before(r.NotBefore) {
			return ErrNotDue
		}
	case Executing:
		// A live lease means a live executor, even when it is this process: the timer reads
		// due requests from a snapshot, and the executor may have renewed the lease since.
		if now.Before(r.LeaseUntil) {
			return ErrLeaseHeld
		}
	default:
		return fmt.Errorf("%w: cannot execute a %s request", ErrInvalidTransition, r.State)
	}
	r.Recovering = r.State == Executing
	r.State = Executing
	r.LeaseOwner = owner
	r.LeaseUntil = now.Add(lease)
	r.Attempts++
	return nil
}

// RenewLease extends owner's execution lease. It fails with ErrLeaseLost when owner no longer
// holds the request, which tells a live executor to stop before it writes a user twice.
func (r *Request) RenewLease(owner string, now time.Time, lease time.Duration) error {
	if r.State != Executing || r.LeaseOwner != owner {
		return ErrLeaseLost
	}
	r.LeaseUntil = now.Add(lease)
	return nil
}

// PendingTargets returns the indexes of the targets that still need work.
func (r Request) PendingTargets() []int {
	var idx []int
	for i, t := range r.Targets {
		if t.Result.Outcome != Done && t.Result.Outcome != Skipped {
			idx = append(idx, i)
		}
	}
	return idx
}

// Counts tallies the targets' outcomes; a target without an outcome counts as failed, since
// a finished request that never reached it did not do it.
func (r Request) Counts() (done, skipped, failed int) {
	for _, t := range r.Targets {
		switch t.Result.Outcome {
		case Done:
			done++
		case Skipped:
			skipped++
		default:
			failed++
		}
	}
	return done, skipped, failed
}

// Before is what a target had in Metabase just before the bot changed it, and Metabase's
// updated_at of the user just after (Stamp), which tells later whether anything changed since.
type Before struct {
	Superuser bool
	GroupIDs  []int
	Stamp     string
	// UserID and Name, for an Unresolved target, are who execution found: the target is
	// resolved from then on.
	UserID int
	Name   string
}

// Record stores the outcome for target i while executing, so a takeover skips it. owner must
// hold the execution lease (ErrLeaseLost otherwise), and recording renews it. before, for a
// disable that was done, is what the user had: it is kept as what a later enable restores.
func (r *Request) Record(owner string, i int, res Result, before *Before, now time.Time, lease time.Duration) error {
	if err := r.RenewLease(owner, now, lease); err != nil {
		return err
	}
	if i < 0 || i >= len(r.Targets) {
		return fmt.Errorf("%w: no target %d", ErrInvalidTransition, i)
	}
	// What a disabled user had is what an enable restores; an attempt without an answer may
	// have disabled them, so it keeps what they had too.
	if before != nil && r.Action == Disable && (res.Outcome == Done || res.Unanswered) {
		r.Targets[i].Superuser = before.Superuser
		r.Targets[i].GroupIDs = slices.Clone(before.GroupIDs)
		r.Targets[i].Stamp = before.Stamp
	}
	if before != nil && before.UserID != 0 && r.Targets[i].Unresolved {
		r.Targets[i].UserID, r.Targets[i].Name, r.Targets[i].Unresolved = before.UserID, before.Name, false
	}
	r.Targets[i].Unanswered = res.Unanswered
	r.Targets[i].Result = res
	return nil
}

// MarkDryRun makes owner's execution a dry run: a process in dry run never writes to Metabase,
// whatever the request said when it was created, and its outcome must say so (and keep no access
// record and schedule no return from it).
func (r *Request) MarkDryRun(owner string) error {
	if r.State != Executing || r.LeaseOwner != owner {
		return ErrLeaseLost
	}
	r.DryRun = true
	return nil
}

// Finish closes owner's execution: Succeeded when every target is done or skipped, Failed when
// none is, Partial otherwise. A partial failure is never reported as wholly done or wholly failed.
func (r *Request) Finish(owner string, now time.Time) error {
	if r.State != Executing || r.LeaseOwner != owner {
		return ErrLeaseLost
	}
	done, skipped, failed := r.Counts()
	switch {
	case failed == 0:
		r.State = Succeeded
	case done+skipped == 0:
		r.State = Failed
	default:
		r.State = Partial
	}
	r.FinishedAt = now
	r.LeaseOwner = ""
	r.LeaseUntil = time.Time{}
	r.Recovering = false
	return nil
}

// Retry sends the failed targets of a Failed or Partial request back to execution. The caller
// checks that user is an approver.
func (r *Request) Retry(user string, now time.Time) error {
	if r.State != Failed && r.State != Partial {
		return fmt.Errorf("%w: cannot retry a %s request", ErrInvalidTransition, r.State)
	}
	if len(r.PendingTargets()) == 0 {
		return ErrNothingToRetry
	}
	for _, i := range r.PendingTargets() {
		r.Targets[i].Result = Result{}
	}
	r.State = Approved
	r.DecidedBy = user
	r.DecidedAt = now
	r.FinishedAt = time.Time{}
	return nil
}

// ReturnID is the id of the scheduled return created by a leave: being derived from the leave's
// id, creating it twice is refused by the store.
func ReturnID(parentID string) string { return parentID + "-R" }

// ReturnOf is the scheduled re-enable of a finished leave (a disable with a return date), for the
// targets the leave actually disabled, restoring what was recorded. It reports false when there is
// nothing to return: no date, a dry run, a return itself, or no target disabled.
func ReturnOf(leave Request, now time.Time) (Request, bool) {
	if leave.Action != Disable || leave.ReturnAt == nil || leave.DryRun || leave.ParentID != "" {
		return Request{}, false
	}
	var targets []Target
	for _, t := range leave.Targets {
		if t.Result.Outcome != Done {
			continue
		}
		targets = append(targets, Target{Instance: t.Instance, UserID: t.UserID, Email: t.Email, Name: t.Name,
			Superuser: t.Superuser, GroupIDs: slices.Clone(t.GroupIDs), Restore: t.Superuser, Stamp: t.Stamp, SSOSource: t.SSOSource})
		if t.KeysRevoked != nil {
			// Kept for the record, so the return can say the keys are not restored; an enable
			// never acts on it.
			targets[len(targets)-1].RecordKeysFrom(t.KeysRevoked)
		}
	}
	if len(targets) == 0 {
		return Request{}, false
	}
	return Request{
		ID: ReturnID(leave.ID), SourceKey: "return:" + leave.ID, ParentID: leave.ID,
		Action: Enable, State: Scheduled, Requester: leave.Requester,
		Targets: targets, Reason: "automatic return from leave: " + leave.Reason,
		NotBefore: *leave.ReturnAt, ChannelID: leave.ChannelID, MessageTS: leave.MessageTS,
		RequiredApprovals: leave.RequiredApprovals, Approvals: slices.Clone(leave.Approvals), DecidedBy: leave.DecidedBy,
		CreatedAt: now, ExpiresAt: *leave.ReturnAt, DecidedAt: now, Instances: slices.Clone(leave.Instances),
	}, true
}

// Extend adds to a scheduled return the targets of more it lacks (users a retry of the leave
// disabled after the return was scheduled), and returns those it added.
func (r *Request) Extend(more []Target) ([]Target, error) {
	if r.State != Scheduled {
		return nil, fmt.Errorf("%w: it is %s", ErrNotScheduled, r.State)
	}
	var added []Target
	for _, t := range more {
		if !slices.ContainsFunc(r.Targets, func(x Target) bool { return x.Key() == t.Key() }) {
			added = append(added, t)
		}
	}
	r.Targets = append(r.Targets, added...)
	return added, nil
}

// Remind counts one reminder if one is due now (see NextReminder). A late reminder, after the bot
// was down, also counts any later one already due, so approvers are pinged once rather than once
// per missed reminder; and a request never reminded that is already past its deadline gets none
// (it is to expire). A final reminder a timer tick late, just past the deadline, still goes out.
func (r *Request) Remind(now time.Time) error {
	next, ok := r.NextReminder()
	if !ok || now.Before(next) || (r.RemindersSent == 0 && !now.Before(r.ExpiresAt)) {
		return ErrNotDue
	}
	for ok && !now.Before(next) {
		r.RemindersSent++
		next, ok = r.NextReminder()
	}
	return nil
}

// NextReminder returns when the next reminder of a pending request is due: the first at half its
// lifetime, the second FinalReminder before it expires (skipped when that is not after the
// first). There are at most two, and none when FinalReminder is zero.
func (r Request) NextReminder() (time.Time, bool) {
	if r.State != Pending || r.FinalReminder <= 0 {
		return time.Time{}, false
	}
	half := r.CreatedAt.Add(r.ExpiresAt.Sub(r.CreatedAt) / 2)
	final := r.ExpiresAt.Add(-r.FinalReminder)
	switch r.RemindersSent {
	case 0:
		return half, true
	case 1:
		if final.After(half) {
			return final, true
		}
	}
	return time.Time{}, false
}

// NextDue returns when the request next needs attention from a timer without anyone clicking:
// expiry of a pending request, the start of an approved or scheduled one, or the end of an
// executor's lease, or the next reminder. The store indexes it so every replica can find due work
// with one indexed query.
func (r Request) NextDue() (time.Time, bool) {
	switch r.State {
	case Pending:
		if next, ok := r.NextReminder(); ok && next.Before(r.ExpiresAt) {
			return next, true
		}
		return r.ExpiresAt, true
	case Approved:
		return r.DecidedAt, true
	case Scheduled:
		return r.NotBefore, true
	case Executing:
		return r.LeaseUntil, true
	}
	return r.reviewDue()
}
