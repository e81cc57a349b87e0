package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// Outbox kinds. Stored in the database: never rename one.
const (
	// kindCard posts the approval card and records its ts on the request.
	kindCard = "card"
	// kindCardUpdate re-renders the card from the request as it is when delivered.
	kindCardUpdate = "card_update"
	// kindThread replies in the card's thread.
	kindThread = "thread"
	// kindAudit posts a new message to the audit channel.
	kindAudit = "audit"
	// kindScheduleReturn creates the scheduled re-enable of a disable with a return date.
	kindScheduleReturn = "schedule_return"
)

const (
	// outboxBatch is how many rows one claim takes.
	outboxBatch = 50
	// outboxWorkers bounds concurrent deliveries of one batch.
	outboxWorkers = 8
	// maxDeliveryAttempts drops a message that keeps failing, so it cannot block its request's
	// later messages forever; the drop is logged at error level.
	maxDeliveryAttempts = 12
)

// message is an outbox payload. Texts are rendered when enqueued (they describe that moment);
// cards are rendered when delivered (they show the request's current state).
type message struct {
	Text string `json:"text,omitempty"`
	// Buttons are action ids shown under a thread reply; their value is the request id.
	Buttons []string `json:"buttons,omitempty"`
	// Event names the audit event, for logs.
	Event string `json:"event,omitempty"`
}

func outbox(requestID, kind string, m message) store.Outbox {
	p, _ := json.Marshal(m)
	return store.Outbox{RequestID: requestID, Kind: kind, Payload: p}
}

func thread(r approval.Request, text string, buttons ...string) store.Outbox {
	return outbox(r.ID, kindThread, message{Text: text, Buttons: buttons})
}

func cardUpdate(r approval.Request) store.Outbox { return outbox(r.ID, kindCardUpdate, message{}) }

// audit renders one append-only audit line: the event, the request id, the action and targets,
// the requester and the actor as mentions of their user ids, and any detail.
func (b *Bot) audit(r approval.Request, event, actor, detail string) store.Outbox {
	parts := []string{
		fmt.Sprintf(":memo: *%s* · request `%s`", event, r.ID),
		fmt.Sprintf("%s %s", r.Action, auditTargets(r)),
		"requester " + mention(r.Requester),
	}
	if actor != "" {
		parts = append(parts, "by "+mention(actor))
	}
	if detail != "" {
		parts = append(parts, detail)
	}
	if r.DryRun {
		parts = append(parts, "DRY RUN")
	}
	b.logEvent(r, event, actor)
	return outbox(r.ID, kindAudit, message{Text: clip(strings.Join(parts, " · "), maxSectionText), Event: event})
}

// logEvent writes the audit event to the structured log too.
func (b *Bot) logEvent(r approval.Request, event, actor string) {
	b.log.WithFields(logrus.Fields{
		"audit_event": event, "request_id": r.ID, "action": string(r.Action), "state": string(r.State),
		"targets": targetEmails(r), "requester": r.Requester, "actor": actor, "dry_run": r.DryRun,
	}).Info("Audit event")
}

func auditTargets(r approval.Request) string {
	const shown = 20
	var emails []string
	for i, t := range r.Targets {
		if i == shown {
			emails = append(emails, fmt.Sprintf("and %d more", len(r.Targets)-shown))
			break
		}
		emails = append(emails, escape(t.Email))
	}
	return strings.Join(emails, ", ")
}

// outboxLoop delivers outbox rows: at once when this process enqueued something, and on every
// tick for rows other replicas left or that wait for a retry.
func (b *Bot) outboxLoop(ctx context.Context) {
	t := time.NewTicker(min(b.cfg.Tick, 500*time.Millisecond))
	defer t.Stop()
	for {
		b.deliverOutbox(ctx)
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		case <-t.C:
		}
	}
}

