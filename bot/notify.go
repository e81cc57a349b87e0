package bot

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Notifier delivers the core's notices to Slack: it words each event and posts it where its kind
// says (the card, its thread, the audit channel, the requester). It implements access.Notifier.
type Notifier struct {
	api   slackAPI
	pacer *pacer
	v     *view
	log   logrus.FieldLogger

	// changed, when set, is told of every request whose card was posted or updated (OnChange).
	changed atomic.Pointer[func(context.Context, approval.Request)]
}

var _ access.Notifier = (*Notifier)(nil)

// OnChange has f told, after each card posted or updated, of the request as delivered: the
// Home tabs that show it are refreshed from it (Bot.RequestChanged). A card notice is delivered
// for every change of a request, by whichever replica claims it.
func (n *Notifier) OnChange(f func(context.Context, approval.Request)) { n.changed.Store(&f) }

// NewNotifier returns the Slack notifier for cfg.
func NewNotifier(cfg Config, api slackAPI) *Notifier {
	cfg = cfg.withDefaults()
	return &Notifier{api: api, pacer: newPacer(), v: &view{cfg: cfg}, log: cfg.Log}
}

// Tell posts one notice. Errors come back as *access.DeliveryError when Slack's answer says how
// to treat them (rate limited, or permanent like not_in_channel).
func (n *Notifier) Tell(ctx context.Context, no access.Notice) (string, error) {
	posted, err := n.tell(ctx, no)
	if f := n.changed.Load(); f != nil && err == nil && (no.Kind == access.ToCard || no.Kind == access.ToCardUpdate) {
		(*f)(ctx, no.Request)
	}
	return posted, err
}

func (n *Notifier) tell(ctx context.Context, no access.Notice) (string, error) {
	r := no.Request
	switch no.Kind {
	case access.ToCard:
		_, ts, err := n.post(ctx, r.ChannelID,
			slack.MsgOptionText(n.v.cardText(r), false), slack.MsgOptionBlocks(n.v.renderCard(r)...))
		if err != nil {
			return "", n.failed("chat.postMessage", err)
		}
		return ts, nil
	case access.ToCardUpdate:
		if r.MessageTS == "" || r.ParentID != "" {
			return "", nil
		}
		err := n.pacer.call(ctx, "chat.update", func() error {
			_, _, _, err := n.api.UpdateMessageContext(ctx, r.ChannelID, r.MessageTS,
				slack.MsgOptionText(n.v.cardText(r), false), slack.MsgOptionBlocks(n.v.renderCard(r)...))
			return err
		})
		if err != nil {
			return "", n.failed("chat.update", err)
		}
	case access.ToThread:
		if r.MessageTS == "" {
			// The card never made it (it was dropped): a reply would land top-level in the
			// channel, out of context, so it goes to the log only.
			n.log.WithField("request_id", r.ID).Warn("Dropping a thread reply of a request without a card")
			return "", nil
		}
		for i, m := range n.v.threadMessages(no) {
			opts := []slack.MsgOption{slack.MsgOptionText(m.text, false), slack.MsgOptionTS(r.MessageTS)}
			blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(m.text), nil, nil)}
			switch {
			case m.actions != nil:
				blocks = append(blocks, m.actions)
			case len(m.buttons) > 0:
				blocks = append(blocks, threadButtons(r, m.buttons))
			}
			opts = append(opts, slack.MsgOptionBlocks(blocks...))
			post := n.post
			if i > 0 {
				// Earlier parts are posted already: retrying the whole notice would repeat them,
				// so a rate limit here is waited out in place.
				post = n.patientPost
			}
			if _, _, err := post(ctx, r.ChannelID, opts...); err != nil {
				return "", n.failed("chat.postMessage", err)
			}
		}
	case access.ToAudit:
		if n.v.cfg.AuditChannel == "" {
			return "", nil
		}
		if _, _, err := n.post(ctx, n.v.cfg.AuditChannel, slack.MsgOptionText(n.v.auditText(no), false)); err != nil {
			return "", n.failed("chat.postMessage", err)
		}
	case access.ToCheckpoint:
		return "", n.checkpoint(ctx, no.Checkpoint)
	case access.ToRequester:
		if no.Event == nil {
			return "", nil
		}
		if _, _, err := n.post(ctx, r.Requester, slack.MsgOptionText(n.v.requesterText(*no.Event), false)); err != nil {
			return "", n.failed("chat.postMessage", err)
		}
	default:
		n.log.WithField("outbox_kind", string(no.Kind)).Error("Dropping an outbox message of unknown kind")
	}
	return "", nil
}

