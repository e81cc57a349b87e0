package bot

import (
	"context"
	"errors"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// Do-nothing implementations of the consumer interfaces, for tests that exercise pure parts of
// the bot (rendering, parsing) and must not reach any service.
type (
	nopSlack struct{}
	nopStore struct{}
)

var (
	_ slackAPI     = nopSlack{}
	_ requestStore = nopStore{}
)

var errNop = errors.New("not available in this test")

func (nopSlack) PostMessageContext(context.Context, string, ...slack.MsgOption) (string, string, error) {
	return "", "", errNop
}
func (nopSlack) UpdateMessageContext(context.Context, string, string, ...slack.MsgOption) (string, string, string, error) {
	return "", "", "", errNop
}
func (nopSlack) PostEphemeralContext(context.Context, string, string, ...slack.MsgOption) (string, error) {
	return "", errNop
}
func (nopSlack) GetUserGroupMembersContext(context.Context, string, ...slack.GetUserGroupMembersOption) ([]string, error) {
	return nil, errNop
}
func (nopSlack) GetUserInfoContext(context.Context, string, ...slack.GetUserInfoOption) (*slack.User, error) {
	return nil, errNop
}
func (nopSlack) OpenViewContext(context.Context, string, slack.ModalViewRequest) (*slack.ViewResponse, error) {
	return nil, errNop
}

func (nopStore) Create(context.Context, approval.Request, ...store.Outbox) error { return errNop }
func (nopStore) Get(context.Context, string) (approval.Request, error) {
	return approval.Request{}, errNop
}
func (nopStore) Update(context.Context, string, func(*approval.Request) ([]store.Outbox, error)) (approval.Request, error) {
	return approval.Request{}, errNop
}
func (nopStore) Due(context.Context, time.Time, int) ([]approval.Request, error) { return nil, errNop }
func (nopStore) ByTarget(context.Context, int) ([]approval.Request, error)       { return nil, errNop }
func (nopStore) ClaimOutbox(context.Context, string, time.Time, time.Duration, int) ([]store.Outbox, error) {
	return nil, errNop
}
func (nopStore) CompleteOutbox(context.Context, int64, string) error { return errNop }
func (nopStore) CompleteOutboxAndUpdate(context.Context, int64, string, string, func(*approval.Request) error) (approval.Request, error) {
	return approval.Request{}, errNop
}
func (nopStore) RetryOutbox(context.Context, int64, string, time.Time, string) error { return errNop }
