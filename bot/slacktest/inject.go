package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// envelope is one Socket Mode envelope the fake delivered (or is delivering).
type envelope struct {
	id              string
	typ             string
	payload         json.RawMessage
	acceptsResponse bool
	retryAttempt    int
	retryReason     string
	sentAt          time.Time // real clock, latest delivery
	acks            int
	ru              *responseURL // slash commands: where the ack payload goes
}

// frameLocked renders the envelope in the wire shape of slack-go's socketmode.Request.
func (e *envelope) frameLocked() []byte {
	m := map[string]any{
		"envelope_id":              e.id,
		"type":                     e.typ,
		"payload":                  e.payload,
		"accepts_response_payload": e.acceptsResponse,
	}
	if e.retryAttempt > 0 {
		m["retry_attempt"] = e.retryAttempt
		m["retry_reason"] = e.retryReason
	}
	b, _ := json.Marshal(m)
	return b
}

func (s *Server) deliver(ctx context.Context, env *envelope, all bool) (int, error) {
	return s.send(ctx, all, env.frameLocked, func() { env.sentAt = time.Now() })
}

// registerLocked stores env (so acks can match it) and returns it.
func (s *Server) registerLocked(typ string, payload any, acceptsResponse bool, ru *responseURL) (*envelope, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	env := &envelope{id: uuid(), typ: typ, payload: b, acceptsResponse: acceptsResponse, ru: ru}
	s.envelopes[env.id] = env
	return env, nil
}

// trigger is a trigger_id handed out with a slash command or interaction, exchangeable once by views.open.
type trigger struct {
	user   string
	issued time.Time
	used   bool
}

func (s *Server) newTriggerLocked(id, user string) string {
	if id == "" {
		s.seq++
		id = fmt.Sprintf("%d.%d.%s", 1000000000+s.seq, s.opts.Now().Unix(), randHex(16))
	}
	s.triggers[id] = &trigger{user: user, issued: s.opts.Now()}
	return id
}

func (s *Server) userObjLocked(id, team string) map[string]any {
	name := s.userNameLocked(id)
	return map[string]any{"id": id, "username": name, "name": name, "team_id": team}
}

func (s *Server) teamObj(team string) map[string]any {
	return map[string]any{"id": team, "domain": teamDom}
}

// SlashCommand is a slash command invocation. Command defaults to "/metabase", TeamID to the server's team and
// TriggerID to a fresh unique trigger.
//
// Text is what the person typed. The payload carries it as Slack sends it for a command with
// should_escape: true (see wireTextLocked): &, < and > escaped, and known @names, #channels, emails
// and links turned into Slack's entities. With Raw, Text is already in that wire form and is sent
// unchanged, for tests of what a forged or unusual payload does.
type SlashCommand struct {
	UserID, ChannelID, Text, Command, TeamID, TriggerID string
	Raw                                                 bool
}

// SlashCommand delivers a slash_commands envelope (accepts_response_payload true) to one connected socket,
// waiting up to ctx for a client, and returns its envelope_id. The payload's response_url points at this fake;
// the first ack's payload text/blocks are recorded as an ephemeral reply (Source "ack"), or a channel message
// with "response_type":"in_channel".
func (s *Server) SlashCommand(ctx context.Context, c SlashCommand) (string, error) {
	s.mu.Lock()
	if c.Command == "" {
		c.Command = "/metabase"
	}
	if c.TeamID == "" {
		c.TeamID = s.opts.TeamID
	}
	text := c.Text
	if !c.Raw {
		text = s.wireTextLocked(c.Text)
	}
	// Slack only lets a member type in a channel, so the person running the command is one.
	if ch, code := s.channelLocked(c.ChannelID, false); code == "" {
		ch.members[c.UserID] = true
	}
	trig := s.newTriggerLocked(c.TriggerID, c.UserID)
	ru, respURL := s.newResponseURLLocked(c.ChannelID, c.UserID, nil)
	env, err := s.registerLocked("slash_commands", map[string]any{
		"token":                 verifyTok,
		"team_id":               c.TeamID,
		"team_domain":           teamDom,
		"channel_id":            c.ChannelID,
		"channel_name":          s.channelNameLocked(c.ChannelID),
		"user_id":               c.UserID,
		"user_name":             s.userNameLocked(c.UserID),
		"command":               c.Command,
		"text":                  text,
		"api_app_id":            appID,
		"is_enterprise_install": "false",
		"response_url":          respURL,
		"trigger_id":            trig,
	}, true, ru)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	_, err = s.deliver(ctx, env, false)
	return env.id, err
}

// Click is a user pressing an interactive element of a posted message. TeamID defaults to the server's team.
type Click struct {
	UserID, ChannelID, MessageTS, ActionID, TeamID string
}

