package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// Status is what `status <user>` shows: the user as Metabase has them and the requests about
// them that are still open.
type Status struct {
	User      metabase.User
	Protected bool
	// Open are the user's open requests and scheduled returns, newest first.
	Open []approval.Request
	// HistoryErr is set when the requests could not be read; the user is still shown.
	HistoryErr error
	// Instance is where User is, when several instances are configured ("" otherwise).
	Instance string
	// Also is the user in each other instance where they were found, with several instances.
	Also []Status
	// Notes say where the user was not found, or which instance did not answer.
	Notes []approval.InstanceNote
	// Watch is what the reactivation watch knows of the user (watch.go); nil when it is off.
	Watch *WatchStatus
}

// Status looks a user up for requester, who must be allowed to request in channel: status shows
// admin rights, groups and open requests, so it follows the same rules.
func (s *Service) Status(ctx context.Context, requester, channel string, ref TargetRef) (Status, error) {
	ctx = s.replyCtx(ctx) // the answer waits for the store reads here
	if err := s.dir.MayRequest(ctx, requester, channel); err != nil {
		return Status{}, err
	}
	fs, err := validator{s}.lookUpRef(ctx, ref)
	if err != nil {
		return Status{}, err
	}
	var all []Status
	var notes []approval.InstanceNote
	for _, f := range fs {
		switch {
		case f.User != nil:
			all = append(all, (lookups{s}).statusIn(ctx, f.Instance, *f.User))
		case f.Unreachable != nil:
			notes = append(notes, approval.InstanceNote{Instance: f.Instance, Email: f.email, Note: "unreachable: " + FailureText(f.Unreachable)})
		default:
			notes = append(notes, approval.InstanceNote{Instance: f.Instance, Email: f.email, Note: "not found"})
		}
	}
	if len(all) == 0 {
		// Not found where answered, and the rest did not answer.
		for _, f := range fs {
			if f.Unreachable != nil {
				return Status{}, f.Unreachable
			}
		}
	}
	st := all[0]
	st.Also, st.Notes = all[1:], notes
	return st, nil
}

// statusIn is the status of u in one instance.
func (s lookups) statusIn(ctx context.Context, instance string, u metabase.User) Status {
	st := Status{User: u, Protected: s.ProtectedIn(instance, u)}
	if s.in.multi() {
		st.Instance = instance
	}
	rs, err := s.st.ByTarget(ctx, approval.UserKey{Instance: instance, ID: u.ID})
	if err != nil {
		st.HistoryErr = err
	}
	st.Watch = s.watchStatus(ctx, approval.UserKey{Instance: instance, ID: u.ID})
	for _, r := range rs {
		if r.State == approval.Scheduled || r.State == approval.Pending || r.State == approval.Approved || r.State == approval.Executing {
			st.Open = append(st.Open, r)
		}
	}
	return st
}

// activeUsers lists the active users of every instance at the same time, each with its
// instance, in configured order. An instance that does not answer fails the whole list, naming
// it: a report that silently left an instance out would look complete.
func (s lookups) activeUsers(ctx context.Context) ([]InstanceUser, []string, error) {
	lists := make([][]metabase.User, len(s.in.list))
	errs := make([]error, len(s.in.list))
	var wg sync.WaitGroup
	for i, in := range s.in.list {
		wg.Go(func() { lists[i], errs[i] = in.Metabase.ListUsers(ctx, metabase.StatusActive) })
	}
	wg.Wait()
	// An instance that does not answer leaves the others' report whole: it is named, not fatal,
	// unless none answered.
	var unreachable []string
	var firstErr error
	for i, err := range errs {
		if err != nil {
			unreachable = append(unreachable, s.in.list[i].Name)
			if firstErr == nil {
				firstErr = err
				if s.in.multi() {
					firstErr = fmt.Errorf("%s: %w", s.in.list[i].Name, err)
				}
			}
		}
	}
	if len(unreachable) == len(s.in.list) {
		return nil, nil, firstErr
	}
	var out []InstanceUser
	for i, us := range lists {
		for _, u := range us {
			out = append(out, InstanceUser{Instance: s.in.list[i].Name, User: u})
		}
	}
	return out, unreachable, nil
}

// selectInactive is SelectInactive over every instance, each user judged with their instance's
// protected list, oldest first.
func (s lookups) selectInactive(all []InstanceUser, cutoff time.Time) []InstanceUser {
	var out []InstanceUser
	for _, iu := range all {
		if len(SelectInactive([]metabase.User{iu.User}, cutoff, func(u metabase.User) bool { return s.ProtectedIn(iu.Instance, u) })) == 1 {
			out = append(out, iu)
		}
	}
	slices.SortStableFunc(out, func(a, b InstanceUser) int { return LastSeen(a.User).Compare(LastSeen(b.User)) })
	return out
}

// Inactive lists, for requester in channel (requester rules apply: the list names people), the
// active users with no login for days, oldest first, and how many active users there are.
func (s *Service) Inactive(ctx context.Context, requester, channel string, days int) (inactive []InstanceUser, active int, unreachable []string, err error) {
	if err := s.dir.MayRequest(ctx, requester, channel); err != nil {
		return nil, 0, nil, err
	}
	all, unreachable, err := (lookups{s}).activeUsers(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	return (lookups{s}).selectInactive(all, s.now().AddDate(0, 0, -days)), len(all), unreachable, nil
}

// SubmitInactive turns the inactive report into one bulk disable, recomputing the list so it
// reflects Metabase at the moment of the request; Submit applies the requester rules. It returns the request and the number of
// users; zero users creates nothing.
func (s *Service) SubmitInactive(ctx context.Context, c ChangeRequest, days int) (approval.Request, int, error) {
	all, _, err := (lookups{s}).activeUsers(ctx)
	if err != nil {
		return approval.Request{}, 0, fmt.Errorf("%w: %w", ErrListUsers, err)
	}
	users := (lookups{s}).selectInactive(all, s.now().AddDate(0, 0, -days))
	if len(users) == 0 {
		return approval.Request{}, 0, nil
	}
	c.Action = approval.Disable
	c.Resolved = users
	c.Targets = make([]TargetRef, len(users))
	for i, u := range users {
		c.Targets[i] = TargetRef{Kind: ByID, ID: u.User.ID, Raw: u.User.Email, Instance: u.Instance}
	}
	r, err := s.Submit(ctx, c)
	return r, len(users), err
}

// SelectInactive is the report's rule, apart from I/O so it can be tested and benchmarked: active
// users not protected whose last login (or join date, for those who never logged in) is before
// cutoff, oldest first.
func SelectInactive(all []metabase.User, cutoff time.Time, protected func(metabase.User) bool) []metabase.User {
	var out []metabase.User
	for _, u := range all {
		if !u.IsActive || protected(u) {
			continue
		}
		if seen := LastSeen(u); seen.Before(cutoff) {
			out = append(out, u)
		}
	}
	slices.SortStableFunc(out, func(a, b metabase.User) int { return LastSeen(a).Compare(LastSeen(b)) })
	return out
}

// LastSeen is the last login, or the join date for someone who never logged in.
func LastSeen(u metabase.User) time.Time {
	if u.LastLogin != nil {
		return *u.LastLogin
	}
	return u.DateJoined
}

// ErrListUsers wraps a failure to list Metabase users for a report or a clean-up request.
var ErrListUsers = errors.New("could not list Metabase users")
