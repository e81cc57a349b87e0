package bot

import (
	"context"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
)

// replyURL is a slash command's response_url, carried in the context of its handler so every
// reply to that command can use it without threading it through each helper.
type replyURL struct{ channel, user, url string }

type replyURLKey struct{}

func withReplyURL(ctx context.Context, channel, user, url string) context.Context {
	if url == "" {
		return ctx
	}
	return context.WithValue(ctx, replyURLKey{}, replyURL{channel, user, url})
}

// ephemeral replies privately; delivery is best effort (Slack does not guarantee ephemerals).
// A reply to a slash command goes through its response_url, which works even where the bot is
// not a member (chat.postEphemeral answers not_in_channel there); chat.postEphemeral is the
// fallback.
func (b *Bot) ephemeral(ctx context.Context, channel, user, text string, extra ...slack.MsgOption) {
	opts := append([]slack.MsgOption{slack.MsgOptionText(clip(text, 3900), false)}, extra...)
	if ru, ok := ctx.Value(replyURLKey{}).(replyURL); ok && ru.channel == channel && ru.user == user {
		_, _, err := b.slack.PostMessageContext(ctx, "", append(opts, slack.MsgOptionResponseURL(ru.url, slack.ResponseTypeEphemeral))...)
		if err == nil {
			return
		}
		// The error may quote the response_url, which lets anyone post to the channel: log the code only.
		b.log.WithField("error_code", slackCode(err)).Debug("Could not reply through response_url; trying chat.postEphemeral")
	}
	_, err := b.slack.PostEphemeralContext(ctx, channel, user, opts...)
	if err != nil {
		b.cfg.Metrics.slackError("chat.postEphemeral", err)
		b.log.WithError(err).WithFields(logrus.Fields{"channel_id": channel, "slack_user_id": user}).Warn("Could not send an ephemeral reply")
	}
}
