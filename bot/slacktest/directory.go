package slacktest

import (
	"strings"
)

// User is a workspace member as users.info and users.lookupByEmail report it.
type User struct {
	ID, Name, RealName string
	// Email is returned as profile.email when non-empty and the bot token has users:read.email.
	Email          string
	IsBot, Deleted bool
}

type channel struct {
	id, name  string
	botMember bool
	members   map[string]bool // people in the channel (the bot is botMember)
}

func (c *channel) private() bool { return c.id[0] != 'C' }

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

// AddChannel adds or replaces a channel with the given members. The bot is a member only when
// botIsMember is true or a test invites it later (Invite with BotUserID).
//
// Channels never added exist too, to keep tests short: any ID starting with "C" (public) or "G"
// (private) is a channel without the bot and without members, named after its lower-cased ID. Other
// IDs answer channel_not_found. A user ID ("U…"/"W…") as chat.postMessage channel posts into the
// bot's DM with that user, channel "D"+userID, as Slack does.
func (s *Server) AddChannel(id, name string, botIsMember bool, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &channel{id: id, name: name, botMember: botIsMember, members: map[string]bool{}}
	for _, m := range members {
		c.members[m] = true
	}
	s.channels[id] = c
	s.broadcastLocked()
}

// Invite adds users to a channel (creating it as AddChannel's implicit channels are), as /invite
// does. Inviting BotUserID makes the bot a member.
func (s *Server) Invite(channelID string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.channelLocked(channelID, false)
	if code != "" {
		panic("slacktest: Invite: no channel " + channelID)
	}
	for _, u := range users {
		if u == s.opts.BotUserID {
			c.botMember = true
		} else {
			c.members[u] = true
		}
	}
	s.broadcastLocked()
}

// Kick removes users (or the bot) from a channel.
func (s *Server) Kick(channelID string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, code := s.channelLocked(channelID, false)
	if code != "" {
		return
	}
	for _, u := range users {
		if u == s.opts.BotUserID {
			c.botMember = false
		} else {
			delete(c.members, u)
		}
	}
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
	c := &channel{id: id, name: strings.ToLower(id), members: map[string]bool{}}
	switch id[0] {
	case 'C', 'G':
	case 'D':
		// A DM with a user: the app's messages tab, where the bot and that user are members.
		user := id[1:]
		if _, ok := s.users[user]; !ok {
			return nil, "channel_not_found"
		}
		c.botMember, c.members[user] = true, true
	default:
		return nil, "channel_not_found"
	}
	s.channels[id] = c
	return c, ""
}

// postableLocked is where the bot may post: a member of the channel. Elsewhere Slack answers
// not_in_channel for a public channel and channel_not_found for a private one, which the bot cannot
// see (https://api.slack.com/methods/chat.postMessage#errors).
func postableLocked(c *channel) string {
	switch {
	case c.botMember:
		return ""
	case c.private():
		return "channel_not_found"
	}
	return "not_in_channel"
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
	// https://api.slack.com/methods/users.info: the profile's email only with users:read.email.
	if u.Email != "" && hasScope(s.opts.BotScopes, "users:read.email") {
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
		"updated":   s.updated[u.ID],
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
	if c.private() && !c.botMember {
		return fail("channel_not_found") // a private channel is invisible to non-members
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
