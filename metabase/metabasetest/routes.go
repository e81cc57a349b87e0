package metabasetest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Canonical Metabase messages (docs/metabase.md#error-bodies).
const (
	msgUnauthenticated  = "Unauthenticated"
	msgForbidden        = "You don't have permissions to do that."
	msgNotFound         = "Not found."
	msgNoEndpoint       = "API endpoint does not exist."
	msgLastAdmin        = "You cannot remove the last member of the 'Admin' group!"
	msgInternalUser     = "Not able to modify the internal user"
	msgReactivateActive = "Not able to reactivate an active user"
	msgMalformedJSON    = "Malformed JSON in request body."
	msgServerError      = "Internal server error."
	msgReactivateTenant = "Not able to reactivate a user in a deactivated tenant"
	// msgTenancyAndTenantID is the 400 of GET /api/user given both.
	msgTenancyAndTenantID = "You cannot specify both `tenancy` and `tenant_id`"
)

// route dispatches a request that passed the injected faults.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/api/health":
		if r.Method != http.MethodGet {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		s.mu.Lock()
		status, body := s.healthStatus, s.healthBody
		s.mu.Unlock()
		writeBody(w, status, body)
	case p == "/api/session":
		switch r.Method {
		case http.MethodPost:
			s.login(w, r)
		case http.MethodDelete:
			s.logout(w, r)
		default:
			writeText(w, http.StatusNotFound, msgNoEndpoint)
		}
	case p == "/api/user" || strings.HasPrefix(p, "/api/user/"):
		s.userRoutes(w, r)
	case isAccessPath(p):
		s.accessRoutes(w, r)
	case isNotificationPath(p):
		s.notificationRoutes(w, r)
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// validAPIKey reports whether Metabase would even look the key up
// (docs/metabase.md#api-keys): a string of 12–254 characters starting
// "mb_".
func validAPIKey(k string) bool {
	return len(k) >= 12 && len(k) <= 254 && strings.HasPrefix(k, "mb_")
}

// callerLocked returns the authenticated user: a valid session wins, then
// an API key; either needs an active user (docs/metabase.md#auth).
func (s *Server) callerLocked(r *http.Request) *user {
	if id := r.Header.Get("X-Metabase-Session"); id != "" {
		if uid, ok := s.sessions[id]; ok {
			if u := s.users[uid]; u != nil && u.Active {
				return u
			}
		}
	}
	if k := r.Header.Get("X-API-Key"); validAPIKey(k) {
		if uid, ok := s.keys[k]; ok {
			if u := s.users[uid]; u != nil && u.Active {
				return u
			}
		}
	}
	return nil
}

// parseID parses a user id the way Metabase's route regex #"[1-9]\d*"
// does; anything else is an unmatched route.
func parseID(seg string) (int, bool) {
	if seg == "" || seg[0] == '0' || !isDigits(seg) {
		return 0, false
	}
	id, err := strconv.Atoi(seg)
	return id, err == nil
}

// userRoutes serves /api/user/*. Auth is checked before the route is
// matched (docs/metabase.md#unauthenticated).
func (s *Server) userRoutes(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	caller := s.callerLocked(r)
	if caller == nil {
		writeText(w, http.StatusUnauthorized, msgUnauthenticated)
		return
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/user"), "/")
	segs := strings.Split(rest, "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		s.listUsers(w, r, caller)
	case rest == "" && r.Method == http.MethodPost:
		s.createUser(w, caller, body)
	case rest == "current" && r.Method == http.MethodGet:
		j := caller.listJSON()
		writeJSON(w, http.StatusOK, j)
	case len(segs) == 1:
		id, ok := parseID(segs[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.getUser(w, caller, id)
		case http.MethodPut:
			s.updateUser(w, caller, id, body)
		case http.MethodDelete:
			s.deleteUser(w, caller, id)
		default:
			writeText(w, http.StatusNotFound, msgNoEndpoint)
		}
	case len(segs) == 2 && segs[1] == "reactivate" && r.Method == http.MethodPut:
		id, ok := parseID(segs[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		s.reactivateUser(w, caller, id)
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}