// deliverOutbox delivers everything claimable now.
func (b *Bot) deliverOutbox(ctx context.Context) {
	for ctx.Err() == nil {
		rows, err := b.store.ClaimOutbox(ctx, b.cfg.InstanceID, b.now(), b.cfg.OutboxLease, outboxBatch)
		if err != nil {
			if ctx.Err() == nil {
				b.log.WithError(err).Error("Could not claim outbox messages")
			}
			return
		}
		if len(rows) == 0 {
			return
		}
		// A claim holds at most one row per request (a request's messages go out in order), so
		// the rows of one batch belong to different requests and can be sent concurrently.
		var wg sync.WaitGroup
		sem := make(chan struct{}, outboxWorkers)
		for _, row := range rows {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				b.deliverOne(ctx, row)
			}()
		}
		wg.Wait()
	}
}

// maxDeliveryTimeout bounds one delivery; it is also kept under half the outbox lease, so a
// delivery has given up before another process may claim the same row. A delivery runs detached
// from shutdown: once Slack may have accepted a message, recording that is worth finishing, or
// the row stays claimed and the message is sent again after the lease.
const maxDeliveryTimeout = 15 * time.Second

func (b *Bot) deliverOne(ctx context.Context, row store.Outbox) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(maxDeliveryTimeout, b.cfg.OutboxLease/2))
	defer cancel()
	log := b.log.WithFields(logrus.Fields{"request_id": row.RequestID, "outbox_id": row.ID, "outbox_kind": row.Kind})
	err := b.deliver(ctx, row)
	if err == nil {
		return
	}
	var rl *slack.RateLimitedError
	at := b.now().Add(backoff(row.Attempts))
	switch {
	case errors.As(err, &rl):
		at = b.now().Add(rl.RetryAfter)
		log.WithField("retry_after", rl.RetryAfter.String()).Warn("Slack rate limited a message; retrying after the delay it asked for")
	case permanentSlackError(err) || row.Attempts >= maxDeliveryAttempts:
		log.WithError(err).WithField("attempts", row.Attempts).Error("Dropping a Slack message that cannot be delivered" + slackHint(err))
		if row.Kind == kindCard {
			b.cardFailed(ctx, row, err, log)
			return
		}
		if cerr := b.store.CompleteOutbox(ctx, row.ID, b.cfg.InstanceID); cerr != nil {
			log.WithError(cerr).Warn("Could not mark a dropped message")
		}
		return
	default:
		log.WithError(err).WithField("attempts", row.Attempts).Warn("Could not deliver a Slack message; will retry")
	}
	if rerr := b.store.RetryOutbox(ctx, row.ID, b.cfg.InstanceID, at, err.Error()); rerr != nil {
		log.WithError(rerr).Warn("Could not schedule a retry")
	}
}

// cardFailed handles a card Slack will not take (most often: the bot is not in the channel). A
// request nobody can see must not wait for approvers, so it is cancelled, with an audit line like
// every other state change, and the requester is told by direct message what to fix. The card is
// dropped only after the cancellation is stored: a crash in between retries the card of a
// cancelled request, which never leaves it pending.
func (b *Bot) cardFailed(ctx context.Context, row store.Outbox, cause error, log logrus.FieldLogger) {
	r, err := b.store.Update(ctx, row.RequestID, func(r *approval.Request) ([]store.Outbox, error) {
		if r.State != approval.Pending {
			return nil, errNoChange
		}
		r.State = approval.Cancelled
		r.DecidedAt = b.now()
		return []store.Outbox{b.audit(*r, "cancelled", "", "card not posted: Slack said `"+slackCode(cause)+"`")}, nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		log.WithError(err).Warn("Could not cancel a request whose card failed")
		return
	}
	if cerr := b.store.CompleteOutbox(ctx, row.ID, b.cfg.InstanceID); cerr != nil {
		log.WithError(cerr).Warn("Could not mark a dropped card")
	}
	if err != nil {
		return // already decided or cancelled: nothing to tell
	}
	b.kick()
	text := fmt.Sprintf("I could not post the approval card for request %s in <#%s>: Slack said `%s`%s. The request was cancelled; nothing changed in Metabase.",
		r.ID, r.ChannelID, slackCode(cause), slackHint(cause))
	if _, _, err := b.slack.PostMessageContext(ctx, r.Requester, slack.MsgOptionText(text, false)); err != nil {
		b.cfg.Metrics.slackError("chat.postMessage", err)
		log.WithError(err).Warn("Could not tell the requester that the card failed")
	}
}

// slackCode is Slack's error code, for messages to people.
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return "error"
}

