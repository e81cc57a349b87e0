package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// Directory answers the core's questions about people from Slack: approver and requester groups
// are read when asked, so a removal from a group takes effect at once, and a mention's email
// comes from the user's Slack profile. It implements access.Directory.
type Directory struct {
	// pacer spaces this process's group reads once Slack has rate limited them.
	pacer   *pacer
	api     slackAPI
	cfg     Config
	metrics *Metrics

	// mu guards last: each group's members as last read, which Home tabs are drawn from
	// (lastRead); decisions never use it.
	mu   sync.Mutex
	last map[string]groupRead
}

// groupRead is a user group's members and when they were read.
type groupRead struct {
	members []string
	at      time.Time
}

var _ access.Directory = (*Directory)(nil)

// NewDirectory returns the Slack directory for cfg.
func NewDirectory(cfg Config, api slackAPI) *Directory {
	cfg = cfg.withDefaults()
	return &Directory{api: api, cfg: cfg, metrics: cfg.Metrics, pacer: newPacer(), last: map[string]groupRead{}}
}

// IsApprover reads the approver group at decision time.
func (d *Directory) IsApprover(ctx context.Context, user string) (bool, error) {
	if slices.Contains(d.cfg.ApproverUsers, user) {
		return true, nil
	}
	if d.cfg.ApproverGroup == "" {
		return false, nil
	}
	members, err := d.groupMembers(ctx, d.cfg.ApproverGroup)
	if err != nil {
		return false, fmt.Errorf("read approver group: %w", err)
	}
	return slices.Contains(members, user), nil
}

// MayRequest applies ALLOWED_CHANNELS and REQUESTER_GROUP.
func (d *Directory) MayRequest(ctx context.Context, user, channel string) error {
	if len(d.cfg.AllowedChannels) > 0 && !slices.Contains(d.cfg.AllowedChannels, channel) {
		return &access.Refusal{Code: access.ChannelNotAllowed, Channels: d.cfg.AllowedChannels}
	}
	if d.cfg.RequesterGroup != "" {
		members, err := d.groupMembers(ctx, d.cfg.RequesterGroup)
		if err != nil {
			return fmt.Errorf("read requester group: %w", err)
		}
		if !slices.Contains(members, user) {
			return &access.Refusal{Code: access.NotInRequesterGroup, Subject: d.cfg.RequesterGroup}
		}
	}
	return nil
}

// Email reads a mentioned user's email from their Slack profile (users:read.email).
func (d *Directory) Email(ctx context.Context, user string) (string, error) {
	su, err := d.api.GetUserInfoContext(ctx, user)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "user_not_found" {
			return "", &access.Refusal{Code: access.UnknownChatUser, Subject: user}
		}
		return "", fmt.Errorf("users.info: %w", err)
	}
	if su.Profile.Email == "" {
		return "", &access.Refusal{Code: access.ChatUserNoEmail, Subject: user}
	}
	return su.Profile.Email, nil
}

// groupMembers reads a user group's members. usergroups.users.list is Tier 2 (about 20 calls a
// minute, docs/slack.md#rate-limits), and the groups are read at click time, so a busy moment can
// be refused with a Retry-After: the read waits as told, paced with the other reads of this
// process so they do not all retry at once, within ctx; the person waiting hears about the delay
// at once (see withDelayNotice) instead of seeing nothing.
func (d *Directory) groupMembers(ctx context.Context, group string) ([]string, error) {
	for {
		var members []string
		err := d.pacer.call(ctx, "usergroups.users.list", func() error {
			var err error
			members, err = d.api.GetUserGroupMembersContext(ctx, group)
			return err
		})
		if err == nil {
			d.mu.Lock()
			d.last[group] = groupRead{members: members, at: time.Now()}
			d.mu.Unlock()
			return members, nil
		}
		d.metrics.slackError("usergroups.users.list", err)
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || ctx.Err() != nil {
			return nil, err
		}
		wait, ok := d.pacer.reserveWait(ctx, "usergroups.users.list")
		if !ok {
			return nil, err // the next slot is past ctx's deadline
		}
		tellDelay(ctx, max(wait, rl.RetryAfter))
	}
}

// lastRead returns group's members as last read (by a decision, a command or a Home), and when;
// the zero time when it was never read.
func (d *Directory) lastRead(group string) ([]string, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.last[group]
	return r.members, r.at
}

type delayNoticeKey struct{}

// withDelayNotice makes a rate-limited group read under ctx call notify, once, with the wait
// Slack asked for, so the handler can tell the person who clicked or typed.
func withDelayNotice(ctx context.Context, notify func(time.Duration)) context.Context {
	var once sync.Once
	return context.WithValue(ctx, delayNoticeKey{}, func(d time.Duration) { once.Do(func() { notify(d) }) })
}

func tellDelay(ctx context.Context, d time.Duration) {
	if f, ok := ctx.Value(delayNoticeKey{}).(func(time.Duration)); ok {
		f(d)
	}
}
