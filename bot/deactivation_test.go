package bot

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// chatUsersStub is an access.ChatUsers whose answer a test chooses.
type chatUsersStub struct {
	calls atomic.Int32
	SeeFn func(team, user string, deleted bool, updated int64) (int, error)
}

func (s *chatUsersStub) SeeChatUser(_ context.Context, team, user string, deleted bool, updated int64) (int, error) {
	s.calls.Add(1)
	return s.SeeFn(team, user, deleted, updated)
}

// userChangeEnvelope is a user_change as slack-go hands it over from Socket Mode.
func userChangeEnvelope(user string, deleted bool) socketmode.Event {
	return socketmode.Event{
		Type: socketmode.EventTypeEventsAPI,
		Data: slackevents.EventsAPIEvent{Type: slackevents.CallbackEvent, TeamID: "T1",
			InnerEvent: slackevents.EventsAPIInnerEvent{Type: string(slackevents.UserChange),
				Data: &slackevents.UserChangeEvent{Type: "user_change", User: slackevents.User{ID: user, TeamID: "T1", Deleted: deleted, Updated: 1700000000}}}},
		Request: &socketmode.Request{EnvelopeID: "env-" + user, Type: "events_api"},
	}
}

// A user_change is acked only once it is recorded: when the record cannot be written (the store
// is down), Slack must send it again, so no ack goes out.
func TestUserChangeAckedOnlyOnceRecorded(t *testing.T) {
	t.Parallel()
	down := errors.New("store: begin: connection refused")
	tests := []struct {
		name      string
		channel   string
		see       func(string, string, bool, int64) (int, error)
		event     socketmode.Event
		wantAcks  int
		wantCalls int32
	}{
		{"store down", "C1", func(string, string, bool, int64) (int, error) { return 0, down }, userChangeEnvelope("U9", true), 0, 1},
		{"profile edit recorded", "C1", func(string, string, bool, int64) (int, error) { return 0, nil }, userChangeEnvelope("U9", false), 1, 1},
		{"deactivations off", "", func(string, string, bool, int64) (int, error) { return 0, down }, userChangeEnvelope("U9", true), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{SlashCommand: "/metabase", ApproverUsers: []string{"UAPP"}, Policy: testPolicy(), DeactivationChannel: tt.channel}
			api := newFuzzSlack(nil)
			dir := NewDirectory(cfg, api)
			stub := &chatUsersStub{SeeFn: tt.see}
			core, err := access.New(access.Config{Policy: cfg.Policy, Execution: testExecution("t")},
				access.Deps{Store: openTestStore(t), Metabase: newMemMetabase(), Directory: dir, Notifier: NewNotifier(cfg, api), ChatUsers: stub})
			if err != nil {
				t.Fatal(err)
			}
			b, err := New(cfg, api, core, dir)
			if err != nil {
				t.Fatal(err)
			}
			acks := &fuzzAcker{}
			b.dispatch(t.Context(), acks, tt.event)
			b.inflight.Wait()
			if got := acks.count(); got != tt.wantAcks {
				t.Errorf("%d acks, want %d", got, tt.wantAcks)
			}
			if got := stub.calls.Load(); got != tt.wantCalls {
				t.Errorf("%d records, want %d", got, tt.wantCalls)
			}
		})
	}
}
