package slacktest

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// eventScopes are the scopes Slack requires before it sends each bot event, from the event's page
// (https://api.slack.com/events/<event>, "Required scopes").
var eventScopes = map[string]string{
	"user_change": "users:read", // https://api.slack.com/events/user_change
}

// BotEvents are the bot events the fake's app subscribes to.
func (s *Server) BotEvents() []string { return slices.Clone(s.opts.BotEvents) }

// ChangeUser changes a workspace member, as an admin deactivating an account (Deleted true) or a
// person editing their profile does, and, as Slack does, tells the app with a user_change event:
// an events_api envelope (https://api.slack.com/apis/socket-mode) to one connected socket, waiting
// up to ctx for one, carrying the whole user object with its "updated" time
// (https://api.slack.com/events/user_change). It returns the envelope_id, or "" when Slack would
// send nothing: the app does not subscribe to user_change, or the bot token lacks users:read, the
// event's required scope. A deactivated account stays in the directory, as in Slack (users.info
// and users.list keep answering for it, with deleted true).
func (s *Server) ChangeUser(ctx context.Context, u User) (string, error) {
	s.mu.Lock()
	s.users[u.ID] = u
	now := s.opts.Now().Unix()
	s.updated[u.ID] = max(now, s.updated[u.ID]+1) // Slack's "updated" moves forward with every change
	s.broadcastLocked()
	if !s.subscribedLocked("user_change") {
		s.mu.Unlock()
		return "", nil
	}
	s.seq++
	payload := map[string]any{
		"token":      verifyTok,
		"team_id":    s.opts.TeamID,
		"api_app_id": appID,
		"type":       "event_callback",
		"event_id":   fmt.Sprintf("Ev%08d", s.seq),
		"event_time": now,
		"event": map[string]any{
			"type":     "user_change",
			"user":     s.userJSONLocked(u),
			"cache_ts": now,
			"event_ts": s.newTSLocked(),
		},
		"authorizations":        []any{map[string]any{"team_id": s.opts.TeamID, "user_id": s.opts.BotUserID, "is_bot": true}},
		"is_ext_shared_channel": false,
	}
	env, err := s.registerLocked("events_api", payload, false, nil)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	_, err = s.deliver(ctx, env, false)
	return env.id, err
}

// subscribedLocked reports whether Slack would send event to the app: subscribed in the manifest,
// with the event's required scope granted.
func (s *Server) subscribedLocked(event string) bool {
	if !slices.Contains(s.opts.BotEvents, event) {
		return false
	}
	scope, ok := eventScopes[event]
	return ok && hasScope(s.opts.BotScopes, scope)
}

// maxUsersListLimit is the largest page users.list serves: "specify a limit value under 1000"
// (https://api.slack.com/methods/users.list, Pagination). Slack's answer to a larger limit is not
// documented; the fake serves 1000.
const maxUsersListLimit = 1000

// usersListWhole is how many members users.list returns without a limit before it answers
// limit_required, which the method page names for a collection too large
// (https://api.slack.com/methods/users.list, "limit").
const usersListWhole = 500

// apiUsersList models users.list (https://api.slack.com/methods/users.list): every member,
// deactivated ones included (with deleted true), in a stable order, paged by cursor
// (response_metadata.next_cursor, empty on the last page; an unknown cursor is invalid_cursor, as
// https://api.slack.com/docs/pagination says), emails only with users:read.email. Users:read and
// Tier 2 are checked before, with the other methods (scopes.go, rate.go).
func apiUsersList(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	limit := 0
	if v := p.get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fail("invalid_arguments")
		}
		limit = min(n, maxUsersListLimit)
	}
	start := 0
	if c := p.get("cursor"); c != "" {
		raw, err := base64.StdEncoding.DecodeString(c)
		after, ok := strings.CutPrefix(string(raw), "user:")
		i, found := slices.BinarySearch(ids, after)
		if err != nil || !ok || !found {
			return fail("invalid_cursor")
		}
		start = i
	}
	if limit == 0 {
		if len(ids)-start > usersListWhole {
			return fail("limit_required")
		}
		limit = len(ids) - start
	}
	end := min(start+limit, len(ids))
	members := make([]any, 0, end-start)
	for _, id := range ids[start:end] {
		members = append(members, s.userJSONLocked(s.users[id]))
	}
	next := ""
	if end < len(ids) {
		// Slack's cursors are opaque; its examples decode to "user:<next id>".
		next = base64.StdEncoding.EncodeToString([]byte("user:" + ids[end]))
	}
	return okResp{"members": members, "cache_ts": s.opts.Now().Unix(), "response_metadata": map[string]any{"next_cursor": next}}
}
