package slacktest

import (
	"strings"
)

// User is a workspace member as users.info and users.lookupByEmail report it.
type User struct {
	ID, Name, RealName string
	// Email is returned as profile.email only when non-empty (as if the token had users:read.email).
	Email          string
	IsBot, Deleted bool
}

type channel struct {
	id, name  string
	botMember bool
}

// AddUser adds or replaces a user in the directory.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
	s.broadcastLocked()
}

// SetUserGroup sets the members of user group id (an "S…" ID) for usergroups.users.list.
// Unknown groups answer {"ok":false,"error":"no_such_subteam"}.
func (s *Server) SetUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = append([]string{}, members...)
	s.broadcastLocked()
}

// AddChannel adds or replaces a channel. Posting where the bot is not a member answers not_in_channel.
//
// Channels never added are implicit, to keep tests short: any ID starting with "C", "G" or "D" exists and has the
// bot as a member, named after its lower-cased ID. Other IDs answer channel_not_found. A user ID ("U…"/"W…") as
// chat.postMessage channel posts into the bot's DM with that user, channel "D"+userID, as Slack does with a D ID.
func (s *Server) AddChannel(id, name string, botIsMember bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &channel{id: id, name: name, botMember: botIsMember}
	s.broadcastLocked()
}

// channelLocked resolves a channel ID, creating implicit channels on first use. It returns a Slack error code
// ("channel_not_found") when the channel does not exist.
func (s *Server) channelLocked(id string, allowUser bool) (*channel, string) {
	if id == "" {
		return nil, "channel_not_found"
	}
	if allowUser && (strings.HasPrefix(id, "U") || strings.HasPrefix(id, "W")) {
		if _, ok := s.users[id]; !ok {
			return nil, "channel_not_found"
		}
		id = "D" + id
	}
	if c, ok := s.channels[id]; ok {
		return c, ""
	}
	switch id[0] {
	case 'C', 'G', 'D':
		c := &channel{id: id, name: strings.ToLower(id), botMember: true}
		s.channels[id] = c
		return c, ""
	}
	return nil, "channel_not_found"
}

func (s *Server) userNameLocked(id string) string {
	if u, ok := s.users[id]; ok && u.Name != "" {
		return u.Name
	}
	return strings.ToLower(id)
}

func (s *Server) channelNameLocked(id string) string {
	if c, ok := s.channels[id]; ok {
		return c.name
	}
	return strings.ToLower(id)
}

func (s *Server) userJSONLocked(u User) map[string]any {
	profile := map[string]any{
		"real_name":    u.RealName,
		"display_name": u.Name,
	}
	if u.Email != "" {
		profile["email"] = u.Email
	}
	return map[string]any{
		"id":        u.ID,
		"team_id":   s.opts.TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"deleted":   u.Deleted,
		"is_bot":    u.IsBot,
		"profile":   profile,
	}
}

func apiUsersInfo(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[p.get("user")]
	if !ok {
		return fail("user_not_found")
	}
	return okResp{"user": s.userJSONLocked(u)}
}

func apiUsersLookupByEmail(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	email := p.get("email")
	for _, u := range s.users {
		if email != "" && strings.EqualFold(u.Email, email) {
			return okResp{"user": s.userJSONLocked(u)}
		}
	}
	return fail("users_not_found")
}

func apiUserGroupsUsersList(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.groups[p.get("usergroup")]
	if !ok {
		return fail("no_such_subteam")
	}
	return okResp{"users": append([]string{}, members...)}
}

func (s *Server) channelJSONLocked(c *channel) map[string]any {
	return map[string]any{
		"id":              c.id,
		"name":            c.name,
		"is_channel":      c.id[0] == 'C',
		"is_group":        c.id[0] == 'G',
		"is_im":           c.id[0] == 'D',
		"is_private":      c.id[0] != 'C',
		"is_member":       c.botMember,
		"context_team_id": s.opts.TeamID,
	}
}

func apiConversationsInfo(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.channelLocked(p.get("channel"), false)
	if code != "" {
		return fail(code)
	}
	return okResp{"channel": s.channelJSONLocked(c)}
}

// conversations.join: public channels only, as in Slack (method_not_supported_for_channel_type otherwise).
func apiConversationsJoin(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.channelLocked(p.get("channel"), false)
	if code != "" {
		return fail(code)
	}
	if c.id[0] != 'C' {
		return fail("method_not_supported_for_channel_type")
	}
	c.botMember = true
	s.broadcastLocked()
	return okResp{"channel": s.channelJSONLocked(c)}
}

func apiAuthTest(s *Server, _ params) any {
	return okResp{
		"url":     "https://" + teamDom + ".slack.com/",
		"team":    teamName,
		"user":    botName,
		"team_id": s.opts.TeamID,
		"user_id": s.opts.BotUserID,
		"bot_id":  botID,
	}
}
