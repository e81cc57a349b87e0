package metabasetest

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
	case len(rest) == 1 && method == http.MethodPut:
		id, ok := parseID(rest[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		s.putNotification(w, id, body, caller)
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
		a, ok := s.readableAlertLocked(w, id, caller)
		if !ok {
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
