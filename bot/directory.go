package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// Directory answers the core's questions about people from Slack: approver and requester groups
// are read when asked, so a removal from a group takes effect at once, and a mention's email
// comes from the user's Slack profile. It implements access.Directory.
type Directory struct {
	api     slackAPI
	cfg     Config
	metrics *Metrics
}

var _ access.Directory = (*Directory)(nil)

// NewDirectory returns the Slack directory for cfg.
func NewDirectory(cfg Config, api slackAPI) *Directory {
	cfg = cfg.withDefaults()
	return &Directory{api: api, cfg: cfg, metrics: cfg.Metrics}
}

// IsApprover reads the approver group at decision time.
func (d *Directory) IsApprover(ctx context.Context, user string) (bool, error) {
	if slices.Contains(d.cfg.ApproverUsers, user) {
		return true, nil
	}
	if d.cfg.ApproverGroup == "" {
		return false, nil
	}
	members, err := d.api.GetUserGroupMembersContext(ctx, d.cfg.ApproverGroup)
	if err != nil {
		d.metrics.slackError("usergroups.users.list", err)
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
		members, err := d.api.GetUserGroupMembersContext(ctx, d.cfg.RequesterGroup)
		if err != nil {
			d.metrics.slackError("usergroups.users.list", err)
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
