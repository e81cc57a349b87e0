package bot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// TestOriginOf: a click counts for a request only from the card the bot recorded for it or from
// the bot's replies in that card's thread; another copy of its card is an orphan; everything else
// (other messages, ephemerals, other channels, any message while no card is recorded) is
// refused. A Home view counts only when the bot published it to the clicker showing the request.
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
	// A break-glass action's card carries Confirm and Reverse instead of a decision.
	breakGlass := unrecorded
	breakGlass.State, breakGlass.BreakGlass = approval.Succeeded, &approval.BreakGlass{}
	reviewCard := func(r approval.Request) slack.Message {
		b, _ := v.reviewButtons(r)
		return slack.Message{Msg: slack.Msg{Blocks: slack.Blocks{BlockSet: []slack.Block{b}}}}
	}
	click := func(channel, ts, thread string, m slack.Message) slack.InteractionCallback {
		cb := slack.InteractionCallback{Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: channel}}},
			Container: slack.Container{Type: "message", ChannelID: channel, MessageTs: ts, ThreadTs: thread}, Message: m}
		cb.Message.Timestamp, cb.Message.ThreadTimestamp = ts, thread
		return cb
	}
	ephemeral := click("COPS", card, "", cardOf(recorded))
	ephemeral.Container.IsEphemeral = true
	homeClick := func(user, viewID, typ string) slack.InteractionCallback {
		return slack.InteractionCallback{User: slack.User{ID: user}, Container: slack.Container{Type: "view", ViewID: viewID},
			View: slack.View{ID: viewID, Type: slack.ViewType(typ)}}
	}
	pub := &homes{people: map[string]*home{"UAPP": {viewID: "VH1", shown: map[string]bool{recorded.ID: true}}}}
	otherView := homeClick("UAPP", "VH1", "home")
	otherView.View.ID = "VH2"
	noContainer := click("COPS", card, "", cardOf(recorded))
	noContainer.Container = slack.Container{}

	tests := []struct {
		name string
		cb   slack.InteractionCallback
		r    approval.Request
		home published
		want origin
	}{
		{"the recorded card", click("COPS", card, "", cardOf(recorded)), recorded, nil, ownCard},
		{"a reply in the card's thread", click("COPS", other, card, slack.Message{}), recorded, nil, ownCard},
		{"another copy of the card", click("COPS", orphan, "", cardOf(recorded)), recorded, nil, orphanCard},
		{"a copy of the card while none is recorded", click("COPS", orphan, "", cardOf(recorded)), unrecorded, nil, orphanCard},
		{"a break-glass card while none is recorded", click("COPS", orphan, "", reviewCard(breakGlass)), breakGlass, nil, orphanCard},
		{"another request's card", click("COPS", other, "", cardOf(otherRequest)), recorded, nil, elsewhere},
		{"another request's card while none is recorded", click("COPS", other, "", cardOf(otherRequest)), unrecorded, nil, elsewhere},
		{"a message without the card's buttons while none is recorded", click("COPS", other, "", slack.Message{}), unrecorded, nil, elsewhere},
		{"a reply in another thread", click("COPS", other, orphan, cardOf(recorded)), recorded, nil, elsewhere},
		{"the card's ts in another channel", click("COTHER", card, "", cardOf(recorded)), recorded, nil, elsewhere},
		{"an ephemeral", ephemeral, recorded, nil, elsewhere},
		{"no container", noContainer, recorded, nil, elsewhere},
		{"the Home the bot published to the clicker", homeClick("UAPP", "VH1", "home"), recorded, pub, homeView},
		{"that Home, for a request it does not show", homeClick("UAPP", "VH1", "home"), otherRequest, pub, elsewhere},
		{"another person's published Home", homeClick("UAPP2", "VH1", "home"), recorded, pub, elsewhere},
		{"a Home view the bot did not publish", homeClick("UAPP", "VH9", "home"), recorded, pub, elsewhere},
		{"a container and a view that disagree", otherView, recorded, pub, elsewhere},
		{"a modal", homeClick("UAPP", "VH1", "modal"), recorded, pub, elsewhere},
		{"a view with no Home published", homeClick("UAPP", "VH1", "home"), recorded, nil, elsewhere},
	}
	for _, tc := range tests {
		if got := originOf(tc.cb, tc.r, tc.home); got != tc.want {
			t.Errorf("%s: origin %d, want %d", tc.name, got, tc.want)
		}
	}
}

// recordingOnRead is a store where the delivery that posted a request's card records its ts just
// after the click's handler first read the request: the click lands between the post and the write.
type recordingOnRead struct {
	access.Store
	ts   string
	once sync.Once
}

func (s *recordingOnRead) Get(ctx context.Context, id string) (approval.Request, error) {
	r, err := s.Store.Get(ctx, id)
	s.once.Do(func() {
		if s.ts == "" {
			return
		}
		if _, uerr := s.Store.Update(ctx, id, func(r *approval.Request) ([]store.Outbox, error) {
			r.MessageTS = s.ts
			return nil, nil
		}); uerr != nil {
			panic(uerr)
		}
	})
	return r, err
}

// TestClickOnACardBeingRecorded: a click on a request's card while its ts is not recorded yet
// waits for the delivery to record it and then counts; when the ts never comes the click is
// refused (only the clicker is told) and nothing is decided.
func TestClickOnACardBeingRecorded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		recorded string // the ts the delivery records just after the click's first read ("" none)
		disables int32
		want     string
	}{
		{"recorded a moment later", "1700000000.000100", 1, ""},
		{"never recorded", "", 0, "I have not finished recording this card"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openTestStore(t)
			now := time.Now()
			r := approval.Request{ID: "MB-REC00001", Action: approval.Disable, State: approval.Pending, Requester: "UREQ",
				Targets: []approval.Target{{UserID: 5, Email: "jane@example.com"}},
				Reason:  "Left", ChannelID: "COPS", RequiredApprovals: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := st.Create(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			api := newFuzzSlack([]string{"UAPP"})
			mb := newMemMetabase(metabase.User{ID: 5, Email: "jane@example.com", IsActive: true})
			b := newTestBot(t, Config{TeamID: "T1", ApproverGroup: "SAPP"}, testExecution("t"), api, mb,
				&recordingOnRead{Store: st, ts: tc.recorded})
			cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "UAPP"},
				Channel:        slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: "COPS"}}},
				Container:      slack.Container{Type: "message", ChannelID: "COPS", MessageTs: "1700000000.000100"},
				Message:        slack.Message{Msg: slack.Msg{Timestamp: "1700000000.000100", Blocks: slack.Blocks{BlockSet: []slack.Block{b.v.decisionButtons(r)}}}},
				ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: actionApprove, BlockID: blockDecision, Value: r.ID}}}}
			b.handleInteraction(t.Context(), cb)
			if n := mb.disables.Load(); n != tc.disables {
				t.Errorf("DisableUser calls = %d, want %d", n, tc.disables)
			}
			got, err := st.Get(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if got.State != approval.Succeeded {
					t.Errorf("request %s, want succeeded", got.State)
				}
				return
			}
			if got.State != approval.Pending || len(got.Approvals) != 0 {
				t.Errorf("request %s with %d approvals, want pending with none", got.State, len(got.Approvals))
			}
			if all := strings.Join(api.texts(), "\n"); !strings.Contains(all, tc.want) {
				t.Errorf("the clicker was not told %q; the bot sent:\n%s", tc.want, all)
			}
		})
	}
}
