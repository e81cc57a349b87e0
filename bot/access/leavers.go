package access

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// RequesterChatDeactivation is the requester of the disable requests the bot opens by itself
// when a chat account is deactivated. No chat user id looks like it, so nobody counts as the
// requester of such a request: any approver may approve it, and nobody may cancel it (a denial
// closes it).
const RequesterChatDeactivation = "chat-deactivation"

// ChatUsers records what the chat last reported of each account (package store implements it),
// so a deactivation is told apart from a later edit of the deactivated account.
type ChatUsers interface {
	// SeeChatUser records that user of team is deleted or not as of updated (the chat's own
	// timestamp of the change), and returns the number of the deactivation the account is in:
	// 0 while it is active; the same n for every report of one deactivation.
	SeeChatUser(ctx context.Context, team, user string, deleted bool, updated int64) (int, error)
}

// Leaver is a chat account in its Deactivation-th recorded deactivation, with its email.
type Leaver struct {
	Team, User, Email string
	Deactivation      int
}

// ErrNoAccount means a leaver has no active Metabase account the bot may disable: nothing to
// request.
var ErrNoAccount = errors.New("no active Metabase account with this email")

// errNoChatUsers is returned when the core was built without a record of chat accounts.
var errNoChatUsers = errors.New("access: no record of chat accounts (Deps.ChatUsers)")

// SeeChatUser records a change of a chat account and returns the number of the deactivation it
// is in (0 while active); see ChatUsers. It fails when the record cannot be written: the chat's
// event must then be delivered again rather than forgotten.
func (s *Service) SeeChatUser(ctx context.Context, team, user string, deleted bool, updated int64) (int, error) {
	if s.chatUsers == nil {
		return 0, errNoChatUsers
	}
	return s.chatUsers.SeeChatUser(ctx, team, user, deleted, updated)
}

// DisableLeaver opens one disable request, posted in channel with the usual approval, for the
// active Metabase accounts with l's email in every instance. It is keyed by the account and the
// deactivation's number, so the same deactivation seen again (redelivered, on another replica,
// or an edit of the deactivated account) creates nothing: ErrRedelivered. ErrNoAccount means no
// instance has an active account to disable; an instance that does not answer is an error, so
// the caller can have the event delivered again instead of deciding without it.
func (s *Service) DisableLeaver(ctx context.Context, l Leaver, channel, reason string) (approval.Request, error) {
	if l.Deactivation < 1 || strings.TrimSpace(l.Email) == "" {
		return approval.Request{}, ErrNoAccount
	}
	email := strings.ToLower(strings.TrimSpace(l.Email))
	fs, err := validator{s}.lookUpRef(ctx, TargetRef{Kind: ByEmail, Email: email, Raw: email})
	if IsRefusal(err) {
		return approval.Request{}, ErrNoAccount
	}
	if err != nil {
		return approval.Request{}, err
	}
	var users []InstanceUser
	for _, f := range fs {
		if f.Unreachable != nil {
			return approval.Request{}, fmt.Errorf("look up %s in %s: %w", email, f.Instance, f.Unreachable)
		}
		if f.User != nil && s.leaverTarget(f.Instance, *f.User) {
			users = append(users, InstanceUser{Instance: f.Instance, User: *f.User})
		}
	}
	if len(users) == 0 {
		return approval.Request{}, ErrNoAccount
	}
	c := ChangeRequest{Reason: reason, Requester: RequesterChatDeactivation, Channel: channel,
		SourceKey: fmt.Sprintf("deactivated:%s:%s:%d", l.Team, l.User, l.Deactivation), automatic: true}
	return s.submitResolved(ctx, c, users)
}

// leaverTarget reports whether u of instance is one the bot would disable for leaving: active,
// and neither protected nor an API key's user (those are refused whatever the request).
func (s *Service) leaverTarget(instance string, u metabase.User) bool {
	return u.IsActive && standingIn(s, instance, u, approval.Disable) == nil
}

// Leavers lists, for requester in channel (requester rules apply: the list names people), the
// active Metabase users, in every instance, whose email is one of emails (the chat accounts that
// are deactivated), with the instances that did not answer.
func (s *Service) Leavers(ctx context.Context, requester, channel string, emails []string) (leavers []InstanceUser, unreachable []string, err error) {
	if err := s.dir.MayRequest(ctx, requester, channel); err != nil {
		return nil, nil, err
	}
	all, unreachable, err := (lookups{s}).activeUsers(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.selectLeavers(all, emails), unreachable, nil
}

// SubmitLeavers turns the leavers report into one bulk disable, listing Metabase again so the
// request reflects the moment it is made; Submit applies the requester rules. It returns the
// request and the number of users; zero users creates nothing.
func (s *Service) SubmitLeavers(ctx context.Context, c ChangeRequest, emails []string) (approval.Request, int, error) {
	all, _, err := (lookups{s}).activeUsers(ctx)
	if err != nil {
		return approval.Request{}, 0, fmt.Errorf("%w: %w", ErrListUsers, err)
	}
	users := s.selectLeavers(all, emails)
	if len(users) == 0 {
		return approval.Request{}, 0, nil
	}
	r, err := s.submitResolved(ctx, c, users)
	return r, len(users), err
}

// selectLeavers keeps the users of all whose email (compared without case) is in emails and
// whom the bot would disable.
func (s *Service) selectLeavers(all []InstanceUser, emails []string) []InstanceUser {
	want := make(map[string]bool, len(emails))
	for _, e := range emails {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			want[e] = true
		}
	}
	var out []InstanceUser
	for _, iu := range all {
		if want[strings.ToLower(iu.User.Email)] && s.leaverTarget(iu.Instance, iu.User) {
			out = append(out, iu)
		}
	}
	return out
}

// submitResolved submits a disable of users, already looked up each in its instance.
func (s *Service) submitResolved(ctx context.Context, c ChangeRequest, users []InstanceUser) (approval.Request, error) {
	c.Action = approval.Disable
	c.Resolved = users
	c.Targets = make([]TargetRef, len(users))
	for i, u := range users {
		c.Targets[i] = TargetRef{Kind: ByID, ID: u.User.ID, Raw: u.User.Email, Instance: u.Instance}
	}
	return s.Submit(ctx, c)
}
