package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

const (
	// cardRecordWait bounds how long a click on a card whose ts is not recorded yet waits for it
	// (awaitCard); the click was acked already. Recording takes milliseconds.
	cardRecordWait = 2 * time.Second
	// cardRecordPoll is how often that wait reads the request again.
	cardRecordPoll = 25 * time.Millisecond
)

// notThisRequest refuses a click from anywhere but the request's own card; only the clicker sees it.
const notThisRequest = "That button does not belong to this request."

// staleHome refuses a click on a Home tab the bot cannot vouch for (drawn before a restart, by
// another replica, or not showing that request); the Home is drawn afresh.
const staleHome = "Your Home tab was out of date, so that click did nothing; I have brought it up to date: please look again."

// origin is where a click naming a request came from, as far as that request is concerned.
type origin int

const (
	// elsewhere: no message of the request; the click is refused.
	elsewhere origin = iota
	// ownCard: the card the bot recorded for the request, or a reply of the bot's in its thread.
	ownCard
	// orphanCard: another copy of the request's card. A delivery posts the card and then records
	// its ts; when the process dies in between, the outbox posts the card again and records that
	// one, and the first stays in the channel with live-looking buttons.
	orphanCard
	// homeView: the Home tab view the bot published to the person clicking, showing the request.
	homeView
)

// published is the record of what the bot published on people's Home tabs (homes, home.go).
type published interface {
	// shows reports whether the bot published view to user and it shows request id.
	shows(user, view, id string) bool
}

// originOf decides whether the container of click cb belongs to request r; it is the one place
// that says where a request's buttons may be pressed. Accepted are the card the bot recorded for r
// (r's channel and r.MessageTS, not an ephemeral) and the bot's replies in that card's thread
// (Retry, Cancel automatic return). Anything else is refused, in r's channel too: while r has no
// recorded card, no message is its card. Slack sends a click to the app whose message holds the
// button, with that message (https://api.slack.com/reference/interaction-payloads/block-actions),
// so a message that carries r's decision buttons is a card the bot posted for r: when it is not
// the recorded one it is an orphan.
//
// A click whose container is a view counts only when it is a Home view (Slack shows a Home view
// to the one person it was published to, https://api.slack.com/methods/views.publish) that home
// records the bot published to cb.User, showing r: a view is identified by its id, which Slack
// sends in the container and in the view object alike
// (https://api.slack.com/reference/interaction-payloads/block-actions).
func originOf(cb slack.InteractionCallback, r approval.Request, home published) origin {
	c := cb.Container
	if c.Type == "view" {
		if home != nil && cb.View.Type == slack.VTHomeTab && c.ViewID != "" && cb.View.ID == c.ViewID &&
			home.shows(cb.User.ID, c.ViewID, r.ID) {
			return homeView
		}
		return elsewhere
	}
	if c.Type != "message" || c.IsEphemeral || r.ChannelID == "" || cb.Channel.ID != r.ChannelID ||
		(c.ChannelID != "" && c.ChannelID != r.ChannelID) || c.MessageTs == "" {
		return elsewhere
	}
	thread := c.ThreadTs
	if thread == "" {
		thread = cb.Message.ThreadTimestamp
	}
	if r.MessageTS != "" && (c.MessageTs == r.MessageTS || thread == r.MessageTS) {
		return ownCard
	}
	if (thread == "" || thread == c.MessageTs) && decides(cb.Message, r.ID) {
		return orphanCard
	}
	return elsewhere
}

// decides reports whether m carries the decision buttons of request id, as a card does: Approve,
// Deny and Cancel on a request's card, Confirm and Reverse on a break-glass action's.
func decides(m slack.Message, id string) bool {
	for _, b := range m.Blocks.BlockSet {
		ab, ok := b.(*slack.ActionBlock)
		if !ok || (ab.BlockID != blockDecision && ab.BlockID != blockReview) || ab.Elements == nil {
			continue
		}
		for _, el := range ab.Elements.ElementSet {
			if btn, ok := el.(*slack.ButtonBlockElement); ok && btn.Value == id && cardAction(ab.BlockID, btn.ActionID) {
				return true
			}
		}
	}
	return false
}

// cardAction reports whether action is one of the card's own buttons in block.
func cardAction(block, action string) bool {
	if block == blockReview {
		return action == actionConfirm || action == actionReverse
	}
	return action == actionApprove || action == actionDeny || action == actionCancel
}

// orphanText is the refusal of a click on an orphaned copy of r's card: it links to the live card
// when there is one (chat.getPermalink, https://api.slack.com/methods/chat.getPermalink, needs no
// scope), so the clicker can act there.
func (b *Bot) orphanText(ctx context.Context, r approval.Request) string {
	if r.MessageTS == "" {
		// The delivery that posted it may still record it, or the outbox posts the card again.
		return fmt.Sprintf("I have not finished recording this card of request %s; please try again in a minute.", r.ID)
	}
	link, err := b.slack.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: r.ChannelID, Ts: r.MessageTS})
	if err != nil || !safeLink(link) {
		b.logger(ctx).WithField("error_code", slackCode(err)).Warn("Could not get a link to a request's live card")
		return fmt.Sprintf("This is an out-of-date copy of the card of request %s (it was posted twice); please use its live card in this channel.", r.ID)
	}
	return fmt.Sprintf("This is an out-of-date copy of the card of request %s (it was posted twice); please use <%s|the live card>.", r.ID, link)
}

// safeLink reports whether a URL can stand in a <url|text> link as it is.
func safeLink(u string) bool {
	return strings.HasPrefix(u, "https://") && !strings.ContainsAny(u, "<>| \t\n")
}
