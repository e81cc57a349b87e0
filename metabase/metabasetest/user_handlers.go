package metabasetest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// listUsers serves GET /api/user (metabase-api.md §4.1).
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, caller *user) {
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	q := r.URL.Query()
	wantActive, wantInactive := true, false
	switch q.Get("status") {
	case "all":
		wantInactive = true
	case "deactivated":
		wantActive, wantInactive = false, true
	}
	if q.Get("include_deactivated") == "true" {
		wantActive, wantInactive = true, true
	}
	search := strings.ToLower(q.Get("query"))
	groupID, _ := strconv.Atoi(q.Get("group_id"))
	limit, limitOK := nonNegInt(q.Get("limit"))
	offset, offsetOK := nonNegInt(q.Get("offset"))
	paged := limitOK || offsetOK
	if paged && !limitOK {
		limit = 50
	}
	if paged && !offsetOK {
		offset = 0
	}
	rows := []userJSON{}
	total := 0
	for _, u := range s.sorted {
		if (u.Active && !wantActive) || (!u.Active && !wantInactive) {
			continue
		}
		if search != "" && !strings.Contains(u.lf, search) && !strings.Contains(u.ll, search) && !strings.Contains(u.le, search) {
			continue
		}
		if groupID > 0 && !slices.Contains(u.groups, groupID) {
			continue
		}
		if !paged || (total >= offset && len(rows) < limit) {
			rows = append(rows, u.listJSON())
		}
		total++
	}
	resp := struct {
		Data   []userJSON `json:"data"`
		Total  int        `json:"total"`
		Limit  *int       `json:"limit"`
		Offset *int       `json:"offset"`
	}{Data: rows, Total: total}
	if paged {
		resp.Limit, resp.Offset = &limit, &offset
	}
	writeJSON(w, http.StatusOK, resp)
}

// nonNegInt parses a paging parameter; Metabase ignores non-numeric ones.
func nonNegInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// getUser serves GET /api/user/:id (metabase-api.md §4.2).
func (s *Server) getUser(w http.ResponseWriter, caller *user, id int) {
	if !caller.Superuser && caller.ID != id {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	u := s.users[id]
	// The versions with the legacy DELETE fetch (fetch-user :id id,
	// :is_active true): an inactive user is 404 (metabase-api.md §4.2).
	if u == nil || (s.legacyDelete && !u.Active) {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	writeJSON(w, http.StatusOK, u.detailJSON())
}

// userBody is the body of PUT and POST /api/user; raw fields keep "absent"
// and "null" apart and allow type validation.
type userBody struct {
	Email                json.RawMessage `json:"email"`
	FirstName            json.RawMessage `json:"first_name"`
	LastName             json.RawMessage `json:"last_name"`
	IsSuperuser          json.RawMessage `json:"is_superuser"`
	UserGroupMemberships json.RawMessage `json:"user_group_memberships"`
}

// validationError writes Metabase's malli 400 (metabase-api.md §2).
func validationError(w http.ResponseWriter, param, desc, specific string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"errors":          map[string]string{param: desc},
		"specific-errors": map[string][]string{param: {specific}},
	})
}

func isNull(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }

// optionalString decodes a nullable non-blank string field.
func optionalString(w http.ResponseWriter, name string, m json.RawMessage) (*string, bool) {
	if isNull(m) {
		return nil, true
	}
	var v string
	if json.Unmarshal(m, &v) != nil || strings.TrimSpace(v) == "" {
		validationError(w, name, "nullable value must be a non-blank string.",
			"should be a non-blank string, received: "+string(m))
		return nil, false
	}
	return &v, true
}

// decodeUserBody parses and validates a user body; on failure it has
// already written the 400.
func decodeUserBody(w http.ResponseWriter, body []byte) (email, first, last *string, super *bool, groups []int, ok bool) {
	var b userBody
	if len(body) > 0 {
		if err := json.Unmarshal(body, &b); err != nil {
			writeText(w, http.StatusBadRequest, msgMalformedJSON)
			return
		}
	}
	if email, ok = optionalString(w, "email", b.Email); !ok {
		return
	}
	if email != nil && !strings.Contains(*email, "@") {
		validationError(w, "email", "nullable value must be a valid email address.",
			"should be a valid email address, received: "+string(b.Email))
		return nil, nil, nil, nil, nil, false
	}
	if first, ok = optionalString(w, "first_name", b.FirstName); !ok {
		return
	}
	if last, ok = optionalString(w, "last_name", b.LastName); !ok {
		return
	}
	if !isNull(b.IsSuperuser) {
		var v bool
		if json.Unmarshal(b.IsSuperuser, &v) != nil {
			validationError(w, "is_superuser", "nullable boolean", "should be a boolean, received: "+string(b.IsSuperuser))
			return nil, nil, nil, nil, nil, false
		}
		super = &v
	}
	if !isNull(b.UserGroupMemberships) {
		var ms []struct {
			ID int `json:"id"`
		}
		bad := json.Unmarshal(b.UserGroupMemberships, &ms) != nil
		for _, m := range ms {
			bad = bad || m.ID <= 0
		}
		if bad {
			validationError(w, "user_group_memberships",
				"nullable sequence of map where {:id -> <value must be an integer greater than zero.>}",
				"invalid type, received: "+string(b.UserGroupMemberships))
			return nil, nil, nil, nil, nil, false
		}
		groups = make([]int, 0, len(ms))
		for _, m := range ms {
			groups = append(groups, m.ID)
		}
	}
	return email, first, last, super, groups, true
}

