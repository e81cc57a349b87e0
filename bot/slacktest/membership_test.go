package slacktest

import (
	"testing"

	"github.com/slack-go/slack"
)

func TestEphemeralsNeedTheBotAndTheUserInTheChannel(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	fs.AddUser(User{ID: "U1", Name: "alice"})
	fs.AddUser(User{ID: "U2", Name: "bob"})
	fs.AddChannel("C1", "ops", true, "U1")
	fs.AddChannel("C2", "elsewhere", false, "U1")
	fs.AddChannel("G1", "secret", false, "U1")
	tests := []struct {
		name, channel, user, want string
	}{
		{"member", "C1", "U1", ""},
		{"user not in the channel", "C1", "U2", "user_not_in_channel"},
		{"unknown user", "C1", "U9", "user_not_found"},
		{"bot not in the public channel", "C2", "U1", "not_in_channel"},
		{"bot not in the private channel", "G1", "U1", "channel_not_found"},
	}
	for _, tt := range tests {
		_, err := api.PostEphemeralContext(ctx, tt.channel, tt.user, slack.MsgOptionText("hi", false))
		if got := errString(err); got != tt.want {
			t.Errorf("%s: err = %q, want %q", tt.name, got, tt.want)
		}
	}
	// Running a command in a channel makes the person a member (Slack lets only members type).
	if _, err := api.PostEphemeralContext(ctx, "C1", "U2", slack.MsgOptionText("hi", false)); errString(err) != "user_not_in_channel" {
		t.Fatalf("before the command: %v", err)
	}
	h := start(t, fs)
	if _, err := fs.SlashCommand(ctx, SlashCommand{UserID: "U2", ChannelID: "C1", Text: "help"}); err != nil {
		t.Fatal(err)
	}
	cmd := h.next(ctx, t, "slash_commands").Data.(slack.SlashCommand)
	if _, err := h.api.PostEphemeralContext(ctx, "C1", "U2", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("after the command: %v", err)
	}
	// A command's response_url reaches the person even where the bot is not a member.
	if _, err := fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C2", Text: "help"}); err != nil {
		t.Fatal(err)
	}
	cmd = h.next(ctx, t, "slash_commands").Data.(slack.SlashCommand)
	if _, _, err := h.api.PostMessageContext(ctx, "", slack.MsgOptionText("via response_url", false),
		slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeEphemeral)); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.WaitEphemeral(ctx, func(m Message) bool { return m.Channel == "C2" && m.User == "U1" && m.Text == "via response_url" }); err != nil {
		t.Fatal(err)
	}
	// Inviting the bot lets it post.
	fs.Invite("C2", fs.BotUserID())
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("after the invite: %v", err)
	}
	fs.Kick("C2", fs.BotUserID())
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("hi", false)); errString(err) != "not_in_channel" {
		t.Errorf("after the kick: %v", err)
	}
	// conversations.info tells the bot whether it is a member, and hides private channels it is not in.
	c, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C1"})
	if err != nil || !c.IsMember {
		t.Errorf("conversations.info C1 = %+v, %v; want is_member", c, err)
	}
	if _, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "G1"}); errString(err) != "channel_not_found" {
		t.Errorf("conversations.info on a private channel without the bot: %v, want channel_not_found", err)
	}
}