// Click delivers a block_actions interactive envelope for the element with c.ActionID in the CURRENT blocks of the
// message (channel message, or an ephemeral shown to c.UserID) and returns its envelope_id. It fails without
// sending when the message or the element is gone: that is how a test sees that buttons were removed.
//
// The payload echoes the stored blocks exactly, and the action carries block_id (the block's own, or
// "slacktest-b<index>" when the bot set none; Slack would generate a random one), value, text and style.
func (s *Server) Click(ctx context.Context, c Click) (string, error) {
	return s.click(ctx, c, nil)
}

// ClickWithValue is Click with a forged value: a button's value, a static_select/overflow/radio option value, a
// users_select user, a channels/conversations_select ID or a datepicker date.
func (s *Server) ClickWithValue(ctx context.Context, c Click, value string) (string, error) {
	return s.click(ctx, c, &value)
}

// ClickAll delivers one click envelope (one envelope_id) to EVERY connected socket, as when replicas race for
// the same interaction. It returns the envelope_id and how many sockets it was written to.
func (s *Server) ClickAll(ctx context.Context, c Click) (string, int, error) {
	s.mu.Lock()
	env, err := s.buildClickLocked(c, nil)
	s.mu.Unlock()
	if err != nil {
		return "", 0, err
	}
	n, err := s.deliver(ctx, env, true)
	return env.id, n, err
}

func (s *Server) click(ctx context.Context, c Click, value *string) (string, error) {
	s.mu.Lock()
	env, err := s.buildClickLocked(c, value)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	_, err = s.deliver(ctx, env, false)
	return env.id, err
}

// findElement returns the block index, block and element with actionID in a blocks array.
func findElement(blocks []any, actionID string) (int, map[string]any, map[string]any) {
	for i, b := range blocks {
		blk, _ := b.(map[string]any)
		var els []any
		switch blk["type"] {
		case "actions", "context_actions":
			els, _ = blk["elements"].([]any)
		case "section":
			els = []any{blk["accessory"]}
		case "input":
			els = []any{blk["element"]}
		}
		for _, e := range els {
			if el, ok := e.(map[string]any); ok && el["action_id"] == actionID {
				return i, blk, el
			}
		}
	}
	return -1, nil, nil
}

func findOption(el map[string]any, value string) map[string]any {
	opts, _ := el["options"].([]any)
	if groups, ok := el["option_groups"].([]any); ok {
		for _, g := range groups {
			if gm, ok := g.(map[string]any); ok {
				more, _ := gm["options"].([]any)
				opts = append(opts, more...)
			}
		}
	}
	for _, o := range opts {
		if om, ok := o.(map[string]any); ok && om["value"] == value {
			return om
		}
	}
	return nil
}

func (s *Server) buildClickLocked(c Click, value *string) (*envelope, error) {
	if c.TeamID == "" {
		c.TeamID = s.opts.TeamID
	}
	m := s.findLocked(s.messages, c.ChannelID, c.MessageTS)
	if m == nil {
		if e := s.findLocked(s.ephemerals, c.ChannelID, c.MessageTS); e != nil && e.User == c.UserID {
			m = e
		}
	}
	if m == nil {
		return nil, fmt.Errorf("slacktest: no message %s/%s visible to %s", c.ChannelID, c.MessageTS, c.UserID)
	}
	var blocks []any
	if len(m.Blocks) > 0 {
		if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
			return nil, err
		}
	}
	i, blk, el := findElement(blocks, c.ActionID)
	if el == nil {
		return nil, fmt.Errorf("slacktest: message %s/%s has no element with action_id %q", c.ChannelID, c.MessageTS, c.ActionID)
	}
	blockID, _ := blk["block_id"].(string)
	if blockID == "" {
		blockID = fmt.Sprintf("slacktest-b%d", i)
	}
	typ, _ := el["type"].(string)
	action := map[string]any{"type": typ, "action_id": c.ActionID, "block_id": blockID, "action_ts": s.newTSLocked()}
	switch typ {
	case "button":
		action["text"] = el["text"]
		if v, ok := el["value"]; ok {
			action["value"] = v
		}
		if value != nil {
			action["value"] = *value
		}
		if st, ok := el["style"]; ok {
			action["style"] = st
		}
	case "static_select", "overflow", "radio_buttons":
		if value == nil {
			return nil, fmt.Errorf("slacktest: %s %q needs ClickWithValue", typ, c.ActionID)
		}
		opt := findOption(el, *value)
		if opt == nil {
			return nil, fmt.Errorf("slacktest: %s %q has no option %q", typ, c.ActionID, *value)
		}
		action["selected_option"] = opt
	case "users_select", "conversations_select", "channels_select", "datepicker", "timepicker":
		if value == nil {
			return nil, fmt.Errorf("slacktest: %s %q needs ClickWithValue", typ, c.ActionID)
		}
		key := map[string]string{
			"users_select": "selected_user", "conversations_select": "selected_conversation",
			"channels_select": "selected_channel", "datepicker": "selected_date", "timepicker": "selected_time",
		}[typ]
		action[key] = *value
	default:
		if value != nil {
			action["value"] = *value
		}
	}
	_, respURL := s.newResponseURLLocked(m.Channel, c.UserID, m)
	container := map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": m.Ephemeral}
	if m.ThreadTS != "" {
		container["thread_ts"] = m.ThreadTS
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  s.userObjLocked(c.UserID, c.TeamID),
		"api_app_id":            appID,
		"token":                 verifyTok,
		"container":             container,
		"trigger_id":            s.newTriggerLocked("", c.UserID),
		"team":                  s.teamObj(c.TeamID),
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": m.Channel, "name": s.channelNameLocked(m.Channel)},
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          respURL,
		"actions":               []any{action},
	}
	// Slack omits the message object for ephemeral messages.
	if !m.Ephemeral {
		payload["message"] = s.messageJSONLocked(m)
	}
	return s.registerLocked("interactive", payload, false, nil)
}

