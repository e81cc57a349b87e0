package metabasetest

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
)

// ----- /api/alert before v0.54 (src/metabase/api/alert.clj) -----

func (s *Server) alertReadableLocked(a *Alert, caller *user) bool {
	return caller.Superuser || a.CreatorID == caller.ID || slices.Contains(a.UserIDs, caller.ID)
}

func (s *Server) legacyAlertRoutes(w http.ResponseWriter, method string, rest []string, q url.Values, body []byte, caller *user) {
	switch {
	case len(rest) == 0 && method == http.MethodGet:
		match, ok := alertListFilter(w, q, caller)
		if !ok {
			return
		}
		rows := s.alertsLocked(match)
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
		a, ok := s.readableAlertLocked(w, id, caller)
		if !ok {
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
		match, ok := alertListFilter(w, q, caller)
		if !ok {
			return
		}
		rows := s.alertsLocked(func(a *Alert) bool { return match(a) && s.alertReadableLocked(a, caller) })
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
		a, ok := s.readableAlertLocked(w, id, caller)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, s.compatAlertJSONLocked(a))
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// alertListFilter reads GET /api/alert's archived and user_id parameters (user_id is honoured for
// admins only; anyone else sees their own) into the alerts the listing shows, answering a bad
// parameter itself.
func alertListFilter(w http.ResponseWriter, q url.Values, caller *user) (func(*Alert) bool, bool) {
	archived, ok := queryBool(w, q, "archived", pFalse)
	if !ok {
		return nil, false
	}
	userID, ok := queryPosInt(w, q, "user_id")
	if !ok {
		return nil, false
	}
	if !caller.Superuser {
		userID = caller.ID
	}
	return func(a *Alert) bool {
		return a.Archived == *archived && (userID == 0 || a.CreatorID == userID || slices.Contains(a.UserIDs, userID))
	}, true
}

// readableAlertLocked is alert id when caller may read it; otherwise it answers 404 (no such
// alert) or 403 itself.
func (s *Server) readableAlertLocked(w http.ResponseWriter, id int, caller *user) (*Alert, bool) {
	a := s.notif.alerts[id]
	if a == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return nil, false
	}
	if !s.alertReadableLocked(a, caller) {
		writeText(w, http.StatusForbidden, msgForbidden)
		return nil, false
	}
	return a, true
}
