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
// A reply to a slash command or a click goes through its response_url, which works even where
// the bot is not a member; otherwise chat.postEphemeral, which needs the bot and the person in the
// channel (docs/slack.md#web-api-calls). Where it cannot reach them there, the reply goes to the
// person's direct messages with the bot, so it is never lost silently.
func (b *Bot) ephemeral(ctx context.Context, channel, user, text string, extra ...slack.MsgOption) {
	opts := append([]slack.MsgOption{slack.MsgOptionText(clip(text, 3900), false)}, extra...)
	if channel == "" {
		// A click on the Home tab: no channel to whisper in, so the person's messages with the bot.
		if _, _, err := b.slack.PostMessageContext(ctx, user, opts...); err != nil {
			b.cfg.Metrics.slackError("chat.postMessage", err)
			b.log.WithField("error_code", slackCode(err)).WithField("slack_user_id", user).Warn("Could not send a private reply")
		}
		return
	}
	if ru, ok := ctx.Value(replyURLKey{}).(replyURL); ok && ru.channel == channel && ru.user == user {
		_, _, err := b.slack.PostMessageContext(ctx, "", append(opts, slack.MsgOptionResponseURL(ru.url, slack.ResponseTypeEphemeral))...)
		if err == nil {
			return
		}
		// The error may quote the response_url, which lets anyone post to the channel: log the code only.
		b.log.WithField("error_code", slackCode(err)).Debug("Could not reply through response_url; trying chat.postEphemeral")
	}
	_, err := b.slack.PostEphemeralContext(ctx, channel, user, opts...)
	if err == nil {
		return
	}
	b.cfg.Metrics.slackError("chat.postEphemeral", err)
	log := b.log.WithError(err).WithFields(logrus.Fields{"channel_id": channel, "slack_user_id": user})
	switch slackCode(err) {
	case "not_in_channel", "channel_not_found", "user_not_in_channel":
		_, _, derr := b.slack.PostMessageContext(ctx, user, opts...)
		if derr == nil {
			log.Info("Sent a private reply as a direct message: the bot cannot post ephemerals in that channel")
			return
		}
		b.cfg.Metrics.slackError("chat.postMessage", derr)
		log = log.WithField("dm_error", slackCode(derr))
	}
	log.Warn("Could not send an ephemeral reply")
}