// post is chat.postMessage into channel, paced once Slack has rate limited that channel.
func (n *Notifier) post(ctx context.Context, channel string, opts ...slack.MsgOption) (ch, ts string, err error) {
	err = n.pacer.call(ctx, "chat.postMessage:"+channel, func() error {
		var err error
		ch, ts, err = n.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ch, ts, err
}

// maxPatientWaits bounds how often patientPost waits out a rate limit.
const maxPatientWaits = 5

// patientPost is chat.postMessage that waits out rate limits (HTTP 429 with Retry-After, or
// rate_limited) within ctx, for the later parts of a notice posted in several messages.
func (n *Notifier) patientPost(ctx context.Context, channel string, opts ...slack.MsgOption) (string, string, error) {
	for waits := 0; ; waits++ {
		ch, ts, err := n.post(ctx, channel, opts...)
		if err == nil || !rateLimited(err) || waits == maxPatientWaits {
			return ch, ts, err
		}
		n.v.cfg.Metrics.slackError("chat.postMessage", err)
		wait := time.Second
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			wait = max(rl.RetryAfter, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ch, ts, err
		case <-t.C:
		}
	}
}

// rateLimited reports whether Slack asked the bot to slow down: HTTP 429 (Retry-After), or the
// ok:false codes rate_limited (chat.postMessage's documented error) and ratelimited
// (docs/slack.md#rate-limits).
func rateLimited(err error) bool {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return true
	}
	switch slackCode(err) {
	case "rate_limited", "ratelimited":
		return true
	}
	return false
}

// failed counts a Slack error and tells the core how to treat it.
func (n *Notifier) failed(method string, err error) error {
	n.v.cfg.Metrics.slackError(method, err)
	de := &access.DeliveryError{Err: fmt.Errorf("%w%s", err, slackHint(err)), Code: slackCode(err)}
	switch {
	case rateLimited(err):
		de.RetryAfter = retryAfter(err)
	case permanentSlackError(err):
		de.Permanent = true
	}
	return de
}

func threadButtons(r approval.Request, ids []string) slack.Block {
	var els []slack.BlockElement
	for _, id := range ids {
		var label string
		switch id {
		case actionRetry:
			label = "Retry failed"
		case actionCancelReturn:
			label = "Cancel automatic return"
		default:
			continue
		}
		btn := slack.NewButtonBlockElement(id, r.ID, plain(label))
		if id == actionCancelReturn {
			btn.Style = slack.StyleDanger
		}
		els = append(els, btn)
	}
	return slack.NewActionBlock(blockThreadActions, els...)
}

// slackCode is Slack's error code, for messages to people.
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return "error"
}

// permanentSlackError reports errors that retrying cannot fix; they are dropped with a hint.
func permanentSlackError(err error) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
		return false
	}
	return true
}

// SlackHint says what an operator should do about a Slack error, or "" when there is nothing
// specific to say. It is the one place that knows the fixes; start-up checks use it too.
func SlackHint(err error) string {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return ""
	}
	return hintForCode(se.Err, se.Needed)
}

func hintForCode(code, needed string) string {
	switch code {
	case "not_in_channel":
		return "invite the bot to the channel (/invite @metabase-bot)"
	case "channel_not_found":
		return "use the channel id (C…), and invite the bot to private channels"
	case "missing_scope":
		return fmt.Sprintf("add the bot scope %q to the Slack app and reinstall it", needed)
	case "invalid_auth", "not_authed", "token_revoked", "account_inactive":
		return "check SLACK_BOT_TOKEN: copy the Bot User OAuth Token after installing the app"
	case "no_such_subteam":
		return "use the user group id (S…) from the group's page"
	}
	return ""
}

// slackHint is SlackHint as a suffix for a sentence: ": <fix>" or "".
func slackHint(err error) string {
	if h := SlackHint(err); h != "" {
		return ": " + h
	}
	return ""
}
