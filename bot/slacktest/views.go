package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// View is a modal opened with views.open, with its current content after views.update.
type View struct {
	ID, TriggerID, CallbackID, PrivateMetadata string
	ExternalID                                 string
	UserID                                     string // whose trigger opened it
	Title                                      string // title text
	Blocks                                     json.RawMessage
	// OpenedAfter is the time from issuing the trigger to views.open (per Options.Now); Slack allows 3 s.
	OpenedAfter time.Duration
	Updates     int
}

type viewState struct {
	View
	typ                  string
	title, close, submit json.RawMessage
	hash                 string
	submissions          int
}

// viewRequest is the view object of views.open / views.update (slack.ModalViewRequest).
type viewRequest struct {
	Type            string          `json:"type"`
	Title           json.RawMessage `json:"title"`
	Blocks          json.RawMessage `json:"blocks"`
	Close           json.RawMessage `json:"close"`
	Submit          json.RawMessage `json:"submit"`
	PrivateMetadata string          `json:"private_metadata"`
	CallbackID      string          `json:"callback_id"`
	ExternalID      string          `json:"external_id"`
}

// readView decodes and validates a view; Slack answers invalid_arguments with "[ERROR] …" messages.
func readView(raw string) (viewRequest, *errResp) {
	var v viewRequest
	bad := func(msgs ...string) (viewRequest, *errResp) {
		e := fail("invalid_arguments", msgs...)
		return v, &e
	}
	if raw == "" {
		return bad("[ERROR] missing required field: view")
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return bad("[ERROR] " + err.Error() + " [json-pointer:/view]")
	}
	val := &validator{}
	if v.Type != "modal" {
		val.errorf("/view/type", "must be a valid enum value")
	}
	decode := func(r json.RawMessage) any {
		var x any
		_ = json.Unmarshal(r, &x)
		return x
	}
	val.text("/view/title", decode(v.Title), maxViewTitle, true)
	for k, r := range map[string]json.RawMessage{"close": v.Close, "submit": v.Submit} {
		if x := decode(r); x != nil {
			val.text("/view/"+k, x, maxViewTitle, true)
		}
	}
	val.maxLen("/view/private_metadata", v.PrivateMetadata, maxPrivateMetadata)
	val.maxLen("/view/callback_id", v.CallbackID, maxID)
	blocks := string(v.Blocks)
	if blocks == "" || blocks == "null" {
		blocks = "[]"
	}
	if code, msgs := checkBlocks(blocks, maxModalBlocks, "/view/blocks"); code != "" {
		val.msgs = append(val.msgs, msgs...)
	}
	var arr []map[string]any
	_ = json.Unmarshal([]byte(blocks), &arr)
	for _, b := range arr {
		if b["type"] == "input" && decode(v.Submit) == nil {
			val.errorf("/view/submit", "submit is required when an input block is present")
			break
		}
	}
	if len(val.msgs) > 0 {
		return bad(val.msgs...)
	}
	v.Blocks = json.RawMessage(blocks)
	return v, nil
}

func (vs *viewState) apply(v viewRequest) {
	vs.typ, vs.title, vs.close, vs.submit = v.Type, v.Title, v.Close, v.Submit
	vs.CallbackID, vs.PrivateMetadata, vs.ExternalID = v.CallbackID, v.PrivateMetadata, v.ExternalID
	vs.Blocks = v.Blocks
	var t struct{ Text string }
	_ = json.Unmarshal(v.Title, &t)
	vs.Title = t.Text
}

// viewJSONLocked is the view object of views.* replies and view_submission payloads (slack.View).
func (s *Server) viewJSONLocked(vs *viewState) map[string]any {
	out := map[string]any{
		"id":                    vs.ID,
		"team_id":               s.opts.TeamID,
		"type":                  vs.typ,
		"title":                 vs.title,
		"blocks":                vs.Blocks,
		"private_metadata":      vs.PrivateMetadata,
		"callback_id":           vs.CallbackID,
		"state":                 map[string]any{"values": map[string]any{}},
		"hash":                  vs.hash,
		"clear_on_close":        false,
		"notify_on_close":       false,
		"root_view_id":          vs.ID,
		"app_id":                appID,
		"external_id":           vs.ExternalID,
		"bot_id":                botID,
		"app_installed_team_id": s.opts.TeamID,
	}
	if len(vs.close) > 0 {
		out["close"] = vs.close
	}
	if len(vs.submit) > 0 {
		out["submit"] = vs.submit
	}
	return out
}

func (s *Server) viewLocked(id, externalID string) *viewState {
	for _, vs := range s.views {
		if (id != "" && vs.ID == id) || (id == "" && externalID != "" && vs.ExternalID == externalID) {
			return vs
		}
	}
	return nil
}

// apiViewsOpen models views.open (slack-go sends JSON with a Bearer token): the trigger_id must be known
// (invalid_trigger_id), not exchanged before (exchanged_trigger_id) and younger than TriggerTTL
// (expired_trigger_id).
func apiViewsOpen(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	trig, ok := s.triggers[p.get("trigger_id")]
	switch {
	case !ok:
		return fail("invalid_trigger_id")
	case trig.used:
		return fail("exchanged_trigger_id")
	}
	age := s.opts.Now().Sub(trig.issued)
	if age > s.opts.TriggerTTL {
		return fail("expired_trigger_id")
	}
	v, e := readView(p.get("view"))
	if e != nil {
		return *e
	}
	if v.ExternalID != "" && s.viewLocked("", v.ExternalID) != nil {
		return fail("duplicate_external_id")
	}
	trig.used = true
	vs := &viewState{}
	vs.ID = s.nextIDLocked("V0")
	vs.TriggerID = p.get("trigger_id")
	vs.UserID = trig.user
	vs.OpenedAfter = age
	vs.apply(v)
	vs.hash = fmt.Sprintf("%d.%s", s.opts.Now().Unix(), randHex(4))
	s.views = append(s.views, vs)
	s.broadcastLocked()
	return okResp{"view": s.viewJSONLocked(vs)}
}

// apiViewsUpdate models views.update by view_id or external_id (not_found otherwise); a stale hash answers
// hash_conflict.
func apiViewsUpdate(s *Server, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.viewLocked(p.get("view_id"), p.get("external_id"))
	if vs == nil {
		return fail("not_found")
	}
	if h := p.get("hash"); h != "" && h != vs.hash {
		return fail("hash_conflict")
	}
	v, e := readView(p.get("view"))
	if e != nil {
		return *e
	}
	if v.ExternalID == "" {
		v.ExternalID = vs.ExternalID
	}
	vs.apply(v)
	vs.Updates++
	vs.hash = fmt.Sprintf("%d.%s", s.opts.Now().Unix(), randHex(4))
	s.broadcastLocked()
	return okResp{"view": s.viewJSONLocked(vs)}
}

// Views returns the views opened so far, in order, with current content.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.views))
	for _, vs := range s.views {
		out = append(out, vs.View)
	}
	return slices.Clip(out)
}

// WaitView blocks until some view satisfies pred and returns it.
func (s *Server) WaitView(ctx context.Context, pred func(View) bool) (View, error) {
	var found View
	err := s.waitFor(ctx, func() bool {
		for _, vs := range s.views {
			if pred(vs.View) {
				found = vs.View
				return true
			}
		}
		return false
	})
	return found, err
}
