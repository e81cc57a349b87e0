package slacktest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Message is a message as the fake currently holds it (its content after any chat.update or replace_original).
type Message struct {
	Channel  string
	TS       string // for ephemerals: the message_ts chat.postEphemeral returned
	ThreadTS string
	// User is the author for channel messages (the bot) and the recipient for ephemerals.
	User      string
	Text      string
	Blocks    json.RawMessage // exactly as posted; nil when the message has no blocks
	Ephemeral bool
	Updates   int       // chat.update / replace_original count
	Posted    time.Time // per Options.Now
	// Source names what created the message: "chat.postMessage", "chat.postEphemeral", "response_url" or "ack"
	// (a slash command ack payload, shown to the invoking user).
	Source string
	// Notified are the users a channel message notified when it was posted (mentions.go); an edit
	// notifies nobody, as in Slack.
	Notified []string

	deleted bool
}

// AllText is the message text and every "text" string found anywhere in its blocks, joined with newlines, for
// assertions that should not depend on block layout.
func (m Message) AllText() string {
	parts := []string{}
	if m.Text != "" {
		parts = append(parts, m.Text)
	}
	var v any
	if len(m.Blocks) > 0 && json.Unmarshal(m.Blocks, &v) == nil {
		walkJSON(v, func(obj map[string]any) {
			if s, ok := obj["text"].(string); ok {
				parts = append(parts, s)
			}
		})
	}
	return strings.Join(parts, "\n")
}

// HasAction reports whether any interactive element in the message's current blocks has this action_id.
func (m Message) HasAction(actionID string) bool {
	var v any
	if len(m.Blocks) == 0 || json.Unmarshal(m.Blocks, &v) != nil {
		return false
	}
	found := false
	walkJSON(v, func(obj map[string]any) {
		if obj["action_id"] == actionID {
			found = true
		}
	})
	return found
}

// walkJSON calls f for every JSON object in v, depth first, in document order.
func walkJSON(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			walkJSON(v[k], f)
		}
	case []any:
		for _, x := range v {
			walkJSON(x, f)
		}
	}
}

func snapshot(ms []*Message) []Message {
	out := []Message{}
	for _, m := range ms {
		if !m.deleted {
			out = append(out, *m)
		}
	}
	return out
}

// Messages returns every channel (non-ephemeral, not deleted) message in post order, with current content.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot(s.messages)
}

// Ephemerals returns every ephemeral message in post order: chat.postEphemeral, ephemeral response_url replies
// and slash command ack payloads.
func (s *Server) Ephemerals() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot(s.ephemerals)
}

// Message returns the current channel message at (channel, ts).
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.findLocked(s.messages, channel, ts); m != nil {
		return *m, true
	}
	return Message{}, false
}

func (s *Server) findLocked(ms []*Message, channel, ts string) *Message {
	for _, m := range ms {
		if !m.deleted && m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// WaitMessage blocks until some current channel message satisfies pred (existing ones are checked first) and
// returns it, or returns ctx's error.
func (s *Server) WaitMessage(ctx context.Context, pred func(Message) bool) (Message, error) {
	return s.waitMessage(ctx, func() []*Message { return s.messages }, pred)
}

// WaitEphemeral is WaitMessage for ephemeral messages.
func (s *Server) WaitEphemeral(ctx context.Context, pred func(Message) bool) (Message, error) {
	return s.waitMessage(ctx, func() []*Message { return s.ephemerals }, pred)
}

func (s *Server) waitMessage(ctx context.Context, list func() []*Message, pred func(Message) bool) (Message, error) {
	var found Message
	err := s.waitFor(ctx, func() bool {
		for _, m := range list() {
			if !m.deleted && pred(*m) {
				found = *m
				return true
			}
		}
		return false
	})
	return found, err
}

// messageJSONLocked is the message object Slack returns from chat.* and puts in block_actions payloads.
func (s *Server) messageJSONLocked(m *Message) map[string]any {
	out := map[string]any{
		"type":   "message",
		"user":   s.opts.BotUserID,
		"bot_id": botID,
		"app_id": appID,
		"team":   s.opts.TeamID,
		"text":   m.Text,
		"ts":     m.TS,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	if m.Updates > 0 {
		out["edited"] = map[string]any{"user": s.opts.BotUserID, "ts": m.TS}
	}
	return out
}
