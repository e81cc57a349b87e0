package metabasetest

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

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
