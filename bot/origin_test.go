package bot

import (
	"testing"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// TestOriginOf: a click counts for a request only from the card the bot recorded for it or from
// the bot's replies in that card's thread; another copy of its card is an orphan; everything else
// (other messages, ephemerals, views, other channels, any message while no card is recorded) is
// refused.
func TestOriginOf(t *testing.T) {
	t.Parallel()
	const card, orphan, other = "1700000000.000100", "1700000000.000050", "1700000000.000200"
	recorded := approval.Request{ID: "MB-AAAAAAAA", ChannelID: "COPS", MessageTS: card}
	unrecorded := recorded
	unrecorded.MessageTS = ""
	v := &view{}
	cardOf := func(r approval.Request) slack.Message {
		return slack.Message{Msg: slack.Msg{Blocks: slack.Blocks{BlockSet: []slack.Block{v.decisionButtons(r)}}}}
	}
	otherRequest := recorded
	otherRequest.ID = "MB-BBBBBBBB"
	click := func(channel, ts, thread string, m slack.Message) slack.InteractionCallback {
		cb := slack.InteractionCallback{Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: channel}}},
			Container: slack.Container{Type: "message", ChannelID: channel, MessageTs: ts, ThreadTs: thread}, Message: m}
		cb.Message.Timestamp, cb.Message.ThreadTimestamp = ts, thread
		return cb
	}
	ephemeral := click("COPS", card, "", cardOf(recorded))
	ephemeral.Container.IsEphemeral = true
	home := click("COPS", card, "", cardOf(recorded))
	home.Container = slack.Container{Type: "view", ViewID: "V1"}
	noContainer := click("COPS", card, "", cardOf(recorded))
	noContainer.Container = slack.Container{}

	tests := []struct {
		name string
		cb   slack.InteractionCallback
		r    approval.Request
		want origin
	}{
		{"the recorded card", click("COPS", card, "", cardOf(recorded)), recorded, ownCard},
		{"a reply in the card's thread", click("COPS", other, card, slack.Message{}), recorded, ownCard},
		{"another copy of the card", click("COPS", orphan, "", cardOf(recorded)), recorded, orphanCard},
		{"a copy of the card while none is recorded", click("COPS", orphan, "", cardOf(recorded)), unrecorded, orphanCard},
		{"another request's card", click("COPS", other, "", cardOf(otherRequest)), recorded, elsewhere},
		{"another request's card while none is recorded", click("COPS", other, "", cardOf(otherRequest)), unrecorded, elsewhere},
		{"a message without the card's buttons while none is recorded", click("COPS", other, "", slack.Message{}), unrecorded, elsewhere},
		{"a reply in another thread", click("COPS", other, orphan, cardOf(recorded)), recorded, elsewhere},
		{"the card's ts in another channel", click("COTHER", card, "", cardOf(recorded)), recorded, elsewhere},
		{"an ephemeral", ephemeral, recorded, elsewhere},
		{"a view (App Home is not served yet)", home, recorded, elsewhere},
		{"no container", noContainer, recorded, elsewhere},
	}
	for _, tc := range tests {
		if got := originOf(tc.cb, tc.r); got != tc.want {
			t.Errorf("%s: origin %d, want %d", tc.name, got, tc.want)
		}
	}
}