// InputValue is what a user entered in one input element of a modal. Set the field that matches the element:
// Value (plain_text_input), SelectedUser (users_select), SelectedDate (datepicker, "2006-01-02") or
// SelectedOption (static_select: an option value present in the view).
type InputValue struct {
	Value, SelectedUser, SelectedDate, SelectedOption string
}

// ViewSubmission is a user pressing Submit on a modal opened with views.open. UserID defaults to the user the
// trigger belonged to. Values is keyed by block_id, then action_id.
type ViewSubmission struct {
	UserID, ViewID string
	Values         map[string]map[string]InputValue
}

// SubmitView delivers a view_submission interactive envelope for an opened view and returns its envelope_id. Like
// Slack, state.values holds every input block of the view (null values for those not filled in); values for a
// block or action not in the view are an error.
func (s *Server) SubmitView(ctx context.Context, v ViewSubmission) (string, error) {
	s.mu.Lock()
	env, err := s.buildSubmitLocked(v)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	_, err = s.deliver(ctx, env, false)
	return env.id, err
}

func (s *Server) buildSubmitLocked(v ViewSubmission) (*envelope, error) {
	vs := s.viewLocked(v.ViewID, "")
	if vs == nil {
		return nil, fmt.Errorf("slacktest: no view %q", v.ViewID)
	}
	if v.UserID == "" {
		v.UserID = vs.UserID
	}
	var blocks []any
	if len(vs.Blocks) > 0 {
		if err := json.Unmarshal(vs.Blocks, &blocks); err != nil {
			return nil, err
		}
	}
	values := map[string]map[string]any{}
	used := 0
	for _, b := range blocks {
		blk, _ := b.(map[string]any)
		if blk["type"] != "input" {
			continue
		}
		el, _ := blk["element"].(map[string]any)
		blockID, _ := blk["block_id"].(string)
		actionID, _ := el["action_id"].(string)
		if blockID == "" || actionID == "" {
			continue
		}
		in, ok := v.Values[blockID][actionID]
		if ok {
			used++
		}
		typ, _ := el["type"].(string)
		entry := map[string]any{"type": typ}
		switch typ {
		case "users_select":
			entry["selected_user"] = nullIfEmpty(in.SelectedUser)
		case "datepicker":
			entry["selected_date"] = nullIfEmpty(in.SelectedDate)
		case "static_select":
			entry["selected_option"] = nil
			if in.SelectedOption != "" {
				opt := findOption(el, in.SelectedOption)
				if opt == nil {
					return nil, fmt.Errorf("slacktest: %s/%s has no option %q", blockID, actionID, in.SelectedOption)
				}
				entry["selected_option"] = opt
			}
		default:
			entry["value"] = nullIfEmpty(in.Value)
		}
		if values[blockID] == nil {
			values[blockID] = map[string]any{}
		}
		values[blockID][actionID] = entry
	}
	total := 0
	for _, m := range v.Values {
		total += len(m)
	}
	if used != total {
		return nil, errors.New("slacktest: ViewSubmission.Values names a block_id/action_id that is not an input of the view")
	}
	view := s.viewJSONLocked(vs)
	view["state"] = map[string]any{"values": values}
	payload := map[string]any{
		"type":                  "view_submission",
		"team":                  s.teamObj(s.opts.TeamID),
		"user":                  s.userObjLocked(v.UserID, s.opts.TeamID),
		"api_app_id":            appID,
		"token":                 verifyTok,
		"trigger_id":            s.newTriggerLocked("", v.UserID),
		"view":                  view,
		"response_urls":         []any{},
		"enterprise":            nil,
		"is_enterprise_install": false,
	}
	vs.submissions++
	return s.registerLocked("interactive", payload, true, nil)
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Redeliver sends envelopeID again (to one socket) with retry_attempt incremented and retry_reason "timeout", as
// Slack does when an envelope is not acked in time.
func (s *Server) Redeliver(ctx context.Context, envelopeID string) error {
	s.mu.Lock()
	env, ok := s.envelopes[envelopeID]
	if ok {
		env.retryAttempt++
		env.retryReason = "timeout"
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("slacktest: unknown envelope %q", envelopeID)
	}
	_, err := s.deliver(ctx, env, false)
	return err
}
