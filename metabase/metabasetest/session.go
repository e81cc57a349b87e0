package metabasetest

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Login throttling (docs/metabase.md#throttling): 10 failures per username
// per hour, then 401 "Too many attempts!".
const (
	throttleThreshold = 10
	throttleTTL       = time.Hour
)

// login serves POST /api/session (docs/metabase.md#login).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Username json.RawMessage `json:"username"`
		Password json.RawMessage `json:"password"`
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(raw) > 0 && json.Unmarshal(raw, &b) != nil {
		writeText(w, http.StatusBadRequest, msgMalformedJSON)
		return
	}
	var username, password string
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"username", b.Username, &username}, {"password", b.Password, &password}} {
		if json.Unmarshal(f.raw, f.dst) != nil || strings.TrimSpace(*f.dst) == "" {
			received := string(f.raw)
			if received == "" {
				received = "nil"
			}
			validationError(w, f.name, "value must be a non-blank string.", "should be a string, received: "+received)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	key := strings.ToLower(username)
	fails := slices.DeleteFunc(s.failures[key], func(t time.Time) bool { return now.Sub(t) > throttleTTL })
	if len(fails) >= throttleThreshold {
		fails = append(fails, now)
		s.failures[key] = fails
		over := float64(len(fails) - throttleThreshold)
		wait := int(15 * math.Pow(over, 1.5))
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": map[string]string{
			"username": "Too many attempts! You must wait " + strconv.Itoa(wait) + " seconds before trying again.",
		}})
		return
	}
	u := s.byEmail[key]
	if u == nil || u.kind != "personal" || u.password == "" || u.password != password {
		s.failures[key] = append(fails, now)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": map[string]string{
			"password": "did not match stored password",
		}})
		return
	}
	s.failures[key] = fails
	if !u.Active {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": map[string]string{
			"_error": "Your account is disabled.",
		}})
		return
	}
	id := newUUID()
	s.sessions[id] = u.ID
	t := now.UTC().Truncate(time.Millisecond)
	u.LastLogin = &t
	// A login updates core_user, whose updated_at moves with every update
	// (src/metabase/users/models/user.clj, :hook/updated-at-timestamped?).
	u.touch(t)
	http.SetCookie(w, &http.Cookie{Name: "metabase.SESSION", Value: url.QueryEscape(id), Path: "/", HttpOnly: true})
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

// logout serves DELETE /api/session: 204, or 404 for an unknown session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.Header.Get("X-Metabase-Session")
	if _, ok := s.sessions[id]; !ok {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	delete(s.sessions, id)
	w.WriteHeader(http.StatusNoContent)
}
