package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// harness runs the real slack-go Socket Mode client against a fake.
type harness struct {
	fs     *Server
	api    *slack.Client
	client *socketmode.Client
	events chan socketmode.Event
}

func newAPI(fs *Server, botToken, appToken string) *slack.Client {
	return slack.New(botToken, slack.OptionAppLevelToken(appToken), slack.OptionAPIURL(fs.APIURL()))
}

// start connects a socketmode client to fs (a new fake when fs is nil) and forwards its events.
func start(t *testing.T, fs *Server, smOpts ...socketmode.Option) *harness {
	t.Helper()
	if fs == nil {
		fs = New(t)
		// The channel most tests post in, with the bot and the people who click there.
		for _, u := range []string{"U2", "U3", "U4"} {
			fs.AddUser(User{ID: u, Name: strings.ToLower(u)})
		}
		fs.AddChannel("C1", "c1", true, "U2", "U3", "U4")
	}
	api := newAPI(fs, "xoxb-test", "xapp-test")
	h := &harness{fs: fs, api: api, client: socketmode.New(api, smOpts...), events: make(chan socketmode.Event, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = h.client.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case evt := <-h.client.Events:
				select {
				case h.events <- evt:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next client event of type typ, skipping others.
func (h *harness) next(ctx context.Context, t *testing.T, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	for {
		select {
		case evt := <-h.events:
			if evt.Type == typ {
				return evt
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", typ, ctx.Err())
		}
	}
}

func approvalBlocks(value string) []slack.Block {
	return []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*alice* wants to disable bob", false, false), nil, nil),
		slack.NewActionBlock("decision",
			slack.NewButtonBlockElement("approve", value, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement("deny", value, slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false)).WithStyle(slack.StyleDanger),
		),
	}
}

func TestConnectAndHello(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	evt := h.next(ctx, t, socketmode.EventTypeHello)
	if evt.Request == nil || evt.Request.ConnectionInfo.AppID != appID {
		t.Errorf("hello request = %+v, want connection_info.app_id %q", evt.Request, appID)
	}
	if err := h.fs.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.fs.Connections(); got != 1 {
		t.Errorf("Connections() = %d, want 1", got)
	}
	if got := h.fs.Calls("apps.connections.open"); got != 1 {
		t.Errorf("Calls(apps.connections.open) = %d, want 1", got)
	}
}

func TestSlashCommandAndAck(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	h.fs.AddUser(User{ID: "U1", Name: "alice"})
	h.fs.AddChannel("C1", "ops", true)
	id, err := h.fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1", Text: "disable bob@example.com gone"})
	if err != nil {
		t.Fatal(err)
	}
	evt := h.next(ctx, t, socketmode.EventTypeSlashCommand)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("Data = %T, want slack.SlashCommand", evt.Data)
	}
	want := slack.SlashCommand{
		Token: verifyTok, TeamID: "T1", TeamDomain: teamDom, ChannelID: "C1", ChannelName: "ops", UserID: "U1",
		UserName: "alice", Command: "/metabase", Text: "disable <mailto:bob@example.com|bob@example.com> gone", APIAppID: appID,
		ResponseURL: cmd.ResponseURL, TriggerID: cmd.TriggerID,
	}
	if diff := cmp.Diff(want, cmd); diff != "" {
		t.Errorf("slash command (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(cmd.ResponseURL, h.fs.URL()) || cmd.TriggerID == "" {
		t.Errorf("response_url %q / trigger_id %q not from the fake", cmd.ResponseURL, cmd.TriggerID)
	}
	if evt.Request.EnvelopeID != id || !evt.Request.AcceptsResponsePayload {
		t.Errorf("request = %+v, want envelope %q accepting a response payload", evt.Request, id)
	}
	if err := h.client.Ack(*evt.Request, map[string]any{"text": "working on it"}); err != nil {
		t.Fatal(err)
	}
	ack, err := h.fs.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(ack.Payload) != `{"text":"working on it"}` || ack.Latency <= 0 || ack.Unknown {
		t.Errorf("ack = %+v", ack)
	}
	eph, err := h.fs.WaitEphemeral(ctx, func(m Message) bool { return m.Source == "ack" })
	if err != nil {
		t.Fatal(err)
	}
	if eph.User != "U1" || eph.Channel != "C1" || eph.Text != "working on it" {
		t.Errorf("ack reply = %+v", eph)
	}
	if len(h.fs.AckLatencies()) != 1 {
		t.Errorf("AckLatencies() = %v, want one", h.fs.AckLatencies())
	}

	// The response_url answers application/json and records an ephemeral, or a channel message for in_channel.
	if _, _, err := h.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("done", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeInChannel), slack.MsgOptionText("public", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fs.WaitEphemeral(ctx, func(m Message) bool { return m.Text == "done" && m.Source == "response_url" }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fs.WaitMessage(ctx, func(m Message) bool { return m.Text == "public" && m.Channel == "C1" }); err != nil {
		t.Fatal(err)
	}
}

func TestClickUpdateAndButtonsGone(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	h.fs.AddUser(User{ID: "U2", Name: "bob"})
	ch, ts, err := h.api.PostMessageContext(ctx, "C1", slack.MsgOptionText("approve?", false), slack.MsgOptionBlocks(approvalBlocks("req-1")...))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := h.fs.Message(ch, ts)
	if !ok || !m.HasAction("approve") || !strings.Contains(m.AllText(), "wants to disable bob") || !strings.Contains(m.AllText(), "Deny") {
		t.Fatalf("stored message = %+v (AllText %q)", m, m.AllText())
	}
	id, err := h.fs.Click(ctx, Click{UserID: "U2", ChannelID: ch, MessageTS: ts, ActionID: "approve"})
	if err != nil {
		t.Fatal(err)
	}
	evt := h.next(ctx, t, socketmode.EventTypeInteractive)
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("Data = %T, want slack.InteractionCallback", evt.Data)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("BlockActions = %+v (attachment actions %+v)", cb.ActionCallback.BlockActions, cb.ActionCallback.AttachmentActions)
	}
	a := cb.ActionCallback.BlockActions[0]
	got := []string{string(cb.Type), a.ActionID, a.BlockID, a.Value, cb.User.ID, cb.User.Name, cb.Container.ChannelID,
		cb.Container.MessageTs, cb.Channel.ID, cb.Message.Timestamp, cb.Team.ID}
	want := []string{"block_actions", "approve", "decision", "req-1", "U2", "bob", ch, ts, ch, ts, "T1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("interaction (-want +got):\n%s", diff)
	}
	if len(cb.Message.Blocks.BlockSet) != 2 || cb.TriggerID == "" || cb.ResponseURL == "" {
		t.Errorf("message blocks %d, trigger %q, response_url %q", len(cb.Message.Blocks.BlockSet), cb.TriggerID, cb.ResponseURL)
	}
	if err := h.client.Ack(*evt.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fs.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}

	// A forged value reaches the bot as sent.
	if _, err := h.fs.ClickWithValue(ctx, Click{UserID: "U2", ChannelID: ch, MessageTS: ts, ActionID: "deny"}, "forged"); err != nil {
		t.Fatal(err)
	}
	evt = h.next(ctx, t, socketmode.EventTypeInteractive)
	if v := evt.Data.(slack.InteractionCallback).ActionCallback.BlockActions[0].Value; v != "forged" {
		t.Errorf("forged value = %q", v)
	}

	// chat.update with blocks=[] clears the buttons; clicking then fails.
	if _, _, _, err := h.api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("Approved by bob", false), slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	m, _ = h.fs.Message(ch, ts)
	if m.Updates != 1 || m.HasAction("approve") || m.Text != "Approved by bob" || m.Blocks != nil {
		t.Errorf("updated message = %+v", m)
	}
	if _, err := h.fs.Click(ctx, Click{UserID: "U2", ChannelID: ch, MessageTS: ts, ActionID: "approve"}); err == nil {
		t.Error("Click on a message without buttons succeeded")
	}
	if _, _, _, err := h.api.UpdateMessageContext(ctx, ch, "1.000001", slack.MsgOptionText("x", false)); err == nil || err.Error() != "message_not_found" {
		t.Errorf("update of unknown ts: err = %v, want message_not_found", err)
	}
}

func TestResponseURLReplaceOriginal(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	ch, ts, err := h.api.PostMessageContext(ctx, "C1", slack.MsgOptionText("approve?", false), slack.MsgOptionBlocks(approvalBlocks("req-2")...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.fs.Click(ctx, Click{UserID: "U2", ChannelID: ch, MessageTS: ts, ActionID: "deny"}); err != nil {
		t.Fatal(err)
	}
	cb := h.next(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if _, _, err := h.api.PostMessageContext(ctx, "", slack.MsgOptionReplaceOriginal(cb.ResponseURL), slack.MsgOptionText("Denied", false)); err != nil {
		t.Fatal(err)
	}
	m, err := h.fs.WaitMessage(ctx, func(m Message) bool { return m.TS == ts && m.Updates == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "Denied" || m.HasAction("deny") {
		t.Errorf("replaced message = %+v", m)
	}
}

func TestThreadReplyAndEphemeral(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	_, ts, err := h.api.PostMessageContext(ctx, "C1", slack.MsgOptionText("parent", false))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := h.api.PostMessageContext(ctx, "C1", slack.MsgOptionText("child", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	if reply <= ts {
		t.Errorf("ts not increasing: %q then %q", ts, reply)
	}
	m, err := h.fs.WaitMessage(ctx, func(m Message) bool { return m.ThreadTS == ts })
	if err != nil || m.Text != "child" {
		t.Errorf("thread reply = %+v, %v", m, err)
	}

	ets, err := h.api.PostEphemeralContext(ctx, "C1", "U3", slack.MsgOptionText("only you", false), slack.MsgOptionBlocks(approvalBlocks("req-3")...))
	if err != nil {
		t.Fatal(err)
	}
	e, err := h.fs.WaitEphemeral(ctx, func(m Message) bool { return m.TS == ets })
	if err != nil || e.User != "U3" || !e.Ephemeral {
		t.Fatalf("ephemeral = %+v, %v", e, err)
	}
	if len(h.fs.Messages()) != 2 {
		t.Errorf("Messages() = %d, want 2 (ephemerals excluded)", len(h.fs.Messages()))
	}
	if _, err := h.fs.Click(ctx, Click{UserID: "U4", ChannelID: "C1", MessageTS: ets, ActionID: "approve"}); err == nil {
		t.Error("another user clicked an ephemeral")
	}
	if _, err := h.fs.Click(ctx, Click{UserID: "U3", ChannelID: "C1", MessageTS: ets, ActionID: "approve"}); err != nil {
		t.Fatal(err)
	}
	cb := h.next(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if !cb.Container.IsEphemeral || cb.Container.MessageTs != ets || cb.ActionCallback.BlockActions[0].Value != "req-3" {
		t.Errorf("ephemeral click = %+v", cb.Container)
	}
}

func TestDirectory(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	fs.AddUser(User{ID: "U1", Name: "alice", RealName: "Alice A", Email: "alice@example.com"})
	fs.AddUser(User{ID: "U2", Name: "bob"})
	fs.SetUserGroup("S1", "U1", "U2")

	members, err := api.GetUserGroupMembersContext(ctx, "S1")
	if err != nil || !cmp.Equal(members, []string{"U1", "U2"}) {
		t.Errorf("GetUserGroupMembers(S1) = %v, %v", members, err)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S9"); err == nil || err.Error() != "no_such_subteam" {
		t.Errorf("unknown group: err = %v", err)
	}
	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.Profile.Email != "alice@example.com" || u.Name != "alice" || u.RealName != "Alice A" || u.TeamID != "T1" {
		t.Errorf("GetUserInfo(U1) = %+v, %v", u, err)
	}
	u, err = api.GetUserInfoContext(ctx, "U2")
	if err != nil || u.Profile.Email != "" {
		t.Errorf("GetUserInfo(U2) = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U9"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user: err = %v", err)
	}
	u, err = api.GetUserByEmailContext(ctx, "ALICE@example.com")
	if err != nil || u.ID != "U1" {
		t.Errorf("GetUserByEmail = %+v, %v", u, err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "nobody@example.com"); err == nil || err.Error() != "users_not_found" {
		t.Errorf("unknown email: err = %v", err)
	}
	at, err := api.AuthTestContext(ctx)
	if err != nil || at.UserID != "UBOT" || at.TeamID != "T1" || at.BotID == "" {
		t.Errorf("AuthTest = %+v, %v", at, err)
	}
}

func TestChannels(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	fs.AddChannel("C2", "audit", false)
	fs.AddChannel("C3", "ops", true)
	fs.AddUser(User{ID: "U1", Name: "alice"})
	tests := []struct {
		name, channel, wantErr string
	}{
		{"member", "C3", ""},
		{"implicit public channel, bot not invited", "C77", "not_in_channel"},
		{"implicit private channel, bot not invited", "G77", "channel_not_found"},
		{"not a member", "C2", "not_in_channel"},
		{"a user: the bot's DM", "U1", ""},
		{"unknown user", "U9", "channel_not_found"},
		{"unknown id", "X1", "channel_not_found"},
		{"missing", "", "channel_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := api.PostMessageContext(ctx, tt.channel, slack.MsgOptionText("hi", false))
			if got := errString(err); got != tt.wantErr {
				t.Errorf("err = %q, want %q", got, tt.wantErr)
			}
		})
	}
	c, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C2"})
	if err != nil || c.Name != "audit" || c.IsMember {
		t.Errorf("conversations.info = %+v, %v", c, err)
	}
	// The manifest grants no channels:join: the bot cannot invite itself, a person invites it.
	if _, _, _, err := api.JoinConversationContext(ctx, "C2"); errString(err) != "missing_scope" {
		t.Fatalf("conversations.join without channels:join: err = %v, want missing_scope", err)
	}
	fs.Invite("C2", fs.BotUserID())
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("post after join: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2"); errString(err) != "no_text" {
		t.Errorf("post without content: err = %v, want no_text", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestFaults(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	fs.AddChannel("C1", "ops", true)

	fs.RateLimit("chat.postMessage", 1, 7)
	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Errorf("rate limited: err = %v, want *slack.RateLimitedError after 7s", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("after the limit: %v", err)
	}

	fs.FailNext("users.info", 1, "internal_error")
	if _, err := api.GetUserInfoContext(ctx, "UBOT"); errString(err) != "internal_error" {
		t.Errorf("FailNext: err = %v", err)
	}
	if _, err := api.GetUserInfoContext(ctx, "UBOT"); err != nil {
		t.Errorf("after FailNext: %v", err)
	}

	bad := newAPI(fs, "xoxb-wrong", "xapp-test")
	if _, err := bad.AuthTestContext(ctx); errString(err) != "invalid_auth" {
		t.Errorf("bad bot token: err = %v, want invalid_auth", err)
	}
	if _, _, err := bad.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); errString(err) != "invalid_auth" {
		t.Errorf("bad bot token on postMessage: err = %v, want invalid_auth", err)
	}
	if _, err := api.GetTeamInfoContext(ctx); !errors.As(err, new(slack.StatusCodeError)) {
		t.Errorf("unknown method: err = %v, want StatusCodeError", err)
	}
	if err := fs.WaitCalls(ctx, "chat.postMessage", 3); err != nil {
		t.Fatal(err)
	}
	if got := fs.Calls("chat.postMessage"); got != 3 {
		t.Errorf("Calls(chat.postMessage) = %d, want 3", got)
	}

	// A bad app token is fatal for the socketmode client.
	client := socketmode.New(newAPI(fs, "xoxb-test", "xapp-wrong"))
	go func() {
		for range client.Events {
		}
	}()
	if err := client.RunContext(ctx); errString(err) != "invalid_auth" {
		t.Errorf("RunContext with a bad app token: err = %v, want invalid_auth", err)
	}
}

func TestBlockLimits(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t, Options{NoRateLimits: true}) // many posts to one channel
	fs.AddChannel("C1", "ops", true)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	txt := func(typ, s string) *slack.TextBlockObject { return slack.NewTextBlockObject(typ, s, false, false) }
	section := func(s string) slack.Block { return slack.NewSectionBlock(txt(slack.MarkdownType, s), nil, nil) }
	button := func(actionID, value, text string) slack.Block {
		return slack.NewActionBlock("b", slack.NewButtonBlockElement(actionID, value, txt(slack.PlainTextType, text)))
	}
	many := make([]slack.Block, 51)
	for i := range many {
		many[i] = slack.NewDividerBlock()
	}
	fields := make([]*slack.TextBlockObject, 11)
	for i := range fields {
		fields[i] = txt(slack.MarkdownType, "f")
	}
	tests := []struct {
		name    string
		text    string
		blocks  []slack.Block
		wantErr string
	}{
		{"ok", "t", []slack.Block{section("hello"), button("a", "v", "Approve")}, ""},
		{"51 blocks", "t", many, "invalid_blocks"},
		{"section text 3001", "t", []slack.Block{section(strings.Repeat("é", 3001))}, "invalid_blocks"},
		{"section text 3000 runes", "t", []slack.Block{section(strings.Repeat("é", 3000))}, ""},
		{"11 fields", "t", []slack.Block{slack.NewSectionBlock(nil, fields, nil)}, "invalid_blocks"},
		{"button text 76", "t", []slack.Block{button("a", "v", strings.Repeat("x", 76))}, "invalid_blocks"},
		{"button value 2001", "t", []slack.Block{button("a", strings.Repeat("x", 2001), "A")}, "invalid_blocks"},
		{"action_id 256", "t", []slack.Block{button(strings.Repeat("x", 256), "v", "A")}, "invalid_blocks"},
		{"header 151", "t", []slack.Block{slack.NewHeaderBlock(txt(slack.PlainTextType, strings.Repeat("x", 151)))}, "invalid_blocks"},
		{"empty section text", "t", []slack.Block{section("")}, "invalid_blocks"},
		{"duplicate block_id", "t", []slack.Block{button("a", "v", "A"), button("c", "v", "C")}, "invalid_blocks"},
		{"text 40001", strings.Repeat("x", 40001), nil, "msg_too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []slack.MsgOption{slack.MsgOptionText(tt.text, false)}
			if tt.blocks != nil {
				opts = append(opts, slack.MsgOptionBlocks(tt.blocks...))
			}
			_, _, err := api.PostMessageContext(ctx, "C1", opts...)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("err = %q, want %q", got, tt.wantErr)
			}
		})
	}

	// Raw form posts: blocks slack-go cannot build.
	for blocks, want := range map[string]string{
		`[{"type":"nonsense"}]`: "invalid_blocks",
		`[{"type":`:             "invalid_blocks_format",
	} {
		resp, err := http.PostForm(fs.APIURL()+"chat.postMessage", url.Values{"token": {"xoxb-test"}, "channel": {"C1"}, "blocks": {blocks}})
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		err = decodeJSON(resp, &body)
		if err != nil || body.Error != want {
			t.Errorf("blocks %s: error %q (%v), want %q", blocks, body.Error, err, want)
		}
	}
}

func TestViews(t *testing.T) {
	ctx := testCtx(t)
	now := time.Now()
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	h := start(t, New(t, Options{Now: clock}))

	modal := slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, "Disable user", false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Request", false, false),
		CallbackID:      "disable",
		PrivateMetadata: "C1",
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("who", slack.NewTextBlockObject(slack.PlainTextType, "User", false, false), nil,
				slack.NewOptionsSelectBlockElement(slack.OptTypeUser, nil, "user")),
			slack.NewInputBlock("reason", slack.NewTextBlockObject(slack.PlainTextType, "Reason", false, false), nil,
				slack.NewPlainTextInputBlockElement(nil, "text")),
			slack.NewInputBlock("until", slack.NewTextBlockObject(slack.PlainTextType, "Until", false, false), nil,
				slack.NewDatePickerBlockElement("date")),
		}},
	}
	if _, err := h.fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1", TriggerID: "111.222.fresh"}); err != nil {
		t.Fatal(err)
	}
	cmd := h.next(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand)
	resp, err := h.api.OpenViewContext(ctx, cmd.TriggerID, modal)
	if err != nil {
		t.Fatal(err)
	}
	if resp.View.ID == "" || resp.View.CallbackID != "disable" || len(resp.View.Blocks.BlockSet) != 3 {
		t.Errorf("views.open view = %+v", resp.View)
	}
	v, err := h.fs.WaitView(ctx, func(v View) bool { return v.CallbackID == "disable" })
	if err != nil || v.ID != resp.View.ID || v.TriggerID != "111.222.fresh" || v.UserID != "U1" || v.PrivateMetadata != "C1" || v.Title != "Disable user" {
		t.Errorf("WaitView = %+v, %v", v, err)
	}
	if _, err := h.api.OpenViewContext(ctx, cmd.TriggerID, modal); errString(err) != "exchanged_trigger_id" {
		t.Errorf("reused trigger: err = %v", err)
	}
	if _, err := h.api.OpenViewContext(ctx, "nope", modal); errString(err) != "invalid_trigger_id" {
		t.Errorf("unknown trigger: err = %v", err)
	}
	if _, err := h.fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1"}); err != nil {
		t.Fatal(err)
	}
	late := h.next(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand)
	advance(3100 * time.Millisecond)
	if _, err := h.api.OpenViewContext(ctx, late.TriggerID, modal); errString(err) != "expired_trigger_id" {
		t.Errorf("expired trigger: err = %v", err)
	}

	if _, err := h.fs.SubmitView(ctx, ViewSubmission{ViewID: v.ID, Values: map[string]map[string]InputValue{
		"who": {"user": {SelectedUser: "U2"}}, "reason": {"text": {Value: "left the company"}},
	}}); err != nil {
		t.Fatal(err)
	}
	evt := h.next(ctx, t, socketmode.EventTypeInteractive)
	cb := evt.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeViewSubmission || cb.View.CallbackID != "disable" || cb.View.PrivateMetadata != "C1" || cb.User.ID != "U1" {
		t.Errorf("view_submission = %+v", cb)
	}
	vals := cb.View.State.Values
	if vals["who"]["user"].SelectedUser != "U2" || vals["reason"]["text"].Value != "left the company" || vals["until"]["date"].SelectedDate != "" {
		t.Errorf("state values = %+v", vals)
	}
	if err := h.client.Ack(*evt.Request, slack.NewClearViewSubmissionResponse()); err != nil {
		t.Fatal(err)
	}
	if a, err := h.fs.WaitAck(ctx, evt.Request.EnvelopeID); err != nil || !strings.Contains(string(a.Payload), "clear") {
		t.Errorf("view ack = %+v, %v", a, err)
	}
	if _, err := h.fs.SubmitView(ctx, ViewSubmission{ViewID: v.ID, Values: map[string]map[string]InputValue{"nope": {"x": {}}}}); err == nil {
		t.Error("SubmitView accepted a block that is not in the view")
	}

	// views.update, and a too-long title rejected as Slack does.
	modal.Title = slack.NewTextBlockObject(slack.PlainTextType, "Updated", false, false)
	if _, err := h.api.UpdateViewContext(ctx, modal, "", "", v.ID); err != nil {
		t.Fatal(err)
	}
	if got := h.fs.Views()[0]; got.Title != "Updated" || got.Updates != 1 {
		t.Errorf("updated view = %+v", got)
	}
	modal.Title = slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("x", 25), false, false)
	if _, err := h.api.UpdateViewContext(ctx, modal, "", "", v.ID); errString(err) != "invalid_arguments" {
		t.Errorf("long title: err = %v", err)
	}
	if _, err := h.api.UpdateViewContext(ctx, modal, "", "", "V404"); errString(err) != "not_found" {
		t.Errorf("unknown view: err = %v", err)
	}
}

func TestDisconnectReconnects(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	h.next(ctx, t, socketmode.EventTypeHello)
	if err := h.fs.Disconnect(ctx, "refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if err := h.fs.WaitConnections(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := h.fs.Calls("apps.connections.open"); got != 2 {
		t.Errorf("Calls(apps.connections.open) = %d, want 2", got)
	}
	// Injected right away: waits for the new socket and is not lost.
	id, err := h.fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1", Text: "status"})
	if err != nil {
		t.Fatal(err)
	}
	evt := h.next(ctx, t, socketmode.EventTypeSlashCommand)
	if evt.Request.EnvelopeID != id {
		t.Errorf("envelope %q, want %q", evt.Request.EnvelopeID, id)
	}
	if got := h.fs.Connections(); got != 2 {
		t.Errorf("Connections() = %d, want 2", got)
	}
}

func TestRedeliverAndHostileFrames(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	id, err := h.fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	first := h.next(ctx, t, socketmode.EventTypeSlashCommand)
	if err := h.fs.Redeliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	again := h.next(ctx, t, socketmode.EventTypeSlashCommand)
	if again.Request.EnvelopeID != id || again.Request.RetryAttempt != 1 || again.Request.RetryReason != "timeout" || first.Request.RetryAttempt != 0 {
		t.Errorf("redelivery = %+v", again.Request)
	}
	for _, e := range []socketmode.Event{first, again} {
		if err := h.client.Ack(*e.Request); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.fs.waitFor(ctx, func() bool { return len(h.fs.acks) == 2 }); err != nil {
		t.Fatal(err)
	}
	if got := len(h.fs.Acks(id)); got != 2 {
		t.Errorf("Acks(%s) = %d, want 2", id, got)
	}

	if err := h.fs.SendRaw(ctx, []byte(`{"type":"bogus"}`)); err != nil {
		t.Fatal(err)
	}
	h.next(ctx, t, socketmode.EventTypeErrorBadMessage)
	if err := h.fs.SendRaw(ctx, []byte(`not json`)); err != nil {
		t.Fatal(err)
	}
	h.next(ctx, t, socketmode.EventTypeIncomingError)
	// The connection survives hostile frames.
	if _, err := h.fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1"}); err != nil {
		t.Fatal(err)
	}
	h.next(ctx, t, socketmode.EventTypeSlashCommand)
	if got := h.fs.Connections(); got != 1 {
		t.Errorf("Connections() = %d, want 1", got)
	}
}

func TestClickAllReachesEveryReplica(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	fs.AddChannel("C1", "ops", true)
	a, b := start(t, fs), start(t, fs)
	if err := fs.waitFor(ctx, func() bool { return len(fs.conns) == 2 }); err != nil {
		t.Fatal(err)
	}
	_, ts, err := a.api.PostMessageContext(ctx, "C1", slack.MsgOptionText("approve?", false), slack.MsgOptionBlocks(approvalBlocks("req-9")...))
	if err != nil {
		t.Fatal(err)
	}
	id, n, err := fs.ClickAll(ctx, Click{UserID: "U2", ChannelID: "C1", MessageTS: ts, ActionID: "approve"})
	if err != nil || n != 2 {
		t.Fatalf("ClickAll = %d, %v", n, err)
	}
	for _, h := range []*harness{a, b} {
		evt := h.next(ctx, t, socketmode.EventTypeInteractive)
		if evt.Request.EnvelopeID != id {
			t.Errorf("envelope %q, want %q", evt.Request.EnvelopeID, id)
		}
	}
	// Round-robin: two slash commands reach both replicas.
	for range 2 {
		if _, err := fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1"}); err != nil {
			t.Fatal(err)
		}
	}
	a.next(ctx, t, socketmode.EventTypeSlashCommand)
	b.next(ctx, t, socketmode.EventTypeSlashCommand)
}

func TestPingsKeepClientConnected(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	h := start(t, New(t, Options{PingInterval: time.Second}), socketmode.OptionPingInterval(3*time.Second))
	h.next(ctx, t, socketmode.EventTypeHello)
	// Negative check, bounded: no reconnect attempt within well over one client ping interval.
	deadline := time.After(4500 * time.Millisecond)
	for done := false; !done; {
		select {
		case evt := <-h.events:
			if evt.Type == socketmode.EventTypeConnecting || evt.Type == socketmode.EventTypeConnectionError {
				t.Fatalf("client reconnected: %s", evt.Type)
			}
		case <-deadline:
			done = true
		}
	}
	if got := h.fs.Connections(); got != 1 {
		t.Errorf("Connections() = %d, want 1", got)
	}
	if h.fs.Pongs() == 0 {
		t.Error("no PONG received")
	}
}

func TestConcurrentPostsHaveUniqueTS(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t, Options{NoRateLimits: true}) // 20 posts at once in one channel
	fs.AddChannel("C1", "ops", true)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	prev := ""
	for _, m := range fs.Messages() {
		if seen[m.TS] || m.TS <= prev {
			t.Errorf("ts %q repeated or out of order (after %q)", m.TS, prev)
		}
		seen[m.TS], prev = true, m.TS
	}
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func TestJSONBodyBearerAndMissingToken(t *testing.T) {
	fs := New(t)
	fs.AddChannel("C1", "ops", true)
	post := func(method, auth, contentType, body string) map[string]any {
		t.Helper()
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, fs.APIURL()+method, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := decodeJSON(resp, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := post("chat.postMessage", "xoxb-test", "application/json",
		`{"channel":"C1","text":"hi","blocks":[{"type":"section","block_id":"s","text":{"type":"mrkdwn","text":"x"}}]}`)
	if got["ok"] != true {
		t.Fatalf("JSON post = %v", got)
	}
	m, ok := fs.Message("C1", got["ts"].(string))
	if !ok || m.AllText() != "hi\nx" {
		t.Errorf("stored = %+v", m)
	}
	if got := post("auth.test", "", "application/x-www-form-urlencoded", ""); got["error"] != "not_authed" {
		t.Errorf("no token = %v, want not_authed", got)
	}
	if got := post("apps.connections.open", "xoxb-test", "application/json", ""); got["error"] != "invalid_auth" {
		t.Errorf("bot token on apps.connections.open = %v, want invalid_auth", got)
	}
}

func TestSlashAckWithInvalidBlocks(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	id, err := h.fs.SlashCommand(ctx, SlashCommand{UserID: "U1", ChannelID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	evt := h.next(ctx, t, socketmode.EventTypeSlashCommand)
	payload := map[string]any{"blocks": []any{map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": strings.Repeat("x", 151)}}}}
	if err := h.client.Ack(*evt.Request, payload); err != nil {
		t.Fatal(err)
	}
	ack, err := h.fs.WaitAck(ctx, id)
	if err != nil || ack.PayloadError != "invalid_blocks" {
		t.Errorf("ack = %+v, %v; want PayloadError invalid_blocks", ack, err)
	}
	if n := len(h.fs.Ephemerals()); n != 0 {
		t.Errorf("Ephemerals() = %d, want 0", n)
	}
}
