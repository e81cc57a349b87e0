package slacktest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Slack: a response_url accepts at most 5 posts within 30 minutes.
const (
	responsePath    = "/_response/"
	responseURLUses = 5
	responseURLTTL  = 30 * time.Minute
)

// content is the text and blocks of a chat.* call, validated.
type content struct {
	text      string
	hasText   bool
	blocks    json.RawMessage
	hasBlocks bool
}

// readContent validates text and blocks. Slack answers msg_too_long over 40000 characters of text, and
// invalid_blocks / invalid_blocks_format for bad blocks.
func readContent(p params) (content, *errResp) {
	c := content{text: p.get("text"), hasText: p.has("text"), hasBlocks: p.has("blocks")}
	if utf8.RuneCountInString(c.text) > maxMessageText {
		e := fail("msg_too_long")
		return c, &e
	}
	if raw := strings.TrimSpace(p.get("blocks")); raw != "" {
		if code, msgs := checkBlocks(raw, maxMessageBlocks, "/blocks"); code != "" {
			e := fail(code, msgs...)
			return c, &e
		}
		if raw != "[]" && raw != "null" {
			c.blocks = json.RawMessage(raw)
		}
	}
	return c, nil
}

func noContent(c content, p params) bool {
	return c.text == "" && len(c.blocks) == 0 && strings.TrimSpace(p.get("attachments")) == ""
}

func apiPostMessage(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, code := s.channelLocked(p.get("channel"), true)
	if code != "" {
		return fail(code)
	}
	if code := postableLocked(ch); code != "" {
		return fail(code)
	}
	c, e := readContent(p)
	if e != nil {
		return *e
	}
	if noContent(c, p) {
		return fail("no_text")
	}
	// Slack accepts an unknown thread_ts silently; the fake stores it as given.
	m := &Message{Channel: ch.id, TS: s.newTSLocked(), ThreadTS: p.get("thread_ts"), User: s.opts.BotUserID,
		Text: c.text, Blocks: c.blocks, Posted: s.opts.Now(), Source: "chat.postMessage",
		Notified: s.notifiedLocked(ch, c.text, c.blocks)}
	s.messages = append(s.messages, m)
	s.broadcastLocked()
	return okResp{"channel": ch.id, "ts": m.TS, "message": s.messageJSONLocked(m)}
}

// apiUpdate models chat.update: text and blocks that are sent replace the stored ones (blocks=[] clears the
// blocks); fields not sent are kept.
func apiUpdate(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.get("channel") == "" {
		return fail("channel_not_found")
	}
	m := s.findLocked(s.messages, p.get("channel"), p.get("ts"))
	if m == nil {
		return fail("message_not_found")
	}
	if m.User != s.opts.BotUserID {
		return fail("cant_update_message")
	}
	c, e := readContent(p)
	if e != nil {
		return *e
	}
	if !c.hasText && !c.hasBlocks && !p.has("attachments") {
		return fail("no_text")
	}
	if c.hasText {
		m.Text = c.text
	}
	if c.hasBlocks {
		m.Blocks = c.blocks
	}
	m.Updates++
	s.broadcastLocked()
	return okResp{"channel": m.Channel, "ts": m.TS, "text": m.Text, "message": s.messageJSONLocked(m)}
}

// apiGetPermalink models chat.getPermalink (https://api.slack.com/methods/chat.getPermalink): it
// needs no scope, answers channel_not_found for an unknown channel and message_not_found for a
// ts that is not a current message of it, and returns the documented link form
// https://<workspace>.slack.com/archives/<channel>/p<ts without its dot>, with
// ?thread_ts=<parent>&cid=<channel> for a reply in a thread. Its rate limit is "special" (hundreds
// of calls a minute), which the fake does not model.
func apiGetPermalink(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := p.get("channel")
	if _, ok := s.channels[id]; !ok {
		return fail("channel_not_found")
	}
	m := s.findLocked(s.messages, id, p.get("message_ts"))
	if m == nil {
		return fail("message_not_found")
	}
	link := "https://" + teamDom + ".slack.com/archives/" + id + "/p" + strings.Replace(m.TS, ".", "", 1)
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		link += "?thread_ts=" + m.ThreadTS + "&cid=" + id
	}
	return okResp{"channel": id, "permalink": link}
}