func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 6)
	return d/2 + rand.N(d/2+1)
}

// deliver sends one outbox row and marks it delivered.
func (b *Bot) deliver(ctx context.Context, row store.Outbox) error {
	var m message
	if err := json.Unmarshal(row.Payload, &m); err != nil {
		b.log.WithError(err).WithField("outbox_id", row.ID).Error("Dropping an unreadable outbox message")
		return b.store.CompleteOutbox(ctx, row.ID, b.cfg.InstanceID)
	}
	r, err := b.store.Get(ctx, row.RequestID)
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	owner := b.cfg.InstanceID
	switch row.Kind {
	case kindCard:
		if r.MessageTS != "" {
			return b.store.CompleteOutbox(ctx, row.ID, owner)
		}
		_, ts, err := b.slack.PostMessageContext(ctx, r.ChannelID,
			slack.MsgOptionText(b.cardText(r), false), slack.MsgOptionBlocks(b.renderCard(r)...))
		if err != nil {
			b.cfg.Metrics.slackError("chat.postMessage", err)
			return err
		}
		_, err = b.store.CompleteOutboxAndUpdate(ctx, row.ID, owner, r.ID, func(r *approval.Request) error {
			r.MessageTS = ts
			return nil
		})
		return err
	case kindCardUpdate:
		if r.MessageTS != "" && r.ParentID == "" {
			_, _, _, err := b.slack.UpdateMessageContext(ctx, r.ChannelID, r.MessageTS,
				slack.MsgOptionText(b.cardText(r), false), slack.MsgOptionBlocks(b.renderCard(r)...))
			if err != nil {
				b.cfg.Metrics.slackError("chat.update", err)
				return err
			}
		}
	case kindThread:
		if r.MessageTS == "" {
			// The card never made it (it was dropped): a reply would land top-level in the
			// channel, out of context, so it goes to the log only.
			b.log.WithFields(logrus.Fields{"request_id": r.ID, "outbox_id": row.ID}).Warn("Dropping a thread reply of a request without a card")
			break
		}
		opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionTS(r.MessageTS)}
		blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(m.Text), nil, nil)}
		if len(m.Buttons) > 0 {
			blocks = append(blocks, threadButtons(r, m.Buttons))
		}
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
		if _, _, err := b.slack.PostMessageContext(ctx, r.ChannelID, opts...); err != nil {
			b.cfg.Metrics.slackError("chat.postMessage", err)
			return err
		}
	case kindAudit:
		if b.cfg.AuditChannel != "" {
			if _, _, err := b.slack.PostMessageContext(ctx, b.cfg.AuditChannel, slack.MsgOptionText(m.Text, false)); err != nil {
				b.cfg.Metrics.slackError("chat.postMessage", err)
				return err
			}
		}
	case kindScheduleReturn:
		if err := b.scheduleReturn(ctx, r); err != nil {
			return err
		}
	default:
		b.log.WithField("outbox_kind", row.Kind).Error("Dropping an outbox message of unknown kind")
	}
	return b.store.CompleteOutbox(ctx, row.ID, owner)
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

// permanentSlackError reports errors that retrying cannot fix; they are dropped with a hint.
func permanentSlackError(err error) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
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
	switch se.Err {
	case "not_in_channel":
		return "invite the bot to the channel (/invite @metabase-bot)"
	case "channel_not_found":
		return "use the channel id (C…), and invite the bot to private channels"
	case "missing_scope":
		return fmt.Sprintf("add the bot scope %q to the Slack app and reinstall it", se.Needed)
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
