package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// status answers `status <user>` privately: the user's Metabase state and any open request or
// scheduled return.
func (b *Bot) status(ctx context.Context, sc slack.SlashCommand, cmd Command, log logrus.FieldLogger) {
	// Status shows admin rights, groups and open requests: the same people, in the same
	// channels, as may request.
	if err := b.mayRequest(ctx, sc.UserID, sc.ChannelID); err != nil {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, problemText(err))
		return
	}
	u, err := b.resolve(ctx, cmd.Targets[0])
	if err != nil {
		var p *problem
		if errors.As(err, &p) {
			b.ephemeral(ctx, sc.ChannelID, sc.UserID, p.msg)
			return
		}
		log.WithError(err).Error("Could not look a user up for status")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, "I could not look that user up: "+userMessage(err))
		return
	}
	state := "active"
	if !u.IsActive {
		state = "deactivated"
	}
	login := "never"
	if u.LastLogin != nil {
		login = slackDate(*u.LastLogin)
	}
	sso := "none (password)"
	if u.SSOSource != "" {
		sso = escape(u.SSOSource)
	}
	groups := make([]string, 0, len(u.Groups()))
	for _, g := range u.Groups() {
		groups = append(groups, strconv.Itoa(g))
	}
	lines := []string{
		fmt.Sprintf("*%s* · %s · Metabase id %d", escape(u.Name()), escape(u.Email), u.ID),
		"State: *" + state + "*",
		"Admin: " + yesNo(u.IsSuperuser),
		"Last login: " + login,
		"SSO: " + sso,
		"Groups: " + nonEmpty(strings.Join(groups, ", "), "none"),
	}
	if b.protected(*u) {
		lines = append(lines, "Protected: the bot never changes this account.")
	}
	rs, err := b.store.ByTarget(ctx, u.ID)
	if err != nil {
		log.WithError(err).Error("Could not read requests for status")
	}
	for _, r := range rs {
		switch r.State {
		case approval.Scheduled:
			lines = append(lines, fmt.Sprintf("Scheduled return: %s (request %s)", slackDate(r.NotBefore), r.ParentID))
		case approval.Pending, approval.Approved, approval.Executing:
			lines = append(lines, fmt.Sprintf("Open request: %s to %s, %s, requested by %s", r.ID, r.Action, stateWords(r), mention(r.Requester)))
		}
	}
	b.ephemeral(ctx, sc.ChannelID, sc.UserID, strings.Join(lines, "\n"))
}
