package metabasetest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// listUsers serves GET /api/user (docs/metabase.md#list-users).
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, caller *user) {
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	q := r.URL.Query()
	inTenancy, ok := s.tenancyFilter(w, q)
	if !ok {
		return
	}
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
		if !inTenancy(u) {
			continue
		}
		if !paged || (total >= offset && len(rows) < limit) {
			rows = append(rows, u.listJSON())
		}
		total++
	}
	reportRows(r, len(rows))
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

// tenancyFilter reads the tenancy and tenant_id parameters of the newest
// GET /api/user (users_rest/api.clj): by default only users without a
// tenant are listed; tenancy=all lists everyone, tenancy=external tenant
// users only, tenant_id=N the users of tenant N. Older versions ignore
// both parameters and have no tenants.
func (s *Server) tenancyFilter(w http.ResponseWriter, q url.Values) (func(*user) bool, bool) {
	all := func(*user) bool { return true }
	if s.legacyDelete {
		return all, true
	}
	tenancy, hasTenancy := q["tenancy"]
	tenantID, hasTenantID := q["tenant_id"]
	if hasTenancy && hasTenantID {
		writeText(w, http.StatusBadRequest, msgTenancyAndTenantID)
		return nil, false
	}
	if hasTenantID {
		id, err := strconv.Atoi(tenantID[0])
		if err != nil || id <= 0 {
			validationError(w, "tenant_id", "nullable value must be an integer greater than zero.",
				"should be an integer greater than zero, received: "+strconv.Quote(tenantID[0]))
			return nil, false
		}
		return func(u *user) bool { return u.TenantID == id }, true
	}
	internal := func(u *user) bool { return u.TenantID == 0 }
	if !hasTenancy {
		return internal, true
	}
	switch t := tenancy[0]; t {
	case "all":
		return all, true
	case "external":
		return func(u *user) bool { return u.TenantID != 0 }, true
	case "internal":
		return internal, true
	default:
		validationError(w, "tenancy", "nullable enum of :all, :internal, :external",
			"should be either :all, :internal or :external, received: "+strconv.Quote(t))
		return nil, false
	}
}

