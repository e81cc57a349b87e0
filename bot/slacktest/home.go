package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"sigs.k8s.io/yaml"
)

// maxHomeView is the largest view views.publish takes: "view_too_large: Error returned if the
// provided view is greater than 250kb" (https://api.slack.com/methods/views.publish, Errors).
const maxHomeView = 250 * 1000

// Manifest is what the fake reads from the app manifest besides scopes: whether the app has a
// Home tab and which events it subscribes to.
type Manifest struct {
	// HomeTab is features.app_home.home_tab_enabled: views.publish answers not_enabled without it.
	HomeTab bool
	// BotEvents is settings.event_subscriptions.bot_events: Slack sends only those.
	BotEvents []string
}

// ReadManifest returns the Home tab switch and the bot events of the Slack app manifest at path.
func ReadManifest(path string) (Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, err
	}
	var m struct {
		Features struct {
			AppHome struct {
				HomeTab bool `json:"home_tab_enabled"`
			} `json:"app_home"`
		} `json:"features"`
		Settings struct {
			Events struct {
				Bot []string `json:"bot_events"`
			} `json:"event_subscriptions"`
		} `json:"settings"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	return Manifest{HomeTab: m.Features.AppHome.HomeTab, BotEvents: m.Settings.Events.Bot}, nil
}

// HomeView is what the bot published on one person's Home tab.
type HomeView struct {
	ID, UserID, Hash, CallbackID, PrivateMetadata string
	Blocks                                        json.RawMessage
	// Publishes counts the views.publish calls that set it.
	Publishes int
	// PublishedAt is when the last of them arrived, by the real clock (spacing is real time).
	PublishedAt time.Time
}

// HasAction reports whether the view has an element with actionID, in the block blockID when
// blockID is not empty.
func (v HomeView) HasAction(blockID, actionID string) bool {
	var blocks []any
	_ = json.Unmarshal(v.Blocks, &blocks)
	_, _, el := findElementIn(blocks, blockID, actionID)
	return el != nil
}

// Text is the view's blocks as JSON, for tests that look for words or ids in them.
func (v HomeView) Text() string { return string(v.Blocks) }

// homeJSONLocked is the view object of a Home view (views.publish's answer, the view of a click
// on it and of app_home_opened).
func (s *Server) homeJSONLocked(h *HomeView) map[string]any {
	return map[string]any{
		"id": h.ID, "team_id": s.opts.TeamID, "type": "home", "blocks": h.Blocks,
		"private_metadata": h.PrivateMetadata, "callback_id": h.CallbackID,
		"state": map[string]any{"values": map[string]any{}}, "hash": h.Hash,
		"clear_on_close": false, "notify_on_close": false, "root_view_id": h.ID, "previous_view_id": nil,
		"app_id": appID, "external_id": "", "bot_id": botID, "app_installed_team_id": s.opts.TeamID,
	}
}

// apiViewsPublish models views.publish (https://api.slack.com/methods/views.publish): no scope
// beyond the bot token, Tier 4 (rate.go); a user the workspace does not have is invalid_arguments
// ("invalid `user_id`", the page's example); not_enabled when the app's Home tab is off;
// view_too_large past 250 kB; hash_conflict when hash is given and is not the current view's; the
// view must be of type home with at most 100 blocks
// (https://api.slack.com/reference/surfaces/views). A person's Home view keeps its id across
// publishes; each publish gives it a new hash.
func apiViewsPublish(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	user := p.get("user_id")
	if _, ok := s.users[user]; !ok {
		return fail("invalid_arguments", "invalid `user_id`")
	}
	if !s.homeTab {
		return fail("not_enabled")
	}
	raw := p.get("view")
	if len(raw) > maxHomeView {
		return fail("view_too_large")
	}
	var v viewRequest
	if err := json.Unmarshal([]byte(raw), &v); err != nil || v.Type != "home" {
		return fail("invalid_arguments", "[ERROR] must be a valid enum value [json-pointer:/view/type]")
	}
	val := &validator{}
	val.maxLen("/view/private_metadata", v.PrivateMetadata, maxPrivateMetadata)
	val.maxLen("/view/callback_id", v.CallbackID, maxID)
	blocks := string(v.Blocks)
	if blocks == "" || blocks == "null" {
		blocks = "[]"
	}
	if code, msgs := checkBlocks(blocks, maxModalBlocks, "/view/blocks"); code != "" {
		val.msgs = append(val.msgs, msgs...)
	}
	if len(val.msgs) > 0 {
		return fail("invalid_arguments", val.msgs...)
	}
	h := s.homes[user]
	if hash := p.get("hash"); hash != "" && (h == nil || h.Hash != hash) {
		return fail("hash_conflict")
	}
	if h == nil {
		h = &HomeView{ID: s.nextIDLocked("VH"), UserID: user}
		s.homes[user] = h
	}
	h.Blocks, h.CallbackID, h.PrivateMetadata = json.RawMessage(blocks), v.CallbackID, v.PrivateMetadata
	h.Hash = fmt.Sprintf("%d.%s", s.opts.Now().Unix(), randHex(4))
	h.Publishes++
	h.PublishedAt = time.Now()
	s.broadcastLocked()
	return okResp{"view": s.homeJSONLocked(h)}
}

// SetHomeTab turns the app's Home tab on or off, as the app's settings page does; New reads it
// from the manifest.
func (s *Server) SetHomeTab(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.homeTab = on
}

// Home returns user's Home view as last published, and whether there is one.
func (s *Server) Home(user string) (HomeView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.homes[user]
	if h == nil {
		return HomeView{}, false
	}
	return *h, true
}

// WaitHome blocks until user's Home view satisfies pred and returns it.
func (s *Server) WaitHome(ctx context.Context, user string, pred func(HomeView) bool) (HomeView, error) {
	var found HomeView
	err := s.waitFor(ctx, func() bool {
		if h := s.homes[user]; h != nil && pred(*h) {
			found = *h
			return true
		}
		return false
	})
	return found, err
}

// OpenHome delivers app_home_opened for user's Home tab (https://api.slack.com/events/app_home_opened)
// in an events_api envelope, with the view when one was published, and returns its envelope_id.
// Slack sends an event only to an app subscribed to it: it fails, sending nothing, when the
// manifest's bot_events lack app_home_opened.
func (s *Server) OpenHome(ctx context.Context, user string) (string, error) {
	s.mu.Lock()
	if !slices.Contains(s.botEvents, "app_home_opened") {
		s.mu.Unlock()
		return "", fmt.Errorf("slacktest: the app does not subscribe to app_home_opened (settings.event_subscriptions.bot_events)")
	}
	ts := s.newTSLocked()
	ev := map[string]any{"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home", "event_ts": ts}
	if h := s.homes[user]; h != nil {
		ev["view"] = s.homeJSONLocked(h)
	}
	payload := map[string]any{
		"token": verifyTok, "team_id": s.opts.TeamID, "api_app_id": appID, "event": ev,
		"type": "event_callback", "event_id": s.nextIDLocked("Ev"), "event_time": s.opts.Now().Unix(),
	}
	env, err := s.registerLocked("events_api", payload, false, nil)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	_, err = s.deliver(ctx, env, false)
	return env.id, err
}

// HomeClick is a person pressing a button on their own Home tab: the element with ActionID in
// the block BlockID (a Home lists several requests, each with the same action ids).
type HomeClick struct {
	UserID, BlockID, ActionID string
}

// ClickHome delivers block_actions for a button of c.UserID's current Home view, as Slack sends
// it (https://api.slack.com/reference/interaction-payloads/block-actions): the container is the
// view ({type: view, view_id}), the view object is included, and there is neither channel, nor
// message, nor response_url. It fails without sending when the element is not on the view.
func (s *Server) ClickHome(ctx context.Context, c HomeClick) (string, error) {
	s.mu.Lock()
	h := s.homes[c.UserID]
	if h == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slacktest: no Home view published to %s", c.UserID)
	}
	var blocks []any
	_ = json.Unmarshal(h.Blocks, &blocks)
	_, _, el := findElementIn(blocks, c.BlockID, c.ActionID)
	if el == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slacktest: the Home of %s has no %q in block %q", c.UserID, c.ActionID, c.BlockID)
	}
	action := map[string]any{"type": el["type"], "action_id": c.ActionID, "block_id": c.BlockID,
		"action_ts": s.newTSLocked(), "text": el["text"], "value": el["value"]}
	if st, ok := el["style"]; ok {
		action["style"] = st
	}
	payload := map[string]any{
		"type": "block_actions", "user": s.userObjLocked(c.UserID, s.opts.TeamID), "api_app_id": appID,
		"token": verifyTok, "container": map[string]any{"type": "view", "view_id": h.ID},
		"trigger_id": s.newTriggerLocked("", c.UserID), "team": s.teamObj(s.opts.TeamID),
		"enterprise": nil, "is_enterprise_install": false,
		"view": s.homeJSONLocked(h), "actions": []any{action},
	}
	env, err := s.registerLocked("interactive", payload, false, nil)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	_, err = s.deliver(ctx, env, false)
	return env.id, err
}

// findElementIn is findElement limited to the block blockID when it is not empty.
func findElementIn(blocks []any, blockID, actionID string) (int, map[string]any, map[string]any) {
	for i, b := range blocks {
		blk, _ := b.(map[string]any)
		if blockID != "" && blk["block_id"] != blockID {
			continue
		}
		if j, bl, el := findElement([]any{b}, actionID); el != nil {
			return i + j, bl, el
		}
	}
	return -1, nil, nil
}