// updateUser serves PUT /api/user/:id (metabase-api.md §4.4). is_active is
// not part of the schema and is dropped.
func (s *Server) updateUser(w http.ResponseWriter, caller *user, id int, body []byte) {
	email, first, last, super, groups, ok := decodeUserBody(w, body)
	if !ok {
		return
	}
	if !caller.Superuser && caller.ID != id {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if id == InternalUserID {
		writeText(w, http.StatusBadRequest, msgInternalUser)
		return
	}
	u := s.users[id]
	if u == nil || !u.Active {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if email != nil && !strings.EqualFold(*email, u.Email) {
		if _, taken := s.byEmail[strings.ToLower(*email)]; taken {
			validationError(w, "email", "Email address already associated to another user.",
				"Email address already associated to another user.")
			return
		}
	}
	newGroups, newSuper := u.groups, u.Superuser
	if caller.Superuser {
		if groups != nil {
			newGroups = normGroups(groups, false)
			newSuper = slices.Contains(newGroups, AdministratorsGroupID)
		}
		if super != nil {
			newSuper = *super
		}
		newGroups = slices.DeleteFunc(slices.Clone(newGroups), func(g int) bool { return g == AdministratorsGroupID })
		newGroups = normGroups(newGroups, newSuper)
	}
	if u.Superuser && !newSuper && s.otherActiveAdminsLocked(u.ID) == 0 {
		writeText(w, http.StatusBadRequest, msgLastAdmin)
		return
	}
	if email != nil || first != nil || last != nil {
		s.removeSortedLocked(u)
		delete(s.byEmail, u.le)
		if email != nil {
			u.Email = *email
		}
		if first != nil {
			u.FirstName = *first
		}
		if last != nil {
			u.LastName = *last
		}
		s.insertLocked(u)
	}
	u.groups, u.Superuser = newGroups, newSuper
	u.updatedAt = s.now().UTC()
	writeJSON(w, http.StatusOK, u.detailJSON())
}

// createUser serves POST /api/user (superuser only).
func (s *Server) createUser(w http.ResponseWriter, caller *user, body []byte) {
	email, first, last, _, groups, ok := decodeUserBody(w, body)
	if !ok {
		return
	}
	if email == nil {
		validationError(w, "email", "value must be a valid email address.", "should be a valid email address, received: nil")
		return
	}
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if _, taken := s.byEmail[strings.ToLower(*email)]; taken {
		validationError(w, "email", "Email address already in use.", "Email address already in use.")
		return
	}
	nu := User{Email: *email, Active: true, GroupIDs: groups}
	if first != nil {
		nu.FirstName = *first
	}
	if last != nil {
		nu.LastName = *last
	}
	u := s.newUserLocked(nu)
	s.insertLocked(u)
	writeJSON(w, http.StatusOK, u.detailJSON())
}

// legacyDeleteError is the 500 of older Metabase's check-500
// (metabase/metabase#66599).
func legacyDeleteError(w http.ResponseWriter) {
	writeJSON(w, http.StatusInternalServerError, map[string]any{
		"message": "Internal server error.",
		"cause":   "Internal server error.",
		"data":    map[string]any{"status-code": 500},
		"via": []map[string]any{{
			"type": "clojure.lang.ExceptionInfo", "message": "Internal server error.",
			"data": map[string]any{"status-code": 500}, "at": []any{"metabase.api.common$check", "invokeStatic", "common.clj", 86},
		}},
		"trace": []any{[]any{"metabase.api.common$check", "invokeStatic", "common.clj", 86}},
	})
}

// deleteUser serves DELETE /api/user/:id (metabase-api.md §4.6).
func (s *Server) deleteUser(w http.ResponseWriter, caller *user, id int) {
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if id == InternalUserID {
		writeText(w, http.StatusBadRequest, msgInternalUser)
		return
	}
	u := s.users[id]
	switch {
	case u == nil && s.legacyDelete:
		legacyDeleteError(w)
		return
	case u == nil:
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	case (u.kind != "personal" || !u.Active) && s.legacyDelete:
		legacyDeleteError(w)
		return
	case u.kind != "personal" || !u.Active:
		// Newest Metabase: idempotent, and non-personal users are filtered
		// out of the update, so nothing changes.
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
		return
	}
	if u.Superuser && s.otherActiveAdminsLocked(u.ID) == 0 {
		writeText(w, http.StatusBadRequest, msgLastAdmin)
		return
	}
	s.deactivateLocked(u)
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// reactivateUser serves PUT /api/user/:id/reactivate (metabase-api.md
// §4.5): it clears is_superuser.
func (s *Server) reactivateUser(w http.ResponseWriter, caller *user, id int) {
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if id == InternalUserID {
		writeText(w, http.StatusBadRequest, msgInternalUser)
		return
	}
	u := s.users[id]
	if u == nil || u.kind != "personal" {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if u.Active {
		data := map[string]any{"status-code": 400, "message": msgReactivateActive}
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"message": msgReactivateActive,
			"cause":   msgReactivateActive,
			"data":    data,
			"via":     []map[string]any{{"type": "clojure.lang.ExceptionInfo", "message": msgReactivateActive, "data": data}},
			"trace":   []any{},
		})
		return
	}
	u.Active, u.Superuser = true, false
	u.groups = normGroups(slices.DeleteFunc(slices.Clone(u.groups), func(g int) bool { return g == AdministratorsGroupID }), false)
	u.updatedAt = s.now().UTC()
	writeJSON(w, http.StatusOK, u.detailJSON())
}
