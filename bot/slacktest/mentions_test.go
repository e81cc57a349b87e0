package slacktest

import (
	"slices"
	"testing"

	"github.com/slack-go/slack"
)

func TestMessagesRecordWhomTheyNotify(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t, Options{LiftRateLimits: []string{"chat.postMessage"}}) // six posts in one channel
	for _, u := range []string{"U1", "U2", "U3", "U4"} {
		fs.AddUser(User{ID: u, Name: u})
	}
	fs.SetUserGroup("S1", "U2", "U3")
	fs.AddChannel("C1", "ops", true, "U1", "U2", "U4")
	api := newAPI(fs, "xoxb-test", "xapp-test")
	txt := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	tests := []struct {
		name string
		opts []slack.MsgOption
		want []string
	}{
		{"user in text", []slack.MsgOption{slack.MsgOptionText("hi <@U1>", false)}, []string{"U1"}},
		{"group in text", []slack.MsgOption{slack.MsgOptionText("hi <!subteam^S1|@approvers>", false)}, []string{"U2", "U3"}},
		{"channel", []slack.MsgOption{slack.MsgOptionText("<!channel>", false)}, []string{"U1", "U2", "U4"}},
		{"escaped is inert", []slack.MsgOption{slack.MsgOptionText("&lt;!channel&gt; &lt;@U1&gt;", false)}, []string{}},
		{"section text and fields", []slack.MsgOption{slack.MsgOptionText("card", false), slack.MsgOptionBlocks(
			slack.NewSectionBlock(txt("for <@U4>"), []*slack.TextBlockObject{txt("<!subteam^S1>")}, nil))}, []string{"U2", "U3", "U4"}},
		{"bare ping in a mrkdwn section", []slack.MsgOption{slack.MsgOptionText("card", false), slack.MsgOptionBlocks(
			slack.NewSectionBlock(txt("reason: @here"), nil, nil))}, []string{"U1", "U2", "U4"}},
		{"bare ping in a verbatim section is text", []slack.MsgOption{slack.MsgOptionText("card", false), slack.MsgOptionBlocks(
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "reason: @here", false, true), nil, nil))}, []string{}},
		{"context block only", []slack.MsgOption{slack.MsgOptionText("card", false), slack.MsgOptionBlocks(
			slack.NewContextBlock("", txt("needs <!subteam^S1>")))}, []string{}},
	}
	for _, tt := range tests {
		_, ts, err := api.PostMessageContext(ctx, "C1", tt.opts...)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		m, _ := fs.Message("C1", ts)
		if !slices.Equal(m.Notified, tt.want) {
			t.Errorf("%s: Notified = %v, want %v", tt.name, m.Notified, tt.want)
		}
	}
}