// apiPostEphemeral models chat.postEphemeral: the bot must be in the channel, and so must the user
// (user_not_in_channel otherwise; https://api.slack.com/methods/chat.postEphemeral#errors).
func apiPostEphemeral(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, code := s.channelLocked(p.get("channel"), false)
	if code != "" {
		return fail(code)
	}
	user := p.get("user")
	if user == "" {
		return fail("user_not_found")
	}
	if code := postableLocked(ch); code != "" {
		return fail(code)
	}
	if _, ok := s.users[user]; !ok {
		return fail("user_not_found")
	}
	if !ch.members[user] {
		return fail("user_not_in_channel")
	}
	c, e := readContent(p)
	if e != nil {
		return *e
	}
	if noContent(c, p) {
		return fail("no_text")
	}
	m := &Message{Channel: ch.id, TS: s.newTSLocked(), ThreadTS: p.get("thread_ts"), User: user, Text: c.text,
		Blocks: c.blocks, Ephemeral: true, Posted: s.opts.Now(), Source: "chat.postEphemeral"}
	s.ephemerals = append(s.ephemerals, m)
	s.broadcastLocked()
	return okResp{"message_ts": m.TS}
}

func apiDelete(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.get("channel") == "" {
		return fail("channel_not_found")
	}
	m := s.findLocked(s.messages, p.get("channel"), p.get("ts"))
	if m == nil {
		return fail("message_not_found")
	}
	m.deleted = true
	s.broadcastLocked()
	return okResp{"channel": m.Channel, "ts": m.TS}
}

// responseURL is one response_url handed out in a slash command or block_actions payload.
type responseURL struct {
	id       string
	channel  string
	user     string
	original *Message // the clicked message (block_actions), nil for slash commands
	last     *Message // the last message posted through this URL (or the slash ack)
	issued   time.Time
	uses     int
}

// responseMsg is the JSON slack-go posts to a response_url (slack.Msg fields).
type responseMsg struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

func (s *Server) newResponseURLLocked(channel, user string, original *Message) (*responseURL, string) {
	r := &responseURL{id: s.nextIDLocked("R") + randHex(4), channel: channel, user: user, original: original,
		issued: s.opts.Now()}
	s.responses[r.id] = r
	return r, s.srv.URL + responsePath + r.id
}

// serveResponseURL models a response_url: replace_original / delete_original act on the clicked message (or, for
// a slash command, on the previous reply through the same URL), response_type in_channel posts a channel
// message, anything else an ephemeral to the user. It answers application/json {"ok":true}. After 5 uses it
// answers {"ok":false,"error":"used_url"}, after 30 minutes "expired_url" (error codes inferred, not documented).
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, responsePath)
	s.mu.Lock()
	s.calls["response_url"]++
	s.broadcastLocked()
	ru, ok := s.responses[id]
	s.mu.Unlock()
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	var msg responseMsg
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	if err != nil {
		writeJSON(w, fail("invalid_payload"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.opts.Now().Sub(ru.issued) > responseURLTTL:
		writeJSON(w, fail("expired_url"))
		return
	case ru.uses >= responseURLUses:
		writeJSON(w, fail("used_url"))
		return
	}
	if e := s.respondLocked(ru, msg, "response_url"); e != nil {
		writeJSON(w, *e)
		return
	}
	ru.uses++
	writeJSON(w, okResp{})
}

// respondLocked applies a response_url post or a slash command ack payload.
func (s *Server) respondLocked(ru *responseURL, msg responseMsg, source string) *errResp {
	var blocks json.RawMessage
	if raw := strings.TrimSpace(string(msg.Blocks)); raw != "" && raw != "null" {
		if code, msgs := checkBlocks(raw, maxMessageBlocks, "/blocks"); code != "" {
			e := fail(code, msgs...)
			return &e
		}
		if raw != "[]" {
			blocks = json.RawMessage(raw)
		}
	}
	if utf8.RuneCountInString(msg.Text) > maxMessageText {
		e := fail("msg_too_long")
		return &e
	}
	target := ru.original
	if target == nil {
		target = ru.last
	}
	defer s.broadcastLocked()
	switch {
	case msg.DeleteOriginal && target != nil:
		target.deleted = true
		return nil
	case msg.ReplaceOriginal && target != nil:
		target.Text, target.Blocks = msg.Text, blocks
		target.Updates++
		return nil
	}
	if msg.Text == "" && len(blocks) == 0 {
		e := fail("no_text")
		return &e
	}
	m := &Message{Channel: ru.channel, TS: s.newTSLocked(), ThreadTS: msg.ThreadTS, Text: msg.Text,
		Blocks: blocks, Posted: s.opts.Now(), Source: source}
	if msg.ResponseType == "in_channel" {
		m.User = s.opts.BotUserID
		if ch, code := s.channelLocked(ru.channel, false); code == "" {
			m.Notified = s.notifiedLocked(ch, m.Text, m.Blocks)
		}
		s.messages = append(s.messages, m)
	} else {
		m.User, m.Ephemeral = ru.user, true
		s.ephemerals = append(s.ephemerals, m)
	}
	ru.last = m
	return nil
}
