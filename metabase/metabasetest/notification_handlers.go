package metabasetest

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
		s.sessionProperties(w, r)
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
// no credential (src/metabase/session/api.clj); with one, it adds the
// settings the caller may read (settingsForLocked).
func (s *Server) sessionProperties(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tag := s.tagLocked()
	props := s.settingsForLocked(s.callerLocked(r))
	s.mu.Unlock()
	props["version"] = map[string]string{"tag": tag, "date": fakeVersionDate, "branch": "release-x." + strings.TrimPrefix(tag, "v"), "hash": "0000000"}
	props["site-name"] = "Metabase"
	writeJSON(w, http.StatusOK, props)
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
