package metabasetest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// RemovalEmail is one "you were removed" email Metabase sent when a
// notification was archived through PUT /api/notification/:id.
type RemovalEmail struct {
	AlertID int
	// To are the addresses mailed: every email recipient of the alert, users
	// (active or not) and raw addresses.
	To []string
}

// RemovalEmails returns the "you were removed" emails sent so far, in order.
func (s *Server) RemovalEmails() []RemovalEmail {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RemovalEmail, len(s.notif.removals))
	for i, e := range s.notif.removals {
		out[i] = RemovalEmail{AlertID: e.AlertID, To: slices.Clone(e.To)}
	}
	return out
}

// putNotification serves PUT /api/notification/:id, which exists from
// v0.54 on (src/metabase/notification/api/notification.clj, read at
// 16487e36):
//   - the body is a ::FullyHydratedNotification: payload_type is required,
//     and a card notification needs payload.card_id; else 400;
//   - a missing notification is 404 (get-notification's check-404), one
//     the caller may not write 403 (update-check; an admin writes all);
//   - update-notification! brings the stored notification, its payload,
//     subscriptions and handlers with their recipients to what the body
//     says (models.spec-update). The fake applies active and, strictly,
//     treats a body without handlers as removing every recipient (the
//     nested spec update of an absent key is inferred, not read);
//   - for a card notification that was active and is not any more,
//     notify-notification-updates! mails every email recipient (users, by
//     their email whether active or not, and raw addresses) that they were
//     removed, when email is configured (the fake counts it as
//     configured); RemovalEmails records it;
//   - the reply is the notification as GET /api/notification/:id gives it.
func (s *Server) putNotification(w http.ResponseWriter, id int, body []byte, caller *user) {
	var b struct {
		PayloadType *string          `json:"payload_type"`
		Active      *bool            `json:"active"`
		Payload     *json.RawMessage `json:"payload"`
		Handlers    *json.RawMessage `json:"handlers"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		writeText(w, http.StatusBadRequest, msgMalformedJSON)
		return
	}
	if b.PayloadType == nil || !strings.HasPrefix(*b.PayloadType, "notification/") {
		validationError(w, "payload_type", "enum of :notification/system-event, :notification/dashboard, :notification/card, :notification/testing",
			"should be either :notification/system-event, :notification/dashboard, :notification/card or :notification/testing")
		return
	}
	if *b.PayloadType == "notification/card" {
		var p struct {
			CardID int `json:"card_id"`
		}
		if b.Payload == nil || json.Unmarshal(*b.Payload, &p) != nil || p.CardID <= 0 {
			validationError(w, "payload", "map where {:card_id -> <value must be an integer greater than zero.>}",
				"missing required key, received: nil")
			return
		}
	}
	a := s.notif.alerts[id]
	if a == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !caller.Superuser && caller.ID != a.CreatorID {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	wasActive := !a.Archived
	if b.Active != nil {
		a.Archived = !*b.Active
	}
	var removedFrom []string
	if wasActive && a.Archived {
		for _, uid := range a.UserIDs {
			if u := s.users[uid]; u != nil {
				removedFrom = append(removedFrom, u.Email)
			}
		}
		removedFrom = append(removedFrom, a.Emails...)
	}
	if b.Handlers == nil {
		a.UserIDs, a.Emails, a.SlackChannels = nil, nil, nil
	}
	if len(removedFrom) > 0 {
		s.notif.removals = append(s.notif.removals, RemovalEmail{AlertID: a.ID, To: removedFrom})
	}
	writeJSON(w, http.StatusOK, s.notificationJSONLocked(a, false))
}