// nonNegInt parses a paging parameter; Metabase ignores non-numeric ones.
func nonNegInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// getUser serves GET /api/user/:id (docs/metabase.md#get-user). It
// returns users of every type, API keys included.
func (s *Server) getUser(w http.ResponseWriter, caller *user, id int) {
	if !caller.Superuser && caller.ID != id {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	u := s.users[id]
	// The version with the legacy DELETE fetches (fetch-user :id id,
	// :is_active true): an inactive user is 404 (docs/metabase.md#get-user).
	// From PR #36905 (merged 2023-12-19, before API keys shipped in 0.49)
	// the user endpoints select personal users only, until PR #44100
	// (2024-06) let GET /:id fetch any user again: an API key's user is a
	// 404 there too (docs/metabase.md#api-key-users-in-049050; inferred from
	// the two PRs, the 0.49 file was not read at a pinned commit).
	if u == nil || (s.legacyDelete && (!u.Active || u.kind != "personal")) {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	writeJSON(w, http.StatusOK, u.detailJSON(s.advanced))
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

// validationError writes Metabase's malli 400
// (docs/metabase.md#error-bodies).
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

// userRequest is a decoded PUT or POST /api/user body; nil fields were
// absent or null.
type userRequest struct {
	email, first, last *string
	super              *bool
	// memberships is nil when user_group_memberships was absent or null;
	// an empty list is not nil.
	memberships []membershipEntry
}

// decodeUserBody parses and validates a user body; on failure it has
// already written the 400.
func decodeUserBody(w http.ResponseWriter, body []byte) (req userRequest, ok bool) {
	var b userBody
	if len(body) > 0 {
		if err := json.Unmarshal(body, &b); err != nil {
			writeText(w, http.StatusBadRequest, msgMalformedJSON)
			return req, false
		}
	}
	if req.email, ok = optionalString(w, "email", b.Email); !ok {
		return req, false
	}
	if req.email != nil && !strings.Contains(*req.email, "@") {
		validationError(w, "email", "nullable value must be a valid email address.",
			"should be a valid email address, received: "+string(b.Email))
		return req, false
	}
	if req.first, ok = optionalString(w, "first_name", b.FirstName); !ok {
		return req, false
	}
	if req.last, ok = optionalString(w, "last_name", b.LastName); !ok {
		return req, false
	}
	if !isNull(b.IsSuperuser) {
		var v bool
		if json.Unmarshal(b.IsSuperuser, &v) != nil {
			validationError(w, "is_superuser", "nullable boolean", "should be a boolean, received: "+string(b.IsSuperuser))
			return req, false
		}
		req.super = &v
	}
	if !isNull(b.UserGroupMemberships) {
		var ms []struct {
			ID      int   `json:"id"`
			Manager *bool `json:"is_group_manager"`
		}
		bad := json.Unmarshal(b.UserGroupMemberships, &ms) != nil
		for _, m := range ms {
			bad = bad || m.ID <= 0
		}
		if bad {
			validationError(w, "user_group_memberships",
				"nullable sequence of map where {:id -> <value must be an integer greater than zero.>, :is_group_manager (optional) -> <boolean>}",
				"invalid type, received: "+string(b.UserGroupMemberships))
			return req, false
		}
		req.memberships = make([]membershipEntry, len(ms))
		for i, m := range ms {
			req.memberships[i] = membershipEntry{ID: m.ID, Manager: m.Manager}
		}
	}
	return req, true
}

// updateUser serves PUT /api/user/:id (docs/metabase.md#update-user), in
// the order of users_rest/api.clj: is_superuser first (through the user
// model's before-update, which adds or removes the Admin membership), then
// user_group_memberships. is_active is not part of the schema and is
// dropped. Nothing changes unless every step succeeds.
func (s *Server) updateUser(w http.ResponseWriter, caller *user, id int, body []byte) {
	req, ok := decodeUserBody(w, body)
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
	if req.email != nil && !strings.EqualFold(*req.email, u.Email) {
		if _, taken := s.byEmail[strings.ToLower(*req.email)]; taken {
			checkpError(w, "email", "Email address already associated to another user.")
			return
		}
	}
	st := memberState{groups: u.groups, managers: u.managers, super: u.Superuser}
	if caller.Superuser && req.super != nil && *req.super != u.Superuser {
		if *req.super {
			if u.TenantID != 0 {
				badGroupPair(w) // the Admin group is no tenant group
				return
			}
			st.groups = normGroups(st.groups, u.baseGroup(), true)
		} else {
			if s.otherActiveAdminsLocked(u.ID) == 0 {
				writeText(w, http.StatusBadRequest, msgLastAdmin)
				return
			}
			st.groups = slices.DeleteFunc(slices.Clone(st.groups), func(g int) bool { return g == AdministratorsGroupID })
			st.managers = slices.DeleteFunc(slices.Clone(st.managers), func(g int) bool { return g == AdministratorsGroupID })
		}
		st.super = *req.super
	}
	if req.memberships != nil {
		if st, ok = s.planMemberships(w, u, caller, st, req.super, req.memberships); !ok {
			return
		}
	}
	if req.email != nil || req.first != nil || req.last != nil {
		s.removeSortedLocked(u)
		delete(s.byEmail, u.le)
		if req.email != nil {
			u.Email = *req.email
		}
		if req.first != nil {
			u.FirstName = *req.first
		}
		if req.last != nil {
			u.LastName = *req.last
		}
		s.insertLocked(u)
	}
	u.groups, u.managers, u.Superuser = st.groups, st.managers, st.super
	u.touch(s.now())
	writeJSON(w, http.StatusOK, u.detailJSON(s.advanced))
}

// createUser serves POST /api/user (superuser only). The user starts in
// All Users and then gets user_group_memberships under the rules of PUT;
// if they fail, no user is created.
func (s *Server) createUser(w http.ResponseWriter, caller *user, body []byte) {
	req, ok := decodeUserBody(w, body)
	if !ok {
		return
	}
	if req.email == nil {
		validationError(w, "email", "value must be a valid email address.", "should be a valid email address, received: nil")
		return
	}
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if _, taken := s.byEmail[strings.ToLower(*req.email)]; taken {
		checkpError(w, "email", "Email address already in use.")
		return
	}
	nu := User{Email: *req.email, Active: true}
	if req.first != nil {
		nu.FirstName = *req.first
	}
	if req.last != nil {
		nu.LastName = *req.last
	}
	u, err := s.newUserLocked(nu)
	if err != nil {
		writeText(w, http.StatusInternalServerError, msgServerError)
		return
	}
	if req.memberships != nil {
		// POST has no is_superuser; the new user has no other admin status.
		st, ok := s.planMemberships(w, u, caller, memberState{groups: u.groups}, nil, req.memberships)
		if !ok {
			return
		}
		u.groups, u.managers, u.Superuser = st.groups, st.managers, st.super
	}
	s.insertLocked(u)
	writeJSON(w, http.StatusOK, u.detailJSON(s.advanced))
}

// legacyServerError is a 500 of older Metabase: its check-500
// (metabase/metabase#66599) or an uncaught database error, as a JSON stack
// trace.
func legacyServerError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusInternalServerError, map[string]any{
		"message": msg,
		"cause":   msg,
		"data":    map[string]any{"status-code": 500},
		"via": []map[string]any{{
			"type": "clojure.lang.ExceptionInfo", "message": msg,
			"data": map[string]any{"status-code": 500}, "at": []any{"metabase.api.common$check", "invokeStatic", "common.clj", 86},
		}},
		"trace": []any{[]any{"metabase.api.common$check", "invokeStatic", "common.clj", 86}},
	})
}

// deleteUser serves DELETE /api/user/:id (docs/metabase.md#delete-user).
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
		legacyServerError(w, msgServerError)
		return
	case u == nil:
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	case (u.kind != "personal" || !u.Active) && s.legacyDelete:
		legacyServerError(w, msgServerError)
		return
	case u.kind != "personal" || !u.Active:
		// Newest Metabase: idempotent, and the update is filtered by
		// {:type :personal}, so for an API key's user nothing changes.
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

// reactivateUser serves PUT /api/user/:id/reactivate
// (docs/metabase.md#reactivate): personal users only; it clears
// is_superuser and with it the Admin membership, and keeps every other
// group.
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
	switch {
	case u.Active:
		jsonMessage400(w, msgReactivateActive)
		return
	case u.TenantID != 0 && !s.tenants[u.TenantID]:
		jsonMessage400(w, msgReactivateTenant)
		return
	case s.reactivationRefusedLocked(u):
		// Clearing is_superuser deletes the Admin membership, whose
		// before-delete runs the last-admin check; the whole update is
		// refused (see WithLastAdminBefore68198).
		writeText(w, http.StatusBadRequest, msgLastAdmin)
		return
	}
	u.Active, u.Superuser = true, false
	u.groups = slices.DeleteFunc(slices.Clone(u.groups), func(g int) bool { return g == AdministratorsGroupID })
	u.managers = slices.DeleteFunc(slices.Clone(u.managers), func(g int) bool { return g == AdministratorsGroupID })
	u.touch(s.now())
	writeJSON(w, http.StatusOK, u.detailJSON(s.advanced))
}

// jsonMessage400 writes the 400 of Metabase's api/check with a {:message}
// map: JSON with "message" and the exception's other keys.
func jsonMessage400(w http.ResponseWriter, msg string) {
	data := map[string]any{"status-code": 400, "message": msg}
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"message": msg,
		"cause":   msg,
		"data":    data,
		"via":     []map[string]any{{"type": "clojure.lang.ExceptionInfo", "message": msg, "data": data}},
		"trace":   []any{},
	})
}
