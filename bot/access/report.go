package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
}

// Status looks a user up for requester, who must be allowed to request in channel: status shows
// admin rights, groups and open requests, so it follows the same rules.
func (s *Service) Status(ctx context.Context, requester, channel string, ref TargetRef) (Status, error) {
	if err := s.dir.MayRequest(ctx, requester, channel); err != nil {
		return Status{}, err
	}
	u, err := validator{s}.resolve(ctx, ref)
	if err != nil {
		return Status{}, err
	}
	st := Status{User: *u, Protected: s.Protected(*u)}
	rs, err := s.st.ByTarget(ctx, u.ID)
	if err != nil {
		st.HistoryErr = err
	}
	for _, r := range rs {
		if r.State == approval.Scheduled || r.State == approval.Pending || r.State == approval.Approved || r.State == approval.Executing {
			st.Open = append(st.Open, r)
		}
	}
	return st, nil
}

// Inactive lists, for requester in channel (requester rules apply: the list names people), the
// active users with no login for days, oldest first, and how many active users there are.
func (s *Service) Inactive(ctx context.Context, requester, channel string, days int) (inactive []metabase.User, active int, err error) {
	if err := s.dir.MayRequest(ctx, requester, channel); err != nil {
		return nil, 0, err
	}
	all, err := s.mb.ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		return nil, 0, err
	}
	return SelectInactive(all, s.now().AddDate(0, 0, -days), s.Protected), len(all), nil
}

// SubmitInactive turns the inactive report into one bulk disable, recomputing the list so it
// reflects Metabase at the moment of the request; Submit applies the requester rules. It returns the request and the number of
// users; zero users creates nothing.
func (s *Service) SubmitInactive(ctx context.Context, c ChangeRequest, days int) (approval.Request, int, error) {
	all, err := s.mb.ListUsers(ctx, metabase.StatusActive)
	if err != nil {
		return approval.Request{}, 0, fmt.Errorf("%w: %w", ErrListUsers, err)
	}
	users := SelectInactive(all, s.now().AddDate(0, 0, -days), s.Protected)
	if len(users) == 0 {
		return approval.Request{}, 0, nil
	}
	c.Action = approval.Disable
	c.Resolved = users
	c.Targets = make([]TargetRef, len(users))
	for i, u := range users {
		c.Targets[i] = TargetRef{Kind: ByID, ID: u.ID, Raw: u.Email}
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
