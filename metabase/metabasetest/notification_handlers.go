package metabasetest

import (
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Messages of the notification endpoints (their upstream files are named
// where they are used).
const (
	msgCreatorRequired   = "creator_id required for change-creator"
	msgAlertNotYours     = "Non-admin users without monitoring or subscription permissions are only allowed to update alerts that they created"
	descPositiveInt      = "value must be an integer greater than zero."
	descBoolean          = "value must be a valid boolean string ('true' or 'false')."
	descNullableBoolean  = "nullable boolean"
	descNonBlankString   = "value must be a non-blank string."
	descNotificationIDs  = "sequence of value must be an integer greater than zero., with at least 1 element"
	descBulkAction       = `enum of "archive", "change-creator"`
	fakeTimestamp        = "2024-01-02T03:04:05.000Z"
	fakeVersionDate      = "2026-01-15"
	notificationIDOffset = 10000 // payload (notification_card) ids are alert id + this
)

// isNotificationPath reports whether p is served by notificationRoutes.
func isNotificationPath(p string) bool {
	if p == "/api/session/properties" {
		return true
	}
	for _, base := range []string{"/api/pulse", "/api/alert", "/api/notification", "/api/collection"} {
		if p == base || strings.HasPrefix(p, base+"/") {
			return true
		}
	}
	return false
}

// notificationRoutes serves the subscription, alert, notification and
// collection endpoints and GET /api/session/properties. Everything but the
// properties needs a credential, checked before the route is matched (the
// routes are wrapped in +auth in src/metabase/api_routes/routes.clj).
func (s *Server) notificationRoutes(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/api/session/properties" {
		if r.Method != http.MethodGet {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		s.sessionProperties(w)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	caller := s.callerLocked(r)
	if caller == nil {
		writeText(w, http.StatusUnauthorized, msgUnauthenticated)
		return
	}
	s.prunePulseRecipientsLocked()
	q := r.URL.Query()
	segs := strings.Split(strings.Trim(strings.TrimPrefix(p, "/api/"), "/"), "/")
	route := strings.Join(segs[1:], "/")
	switch segs[0] {
	case "pulse":
		s.pulseRoutes(w, r.Method, segs[1:], q, body, caller)
	case "alert":
		if s.notif.alertsArePulses() {
			s.legacyAlertRoutes(w, r.Method, segs[1:], q, body, caller)
		} else {
			s.compatAlertRoutes(w, r.Method, segs[1:], q, caller)
		}
	case "notification":
		if s.notif.alertsArePulses() {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		s.notificationAPIRoutes(w, r.Method, route, segs[1:], q, body, caller)
	case "collection":
		if len(segs) == 3 && segs[2] == "items" && r.Method == http.MethodGet {
			if id, ok := parseID(segs[1]); ok {
				s.collectionItems(w, id, q, caller)
				return
			}
		}
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// sessionProperties serves GET /api/session/properties: the public
// settings, among them "version" ({tag, date, branch, hash}, from
// config/mb-version-info; the setting is :visibility :public in every era,
// src/metabase/version/settings.clj, formerly public_settings.clj). It needs
// no credential (src/metabase/session/api.clj).
func (s *Server) sessionProperties(w http.ResponseWriter) {
	s.mu.Lock()
	tag := s.notif.era.Tag()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"version":   map[string]string{"tag": tag, "date": fakeVersionDate, "branch": "release-x." + strings.TrimPrefix(tag, "v"), "hash": "0000000"},
		"site-name": "Metabase",
	})
}

// ----- Parameter validation, as the malli coercion of defendpoint answers
// (src/metabase/api/macros.clj: 400 JSON {errors, specific-errors}; the
// exact descriptions of composite schemas are approximations). -----

func paramError(w http.ResponseWriter, name, desc string, received string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"errors":          map[string]string{name: desc},
		"specific-errors": map[string][]string{name: {"invalid value, received: " + received}},
	})
}

// queryPosInt reads an optional ms/PositiveInt query parameter.
func queryPosInt(w http.ResponseWriter, q url.Values, name string) (int, bool) {
	v, ok := q[name]
	if !ok {
		return 0, true
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n <= 0 {
		paramError(w, name, descPositiveInt, strconv.Quote(v[0]))
		return 0, false
	}
	return n, true
}

// queryBool reads an optional ms/BooleanValue query parameter ("true" or
// "false"); def is its value when absent.
func queryBool(w http.ResponseWriter, q url.Values, name string, def *bool) (*bool, bool) {
	v, ok := q[name]
	if !ok {
		return def, true
	}
	switch strings.ToLower(v[0]) {
	case "true":
		t := true
		return &t, true
	case "false":
		f := false
		return &f, true
	}
	paramError(w, name, descBoolean, strconv.Quote(v[0]))
	return nil, false
}

func queryEnum(w http.ResponseWriter, q url.Values, name string, allowed ...string) (string, bool) {
	v, ok := q[name]
	if !ok {
		return "", true
	}
	if !slices.Contains(allowed, v[0]) {
		paramError(w, name, "enum of "+strings.Join(allowed, ", "), strconv.Quote(v[0]))
		return "", false
	}
	return v[0], true
}

var (
	falseValue = false
	pFalse     = &falseValue
)

// paging reads limit and offset as the offset-paging middleware does
// (src/metabase/server/middleware/offset_paging.clj): non-numeric values are
// ignored; if either is given the other defaults (limit 50, offset 0).
func paging(q url.Values) (limit, offset int, paged bool) {
	l, lok := nonNegInt(q.Get("limit"))
	o, ook := nonNegInt(q.Get("offset"))
	if !lok && !ook {
		return 0, 0, false
	}
	if !lok {
		l = 50
	}
	if !ook {
		o = 0
	}
	return l, o, true
}

func page[T any](rows []T, limit, offset int) []T {
	if offset >= len(rows) {
		return []T{}
	}
	return rows[offset:min(len(rows), offset+limit)]
}

// ----- JSON shapes -----

// creatorJSON is a hydrated :creator: the user's default columns plus
// common_name, without is_active (src/metabase/notification/api/admin.clj,
// splice-creator-active, explains that the hydration strips it).
func (s *Server) creatorJSONLocked(id int, withActive bool) any {
	u := s.users[id]
	if u == nil {
		return nil
	}
	j := map[string]any{
		"id": u.ID, "email": u.Email, "first_name": optString(u.FirstName), "last_name": optString(u.LastName),
		"common_name": u.json().CommonName, "date_joined": u.DateJoined.UTC().Format(timeLayout),
		"last_login": nil, "is_qbnewb": true, "is_superuser": u.Superuser,
	}
	if withActive {
		j["is_active"] = u.Active
	}
	return j
}

func optInt(id int) any {
	if id == 0 {
		return nil
	}
	return id
}

func (s *Server) userRecipientJSONLocked(id int) map[string]any {
	u := s.users[id]
	return map[string]any{
		"id": u.ID, "email": u.Email, "first_name": optString(u.FirstName), "last_name": optString(u.LastName),
		"common_name": u.json().CommonName,
	}
}

// pulseChannelsJSONLocked renders the channels of a pulse (or of an alert
// before v0.54): one email channel holding user and raw-address recipients,
// and one Slack channel per channel name with details.channel. Archiving
// disables every channel (before-update of :model/Pulse). Only active users
// are listed (pulse.db/active-recipients-for-channels; deactivation also
// deletes the rows, see prunePulseRecipientsLocked); raw addresses come
// first, from details.emails, which is itself never rendered
// (src/metabase/pulse/models/pulse_channel.clj).
func (s *Server) pulseChannelsJSONLocked(pulseID int, userIDs []int, emails, slack []string, archived bool) []any {
	chans := []any{}
	base := func(n int, typ string) map[string]any {
		return map[string]any{
			"id": pulseID*10 + n, "pulse_id": pulseID, "channel_type": typ, "channel_id": nil, "enabled": !archived,
			"schedule_type": "daily", "schedule_hour": 8, "schedule_day": nil, "schedule_frame": nil,
			"created_at": fakeTimestamp, "updated_at": fakeTimestamp,
		}
	}
	if len(userIDs)+len(emails) > 0 {
		c := base(0, "email")
		recips := []any{}
		for _, e := range emails {
			recips = append(recips, map[string]any{"email": e})
		}
		for _, id := range userIDs {
			if s.recipientActiveLocked(id) {
				recips = append(recips, s.userRecipientJSONLocked(id))
			}
		}
		c["details"] = map[string]any{}
		c["recipients"] = recips
		chans = append(chans, c)
	}
	for i, name := range slack {
		c := base(i+1, "slack")
		c["details"] = map[string]any{"channel": name}
		c["recipients"] = []any{}
		chans = append(chans, c)
	}
	return chans
}

// pulseJSONLocked renders a subscription as GET /api/pulse does
// (retrieve-pulses: hydrated :creator, :cards, [:channels :recipients];
// alert columns removed).
func (s *Server) pulseJSONLocked(p *Subscription, canWrite *bool) map[string]any {
	cards := []any{}
	for i, id := range p.CardIDs {
		cards = append(cards, map[string]any{
			"id": id, "name": "Card " + strconv.Itoa(id), "description": nil, "collection_id": nil, "display": "table",
			"include_csv": false, "include_xls": false, "format_rows": true, "pivot_results": false,
			"dashboard_card_id": optInt(p.DashboardID*100 + i), "dashboard_id": optInt(p.DashboardID), "parameter_mappings": nil,
		})
	}
	j := map[string]any{
		"id": p.ID, "name": p.Name, "creator_id": p.CreatorID, "creator": s.creatorJSONLocked(p.CreatorID, false),
		"dashboard_id": optInt(p.DashboardID), "collection_id": nil, "collection_position": nil,
		"archived": p.Archived, "skip_if_empty": p.SkipIfEmpty, "parameters": []any{},
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp, "entity_id": "pulse" + strconv.Itoa(p.ID),
		"cards": cards, "channels": s.pulseChannelsJSONLocked(p.ID, p.UserIDs, p.Emails, p.SlackChannels, p.Archived),
	}
	if canWrite != nil {
		j["can_write"] = *canWrite
	}
	return j
}

// legacyAlertJSONLocked renders an alert before v0.54: a pulse with its
// alert columns and a single :card instead of :cards
// (src/metabase/models/pulse.clj, notification->alert).
func (s *Server) legacyAlertJSONLocked(a *Alert, canWrite bool) map[string]any {
	return map[string]any{
		"id": a.ID, "name": nil, "creator_id": optInt(a.CreatorID), "creator": s.creatorJSONLocked(a.CreatorID, false),
		"alert_condition": "rows", "alert_first_only": false, "alert_above_goal": nil,
		"archived": a.Archived, "skip_if_empty": true, "collection_id": nil, "collection_position": nil,
		"dashboard_id": nil, "parameters": []any{}, "created_at": fakeTimestamp, "updated_at": fakeTimestamp,
		"card": map[string]any{
			"id": a.CardID, "name": a.CardName, "description": nil, "collection_id": nil, "display": "table",
			"include_csv": true, "include_xls": false, "dashboard_card_id": nil,
		},
		"channels":  s.pulseChannelsJSONLocked(a.ID, a.UserIDs, a.Emails, a.SlackChannels, a.Archived),
		"can_write": canWrite,
	}
}

// compatAlertJSONLocked renders an alert through GET /api/alert from v0.54
// on: a notification converted to the old pulse shape
// (src/metabase/pulse/api/alert.clj, notification->pulse). Its card has no
// id, and a deactivated user recipient becomes an empty map.
func (s *Server) compatAlertJSONLocked(a *Alert) map[string]any {
	chans := []any{}
	if len(a.UserIDs)+len(a.Emails) > 0 {
		recips := []any{}
		for _, e := range a.Emails {
			recips = append(recips, map[string]any{"email": e})
		}
		for _, id := range a.UserIDs {
			if s.recipientActiveLocked(id) {
				recips = append(recips, s.userRecipientJSONLocked(id))
			} else {
				recips = append(recips, map[string]any{})
			}
		}
		chans = append(chans, map[string]any{
			"id": a.ID*10 + 1, "schedule_type": "daily", "schedule_hour": 9, "schedule_day": nil, "schedule_frame": nil,
			"recipients": recips, "channel_type": "email", "channel_id": nil, "enabled": true,
			"details": map[string]any{"emails": slices.Clone(a.Emails)},
		})
	}
	for i, name := range a.SlackChannels {
		chans = append(chans, map[string]any{
			"id": a.ID*10 + 2 + i, "schedule_type": "daily", "schedule_hour": 9, "schedule_day": nil, "schedule_frame": nil,
			"recipients": []any{}, "channel_type": "slack", "channel_id": nil, "enabled": true,
			"details": map[string]any{"channel": name},
		})
	}
	return map[string]any{
		"id": a.ID, "creator_id": optInt(a.CreatorID), "creator": s.creatorJSONLocked(a.CreatorID, false),
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp, "name": nil,
		"alert_condition": "rows", "alert_above_goal": nil, "alert_first_only": false, "archived": a.Archived,
		"collection_position": nil, "collection_id": nil, "skip_if_empty": true, "parameters": []any{}, "dashboard_id": nil,
		"card": map[string]any{
			"name": a.CardName, "description": nil, "collection_id": nil, "display": "table",
			"format_rows": true, "include_xls": false, "include_csv": true, "pivot_results": false,
			"dashboard_id": nil, "dashboard_card_id": nil, "parameter_mappings": nil,
		},
		"channels": chans,
	}
}

// notificationJSONLocked renders an alert as a hydrated notification
// (src/metabase/notification/db.clj, hydrate-notification: :creator,
// :payload, :subscriptions, [:handlers :channel :template [:recipients
// :recipients-detail]]). A deactivated user recipient keeps its user_id but
// gets "user": null (recipients-detail, GDGT-1927); Slack channels and other
// addresses are raw-value recipients with details.value.
func (s *Server) notificationJSONLocked(a *Alert, creatorActive bool) map[string]any {
	handlers := []any{}
	recipient := func(hid, n int, typ string) map[string]any {
		return map[string]any{"id": hid*100 + n, "notification_handler_id": hid, "type": typ,
			"user_id": nil, "permissions_group_id": nil, "details": nil}
	}
	handler := func(hid int, typ string, recips []any) map[string]any {
		return map[string]any{"id": hid, "notification_id": a.ID, "channel_type": typ, "channel_id": nil,
			"template_id": nil, "active": true, "channel": nil, "template": nil, "recipients": recips,
			"created_at": fakeTimestamp, "updated_at": fakeTimestamp}
	}
	if len(a.UserIDs)+len(a.Emails) > 0 {
		hid := a.ID * 10
		recips := []any{}
		for i, id := range a.UserIDs {
			r := recipient(hid, i, "notification-recipient/user")
			r["user_id"] = id
			if s.recipientActiveLocked(id) {
				r["user"] = s.userRecipientJSONLocked(id)
			} else {
				r["user"] = nil
			}
			recips = append(recips, r)
		}
		for i, e := range a.Emails {
			r := recipient(hid, len(a.UserIDs)+i, "notification-recipient/raw-value")
			r["details"] = map[string]any{"value": e}
			recips = append(recips, r)
		}
		handlers = append(handlers, handler(hid, "channel/email", recips))
	}
	for i, name := range a.SlackChannels {
		hid := a.ID*10 + 1 + i
		r := recipient(hid, 0, "notification-recipient/raw-value")
		r["details"] = map[string]any{"value": name}
		handlers = append(handlers, handler(hid, "channel/slack", []any{r}))
	}
	payloadID := a.ID + notificationIDOffset
	return map[string]any{
		"id": a.ID, "active": !a.Archived, "creator_id": optInt(a.CreatorID),
		"creator":      s.creatorJSONLocked(a.CreatorID, creatorActive),
		"payload_type": "notification/card", "payload_id": payloadID,
		"payload": map[string]any{
			"id": payloadID, "card_id": a.CardID, "send_condition": "has_result", "send_once": false,
			"card": map[string]any{"id": a.CardID, "name": a.CardName, "display": "table", "archived": false},
		},
		"subscriptions": []any{map[string]any{"id": a.ID, "notification_id": a.ID, "type": "notification-subscription/cron",
			"cron_schedule": "0 0 9 * * ? *", "event_name": nil, "ui_display_type": "cron/builder"}},
		"handlers":   handlers,
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp,
	}
}

// systemEventJSON is the seeded system-event notification.
func systemEventJSON() map[string]any {
	return map[string]any{
		"id": systemEventNotificationID, "active": true, "creator_id": nil, "creator": nil,
		"payload_type": "notification/system-event", "payload_id": nil, "payload": nil,
		"subscriptions": []any{map[string]any{"type": "notification-subscription/system-event", "event_name": "event/user-invited"}},
		"handlers": []any{map[string]any{"channel_type": "channel/email", "active": true, "recipients": []any{
			map[string]any{"type": "notification-recipient/template", "details": map[string]any{"pattern": "{{payload.event_info.object.email}}"}},
		}}},
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp,
	}
}

func runJSON(r *Run) any {
	if r == nil {
		return nil
	}
	status, errMsg := "successful", any(nil)
	if r.Failed {
		status, errMsg = "failing", r.Error
	}
	return map[string]any{"at": r.At.UTC().Format(timeLayout), "status": status, "error": errMsg}
}

// ----- /api/pulse (src/metabase/pulse/api/pulse.clj; before the module
// reorganisation src/metabase/api/pulse.clj) -----

func (s *Server) pulseRoutes(w http.ResponseWriter, method string, rest []string, q url.Values, body []byte, caller *user) {
	switch {
	case len(rest) == 0 && method == http.MethodGet:
		s.listPulses(w, q, caller)
	case len(rest) == 1 && (method == http.MethodGet || method == http.MethodPut):
		id, ok := parseID(rest[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		if method == http.MethodGet {
			s.getPulse(w, id, caller)
		} else {
			s.updatePulse(w, id, body, caller)
		}
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

func (s *Server) pulseReadableLocked(p *Subscription, caller *user) bool {
	return caller.Superuser || p.CreatorID == caller.ID || slices.Contains(p.UserIDs, caller.ID)
}

// listPulses serves GET /api/pulse: subscriptions (never alerts) with
// archived = ?archived (default false), of unarchived dashboards or without
// a dashboard, optionally of one dashboard_id, sorted by lower(name). By
// default only those the caller may write: all for an admin, their own for
// anyone else; creator_or_recipient=true instead returns dashboard
// subscriptions they created or receive. There is no creator_id filter, and
// no field records whether the last send failed.
func (s *Server) listPulses(w http.ResponseWriter, q url.Values, caller *user) {
	archived, ok := queryBool(w, q, "archived", pFalse)
	if !ok {
		return
	}
	dashboardID, ok := queryPosInt(w, q, "dashboard_id")
	if !ok {
		return
	}
	cor, ok := queryBool(w, q, "creator_or_recipient", pFalse)
	if !ok {
		return
	}
	rows := make([]*Subscription, 0, len(s.notif.pulses))
	for _, p := range s.notif.pulses {
		if p.Archived != *archived || (p.DashboardID != 0 && p.DashboardArchived) {
			continue
		}
		if dashboardID != 0 && p.DashboardID != dashboardID {
			continue
		}
		if *cor {
			if p.DashboardID == 0 || (p.CreatorID != caller.ID && !slices.Contains(p.UserIDs, caller.ID)) {
				continue
			}
		} else if !caller.Superuser && p.CreatorID != caller.ID {
			continue
		}
		rows = append(rows, p)
	}
	slices.SortFunc(rows, func(a, b *Subscription) int {
		return cmp.Or(strings.Compare(lowerName(a.Name), lowerName(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	out := make([]any, len(rows))
	for i, p := range rows {
		cw := caller.Superuser || p.CreatorID == caller.ID
		out[i] = s.pulseJSONLocked(p, &cw)
	}
	writeJSON(w, http.StatusOK, out)
}

// getPulse serves GET /api/pulse/:id: 404 "Not found." for a missing id,
// 403 unless the caller is an admin, the creator or a recipient.
func (s *Server) getPulse(w http.ResponseWriter, id int, caller *user) {
	p := s.notif.pulses[id]
	if p == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !s.pulseReadableLocked(p, caller) {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	cw := caller.Superuser || p.CreatorID == caller.ID
	writeJSON(w, http.StatusOK, s.pulseJSONLocked(p, &cw))
}

// updatePulse serves PUT /api/pulse/:id. The body schema declares name,
// cards, channels, skip_if_empty {:default false}, collection_id, archived
// {:default false} and parameters; anything else, creator_id and
// dashboard_id included, is silently dropped by the decoder, so ownership
// cannot be changed here (the reply is 200 and the creator stays). Because
// of the defaults, a body without "archived" unarchives and one without
// "skip_if_empty" clears it. Archiving disables the pulse's channels. The
// body is validated before anything else; then a missing id is 404 and a
// caller who is neither admin nor creator 403.
func (s *Server) updatePulse(w http.ResponseWriter, id int, body []byte, caller *user) {
	var b map[string]json.RawMessage
	if len(body) > 0 && json.Unmarshal(body, &b) != nil {
		writeText(w, http.StatusBadRequest, msgMalformedJSON)
		return
	}
	archived, skip := false, false
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"archived", &archived}, {"skip_if_empty", &skip}} {
		raw, ok := b[f.name]
		if !ok || isNull(raw) {
			continue
		}
		if json.Unmarshal(raw, f.dst) != nil {
			paramError(w, f.name, descNullableBoolean, string(raw))
			return
		}
	}
	var name *string
	if raw, ok := b["name"]; ok && !isNull(raw) {
		var n string
		if json.Unmarshal(raw, &n) != nil || strings.TrimSpace(n) == "" {
			paramError(w, "name", "nullable "+descNonBlankString, string(raw))
			return
		}
		name = &n
	}
	p := s.notif.pulses[id]
	if p == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !caller.Superuser && p.CreatorID != caller.ID {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	p.Archived, p.SkipIfEmpty = archived, skip
	if name != nil {
		p.Name = *name
	}
	writeJSON(w, http.StatusOK, s.pulseJSONLocked(p, nil))
}

// ----- /api/alert before v0.54 (src/metabase/api/alert.clj) -----

func (s *Server) alertReadableLocked(a *Alert, caller *user) bool {
	return caller.Superuser || a.CreatorID == caller.ID || slices.Contains(a.UserIDs, caller.ID)
}

func (s *Server) legacyAlertRoutes(w http.ResponseWriter, method string, rest []string, q url.Values, body []byte, caller *user) {
	switch {
	case len(rest) == 0 && method == http.MethodGet:
		archived, ok := queryBool(w, q, "archived", pFalse)
		if !ok {
			return
		}
		userID, ok := queryPosInt(w, q, "user_id")
		if !ok {
			return
		}
		// user_id is honoured for admins only; anyone else sees their own.
		if !caller.Superuser {
			userID = caller.ID
		}
		rows := s.alertsLocked(func(a *Alert) bool {
			return a.Archived == *archived && (userID == 0 || a.CreatorID == userID || slices.Contains(a.UserIDs, userID))
		})
		out := make([]any, len(rows))
		for i, a := range rows {
			out[i] = s.legacyAlertJSONLocked(a, caller.Superuser || a.CreatorID == caller.ID)
		}
		writeJSON(w, http.StatusOK, out)
	case len(rest) == 1 && (method == http.MethodGet || method == http.MethodPut):
		id, ok := parseID(rest[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		if method == http.MethodPut {
			s.updateLegacyAlert(w, id, body, caller)
			return
		}
		a := s.notif.alerts[id]
		if a == nil {
			writeText(w, http.StatusNotFound, msgNotFound)
			return
		}
		if !s.alertReadableLocked(a, caller) {
			writeText(w, http.StatusForbidden, msgForbidden)
			return
		}
		writeJSON(w, http.StatusOK, s.legacyAlertJSONLocked(a, caller.Superuser || a.CreatorID == caller.ID))
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// updateLegacyAlert serves PUT /api/alert/:id before v0.54: archived
// ([:maybe :boolean]) is applied when present (only-alert-keys); a missing
// alert is 404 "Not found."; a non-admin may only update alerts they
// created.
func (s *Server) updateLegacyAlert(w http.ResponseWriter, id int, body []byte, caller *user) {
	var b map[string]json.RawMessage
	if len(body) > 0 && json.Unmarshal(body, &b) != nil {
		writeText(w, http.StatusBadRequest, msgMalformedJSON)
		return
	}
	var archived *bool
	if raw, ok := b["archived"]; ok && !isNull(raw) {
		var v bool
		if json.Unmarshal(raw, &v) != nil {
			paramError(w, "archived", descNullableBoolean, string(raw))
			return
		}
		archived = &v
	}
	a := s.notif.alerts[id]
	if a == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !caller.Superuser && a.CreatorID != caller.ID {
		writeText(w, http.StatusForbidden, msgAlertNotYours)
		return
	}
	if archived != nil {
		a.Archived = *archived
	}
	writeJSON(w, http.StatusOK, s.legacyAlertJSONLocked(a, true))
}

// alertsLocked returns the alerts matching keep, by id.
func (s *Server) alertsLocked(keep func(*Alert) bool) []*Alert {
	rows := make([]*Alert, 0, len(s.notif.alerts))
	for _, a := range s.notif.alerts {
		if keep(a) {
			rows = append(rows, a)
		}
	}
	slices.SortFunc(rows, func(a, b *Alert) int { return cmp.Compare(a.ID, b.ID) })
	return rows
}

// ----- /api/alert from v0.54 (src/metabase/pulse/api/alert.clj): only GET
// / and GET /:id remain ("API changelog", 0.54.0), converting notifications
// to the old shape. -----

func (s *Server) compatAlertRoutes(w http.ResponseWriter, method string, rest []string, q url.Values, caller *user) {
	switch {
	case len(rest) == 0 && method == http.MethodGet:
		archived, ok := queryBool(w, q, "archived", pFalse)
		if !ok {
			return
		}
		userID, ok := queryPosInt(w, q, "user_id")
		if !ok {
			return
		}
		if !caller.Superuser {
			userID = caller.ID
		}
		rows := s.alertsLocked(func(a *Alert) bool {
			return a.Archived == *archived && (userID == 0 || a.CreatorID == userID || slices.Contains(a.UserIDs, userID)) &&
				s.alertReadableLocked(a, caller)
		})
		out := make([]any, len(rows))
		for i, a := range rows {
			out[i] = s.compatAlertJSONLocked(a)
		}
		writeJSON(w, http.StatusOK, out)
	case len(rest) == 1 && method == http.MethodGet:
		id, ok := parseID(rest[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		a := s.notif.alerts[id]
		if a == nil {
			writeText(w, http.StatusNotFound, msgNotFound)
			return
		}
		if !s.alertReadableLocked(a, caller) {
			writeText(w, http.StatusForbidden, msgForbidden)
			return
		}
		writeJSON(w, http.StatusOK, s.compatAlertJSONLocked(a))
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// ----- /api/notification (src/metabase/notification/api/notification.clj
// and admin.clj) -----

func (s *Server) notificationAPIRoutes(w http.ResponseWriter, method, route string, rest []string, q url.Values, body []byte, caller *user) {
	admin := s.notif.era == EraNotificationAdmin
	switch {
	case route == "" && method == http.MethodGet:
		s.listNotifications(w, q, caller)
	case admin && route == "admin" && method == http.MethodGet:
		s.adminListNotifications(w, q, caller)
	case admin && route == "admin/bulk" && method == http.MethodPost:
		s.adminBulk(w, body, caller)
	case admin && len(rest) == 2 && rest[0] == "admin" && method == http.MethodGet:
		id, ok := parseID(rest[1])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		if !caller.Superuser {
			writeText(w, http.StatusForbidden, msgForbidden)
			return
		}
		a := s.notif.alerts[id]
		if a == nil {
			writeText(w, http.StatusNotFound, msgNotFound)
			return
		}
		row := s.adminRowLocked(a)
		row["check_history"] = []any{}
		row["send_history"] = []any{}
		if a.LastCheck != nil {
			row["check_history"] = []any{runJSON(a.LastCheck)}
		}
		writeJSON(w, http.StatusOK, row)
	case len(rest) == 1 && method == http.MethodGet:
		id, ok := parseID(rest[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		if id == systemEventNotificationID {
			if !caller.Superuser {
				writeText(w, http.StatusForbidden, msgForbidden)
				return
			}
			writeJSON(w, http.StatusOK, systemEventJSON())
			return
		}
		a := s.notif.alerts[id]
		if a == nil {
			writeText(w, http.StatusNotFound, msgNotFound)
			return
		}
		if !s.alertReadableLocked(a, caller) {
			writeText(w, http.StatusForbidden, msgForbidden)
			return
		}
		writeJSON(w, http.StatusOK, s.notificationJSONLocked(a, false))
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// listNotifications serves GET /api/notification: every active
// notification the caller may read (an admin reads all), system events
// included unless payload_type is given; include_inactive=true adds
// archived ones; creator_id, recipient_id, creator_or_recipient_id and
// card_id filter. No paging, and no run status.
func (s *Server) listNotifications(w http.ResponseWriter, q url.Values, caller *user) {
	var filters [4]int
	for i, name := range []string{"creator_id", "recipient_id", "creator_or_recipient_id", "card_id"} {
		v, ok := queryPosInt(w, q, name)
		if !ok {
			return
		}
		filters[i] = v
	}
	creatorID, recipientID, eitherID, cardID := filters[0], filters[1], filters[2], filters[3]
	inactive, ok := queryBool(w, q, "include_inactive", pFalse)
	if !ok {
		return
	}
	payloadType, ok := queryEnum(w, q, "payload_type",
		"notification/system-event", "notification/dashboard", "notification/card", "notification/testing")
	if !ok {
		return
	}
	out := []any{}
	if caller.Superuser && (payloadType == "" || payloadType == "notification/system-event") &&
		creatorID == 0 && recipientID == 0 && eitherID == 0 && cardID == 0 {
		out = append(out, systemEventJSON())
	}
	if payloadType == "" || payloadType == "notification/card" {
		for _, a := range s.alertsLocked(func(a *Alert) bool {
			return (*inactive || !a.Archived) &&
				(creatorID == 0 || a.CreatorID == creatorID) &&
				(recipientID == 0 || slices.Contains(a.UserIDs, recipientID)) &&
				(eitherID == 0 || a.CreatorID == eitherID || slices.Contains(a.UserIDs, eitherID)) &&
				(cardID == 0 || a.CardID == cardID) &&
				s.alertReadableLocked(a, caller)
		}) {
			out = append(out, s.notificationJSONLocked(a, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// creatorActiveLocked returns the creator's is_active, and false when the
// alert has no creator (the SQL join yields NULL).
func (s *Server) creatorActiveLocked(a *Alert) (active, exists bool) {
	u := s.users[a.CreatorID]
	if a.CreatorID == 0 || u == nil {
		return false, false
	}
	return u.Active, true
}

// adminRowLocked is one row of GET /api/notification/admin: the hydrated
// notification with creator.is_active spliced in, plus last_check and
// last_send ({at, status: successful|failing, error}).
func (s *Server) adminRowLocked(a *Alert) map[string]any {
	row := s.notificationJSONLocked(a, true)
	row["last_check"] = runJSON(a.LastCheck)
	row["last_send"] = runJSON(a.LastSend)
	return row
}

// adminListNotifications serves GET /api/notification/admin: superusers
// only (403 after the parameters are validated), card notifications only,
// paged (limit 50 and offset 0 by default), {data, total, limit, offset}.
// Filters: active, creator_id, creator_active, creatorless (true: no
// creator or a deactivated one; false: an active creator), card_id,
// recipient_email (exact, any case, user or raw address), channel,
// last_send_status and last_check_status (successful|failing), query
// (substring of card name or creator names and email). Sort: sort_column
// (id, last_send, last_check, card_name, creator_name, updated_at; default
// last_send) and sort_direction (default desc), nulls last, ties by id
// descending.
func (s *Server) adminListNotifications(w http.ResponseWriter, q url.Values, caller *user) {
	var bools [3]*bool
	for i, name := range []string{"active", "creator_active", "creatorless"} {
		v, ok := queryBool(w, q, name, nil)
		if !ok {
			return
		}
		bools[i] = v
	}
	active, creatorActive, creatorless := bools[0], bools[1], bools[2]
	creatorID, ok := queryPosInt(w, q, "creator_id")
	if !ok {
		return
	}
	cardID, ok := queryPosInt(w, q, "card_id")
	if !ok {
		return
	}
	var enums [4]string
	for i, e := range []struct {
		name    string
		allowed []string
	}{
		{"last_send_status", []string{"failing", "successful"}},
		{"last_check_status", []string{"failing", "successful"}},
		{"sort_column", []string{"id", "last_send", "last_check", "card_name", "creator_name", "updated_at"}},
		{"sort_direction", []string{"asc", "desc"}},
	} {
		v, ok := queryEnum(w, q, e.name, e.allowed...)
		if !ok {
			return
		}
		enums[i] = v
	}
	sendStatus, checkStatus, sortCol, sortDir := enums[0], enums[1], cmp.Or(enums[2], "last_send"), cmp.Or(enums[3], "desc")
	for _, name := range []string{"recipient_email", "query"} {
		if v, ok := q[name]; ok && strings.TrimSpace(v[0]) == "" {
			paramError(w, name, descNonBlankString, strconv.Quote(v[0]))
			return
		}
	}
	recipientEmail, search, channels := strings.ToLower(q.Get("recipient_email")), strings.ToLower(q.Get("query")), q["channel"]
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	status := func(r *Run) string {
		switch {
		case r == nil:
			return ""
		case r.Failed:
			return "failing"
		}
		return "successful"
	}
	rows := s.alertsLocked(func(a *Alert) bool {
		cActive, cExists := s.creatorActiveLocked(a)
		switch {
		case active != nil && *active == a.Archived,
			creatorID != 0 && a.CreatorID != creatorID,
			creatorActive != nil && (!cExists || cActive != *creatorActive),
			creatorless != nil && *creatorless == (cExists && cActive),
			cardID != 0 && a.CardID != cardID,
			sendStatus != "" && status(a.LastSend) != sendStatus,
			checkStatus != "" && status(a.LastCheck) != checkStatus:
			return false
		}
		if recipientEmail != "" && !s.alertHasRecipientLocked(a, recipientEmail) {
			return false
		}
		if len(channels) > 0 && !slices.ContainsFunc(channels, func(c string) bool { return s.alertHasChannel(a, c) }) {
			return false
		}
		if search != "" {
			hay := []string{strings.ToLower(a.CardName)}
			if u := s.users[a.CreatorID]; u != nil {
				hay = append(hay, u.lf, u.ll, u.le)
			}
			if !slices.ContainsFunc(hay, func(h string) bool { return strings.Contains(h, search) }) {
				return false
			}
		}
		return true
	})
	s.sortAdminRowsLocked(rows, sortCol, sortDir)
	limit, offset, paged := paging(q)
	if !paged {
		limit, offset = 50, 0
	}
	data := []any{}
	for _, a := range page(rows, limit, offset) {
		data = append(data, s.adminRowLocked(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "total": len(rows), "limit": limit, "offset": offset})
}

func (s *Server) alertHasRecipientLocked(a *Alert, email string) bool {
	for _, id := range a.UserIDs {
		if u := s.users[id]; u != nil && u.le == email {
			return true
		}
	}
	return slices.ContainsFunc(a.Emails, func(e string) bool { return strings.ToLower(e) == email })
}

func (s *Server) alertHasChannel(a *Alert, channel string) bool {
	switch channel {
	case "channel/email":
		return len(a.UserIDs)+len(a.Emails) > 0
	case "channel/slack":
		return len(a.SlackChannels) > 0
	}
	return false
}

func (s *Server) sortAdminRowsLocked(rows []*Alert, col, dir string) {
	key := func(a *Alert) (string, bool) { // sort key and whether it is NULL
		at := func(r *Run) (string, bool) {
			if r == nil {
				return "", true
			}
			return r.At.UTC().Format(time.RFC3339Nano), false
		}
		switch col {
		case "last_send":
			return at(a.LastSend)
		case "last_check":
			return at(a.LastCheck)
		case "card_name":
			return a.CardName, false
		case "creator_name":
			u := s.users[a.CreatorID]
			if u == nil {
				return "", true
			}
			return cmp.Or(u.LastName, u.FirstName, u.Email), false
		}
		return "", false // id and updated_at: every fake row ties
	}
	slices.SortStableFunc(rows, func(a, b *Alert) int {
		ka, na := key(a)
		kb, nb := key(b)
		if na != nb { // nulls last, whatever the direction
			if na {
				return 1
			}
			return -1
		}
		c := strings.Compare(ka, kb)
		if col == "id" {
			c = cmp.Compare(a.ID, b.ID)
		}
		if dir == "desc" {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(b.ID, a.ID))
	})
}

// adminBulk serves POST /api/notification/admin/bulk. The body is
// validated first: notification_ids a non-empty array of positive
// integers, action "archive" or "change-creator", creator_id an optional
// positive integer (400 JSON otherwise). Then a non-superuser gets 403;
// change-creator without creator_id gets 400 text "creator_id required for
// change-creator". The update applies to the card notifications among the
// ids in one statement; other ids are skipped silently, and the reply is
// {"updated": <how many card notifications it touched>}, already archived
// ones included. Nothing checks that the new creator is active; one that
// does not exist violates the foreign key, a 500 with a stack trace
// [inferred: the source relies on the database constraint].
func (s *Server) adminBulk(w http.ResponseWriter, body []byte, caller *user) {
	var b map[string]json.RawMessage
	if json.Unmarshal(body, &b) != nil || b == nil {
		writeText(w, http.StatusBadRequest, msgMalformedJSON)
		return
	}
	var ids []int
	if raw, ok := b["notification_ids"]; !ok || json.Unmarshal(raw, &ids) != nil || len(ids) == 0 ||
		slices.ContainsFunc(ids, func(id int) bool { return id <= 0 }) {
		received := "nil"
		if ok {
			received = string(raw)
		}
		paramError(w, "notification_ids", descNotificationIDs, received)
		return
	}
	var action string
	if raw, ok := b["action"]; !ok || json.Unmarshal(raw, &action) != nil || (action != "archive" && action != "change-creator") {
		received := "nil"
		if ok {
			received = string(raw)
		}
		paramError(w, "action", descBulkAction, received)
		return
	}
	creatorID := 0
	if raw, ok := b["creator_id"]; ok {
		if json.Unmarshal(raw, &creatorID) != nil || creatorID <= 0 {
			paramError(w, "creator_id", descPositiveInt, string(raw))
			return
		}
	}
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if action == "change-creator" {
		if creatorID == 0 {
			writeText(w, http.StatusBadRequest, msgCreatorRequired)
			return
		}
		if s.users[creatorID] == nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{
				"message": "ERROR: insert or update on table \"notification\" violates foreign key constraint",
				"via":     []any{}, "trace": []any{},
			})
			return
		}
	}
	slices.Sort(ids)
	updated := 0
	for _, id := range slices.Compact(ids) {
		a := s.notif.alerts[id]
		if a == nil {
			continue
		}
		updated++
		if action == "archive" {
			a.Archived = true
		} else {
			a.CreatorID = creatorID
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"updated": updated})
}

// ----- /api/collection/:id/items (src/metabase/collections/api.clj, newer
// src/metabase/collections_rest/api.clj) -----

// collectionItems serves GET /api/collection/:id/items for personal
// collections: 404 "Not found." for an unknown collection, 403 unless the
// caller is an admin or the owner. archived (default false) chooses
// archived items instead of the others; models filters; limit and offset
// page (offset paging). The reply is {total, data, models, limit, offset},
// total counting every matching item whatever the page.
func (s *Server) collectionItems(w http.ResponseWriter, id int, q url.Values, caller *user) {
	archived, ok := queryBool(w, q, "archived", pFalse)
	if !ok {
		return
	}
	owner := s.personalCollectionOwnerLocked(id)
	if owner == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !caller.Superuser && caller.ID != owner.ID {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	models := q["models"]
	var rows []CollectionItem
	for _, it := range s.notif.items[id] {
		if it.Archived == *archived && (len(models) == 0 || slices.Contains(models, it.Model)) {
			rows = append(rows, it)
		}
	}
	slices.SortFunc(rows, func(a, b CollectionItem) int {
		return cmp.Or(strings.Compare(lowerName(a.Name), lowerName(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	present := []string{}
	for _, it := range rows {
		if !slices.Contains(present, it.Model) {
			present = append(present, it.Model)
		}
	}
	slices.Sort(present)
	limit, offset, paged := paging(q)
	shown := rows
	if paged {
		shown = page(rows, limit, offset)
	}
	data := make([]any, len(shown))
	for i, it := range shown {
		data[i] = map[string]any{"id": it.ID, "name": it.Name, "model": it.Model, "archived": it.Archived,
			"collection_id": id, "description": nil}
	}
	resp := map[string]any{"total": len(rows), "data": data, "models": present, "limit": nil, "offset": nil}
	if paged {
		resp["limit"], resp["offset"] = limit, offset
	}
	writeJSON(w, http.StatusOK, resp)
}
