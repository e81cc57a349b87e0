package bot

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// deactivations turns Slack's user_change events into disable requests for the people whose
// Slack account was deactivated (docs/slack.md#deactivations). Slack sends user_change for every
// profile edit too, and again for an edit of an account already deactivated: the core records
// each account's last state, and only a change to deleted counts, once, whatever the replica or
// the redelivery.
type deactivations Bot

// take starts handling an events_api envelope when it is a user_change and deactivations are
// turned on (SLACK_DEACTIVATION_CHANNEL), and reports whether it did; the handler acks it.
func (d *deactivations) take(ctx context.Context, sm acker, evt socketmode.Event) bool {
	b := (*Bot)(d)
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok || !b.teamOK(ev.TeamID) {
		return false
	}
	uc, ok := ev.InnerEvent.Data.(*slackevents.UserChangeEvent)
	if !ok {
		return false
	}
	if b.cfg.DeactivationChannel == "" {
		// The manifest subscribes to user_change, so with the feature off every profile edit in
		// the workspace still arrives: acked, and not worth a warning each.
		if err := sm.Ack(*evt.Request); err != nil {
			b.log.WithError(err).Error("Could not ack an envelope")
		}
		b.log.WithField("envelope_id", evt.Request.EnvelopeID).Debug("Ignoring user_change: SLACK_DEACTIVATION_CHANNEL is not set")
		return true
	}
	req, team := *evt.Request, ev.TeamID
	if team == "" {
		team = uc.User.TeamID
	}
	b.spawn(ctx, func(ctx context.Context) { d.userChanged(ctx, sm, req, team, uc) })
	return true
}

// userChanged records the account's state and, for a deactivation, opens its request. The
// envelope is acked once the outcome is settled (created, already created, nothing to request);
// when the record or the request could not be written, or Metabase did not answer, it is not,
// so Slack delivers the event again (a few times over several minutes, docs/slack.md#deactivations) and the
// retry finds the same deactivation, which opens at most one request.
func (d *deactivations) userChanged(ctx context.Context, sm acker, req socketmode.Request, team string, uc *slackevents.UserChangeEvent) {
	b := (*Bot)(d)
	u := uc.User
	log := b.log.WithFields(logrus.Fields{"slack_user_id": u.ID, "envelope_id": req.EnvelopeID, "retry_attempt": req.RetryAttempt, "event_type": uc.Type})
	ack := func() {
		if err := sm.Ack(req); err != nil {
			log.WithError(err).Error("Could not ack an envelope")
		}
	}
	n, err := b.core.SeeChatUser(ctx, team, u.ID, u.Deleted, int64(u.Updated))
	if err != nil {
		log.WithError(err).Error("Could not record a Slack account change; leaving the event unacknowledged so Slack sends it again")
		return
	}
	if n == 0 || u.IsBot {
		ack()
		return
	}
	// slack-go's slackevents.Profile has no email field, whatever the payload carries, so the
	// email comes from users.info (users:read.email), which answers for deactivated accounts too.
	email, err := b.dir.Email(ctx, u.ID)
	if access.IsRefusal(err) {
		ack()
		log.Info("A deactivated Slack account shows no email; no Metabase account to look for")
		return
	} else if err != nil {
		log.WithError(err).Warn("Could not read a deactivated Slack account's email; leaving the event for Slack to send again")
		return
	}
	at := b.core.Now()
	if u.Updated > 0 {
		at = time.Unix(u.Updated, 0)
	}
	reason := "Slack account deactivated on " + at.UTC().Format(time.DateOnly)
	l := access.Leaver{Team: team, User: u.ID, Email: email, Deactivation: n}
	r, err := b.core.DisableLeaver(access.WithLogger(ctx, log), l, b.cfg.DeactivationChannel, reason)
	switch {
	case err == nil:
		ack()
		log.WithFields(logrus.Fields{"request_id": r.ID, "targets": access.TargetEmails(r)}).Info("Opened a disable request for a deactivated Slack account")
	case errors.Is(err, access.ErrRedelivered):
		ack()
		log.Debug("This deactivation already opened its request")
	case errors.Is(err, access.ErrNoAccount):
		ack()
		log.Debug("A deactivated Slack account has no active Metabase account; nothing to request")
	case access.IsRefusal(err):
		ack()
		log.WithField("error_message", b.v.explain(opValidate, err)).Info("No request for a deactivated Slack account")
	default:
		log.WithError(err).Error("Could not open the request of a deactivated Slack account; leaving the event for Slack to send again")
	}
}
