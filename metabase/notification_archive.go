package metabase

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// archiveNotification archives one card notification as Metabase's own UI
// does between v0.54 and the admin API: it reads the notification and
// sends it back whole with active false. PUT /api/notification/:id takes a
// ::FullyHydratedNotification and brings the stored notification, its
// subscriptions, handlers and recipients to what the body says
// (update-notification! in src/metabase/notification/models.clj), so the
// body must be the notification as read, not a partial one. A notification
// that was active and is not any more makes Metabase mail every email
// recipient that they were removed (notify-notification-updates! in
// src/metabase/notification/api/notification.clj, read at 16487e36). An
// already archived notification is left alone, so a repeat sends no mail.
// The PUT is never retried.
//
// GET /api/notification/:id, then PUT /api/notification/:id
func (c *Client) archiveNotification(ctx context.Context, id int) error {
	path := "api/notification/" + strconv.Itoa(id)
	var n map[string]json.RawMessage
	if err := c.do(ctx, request{method: "GET", route: "/api/notification/:id", path: path, retry: true}, &n); err != nil {
		return err
	}
	var state struct {
		Active      *bool  `json:"active"`
		PayloadType string `json:"payload_type"`
	}
	raw, _ := json.Marshal(n)
	if err := json.Unmarshal(raw, &state); err != nil {
		return fmt.Errorf("metabase: notification %d: %w", id, err)
	}
	if state.PayloadType != "notification/card" {
		return fmt.Errorf("metabase: notification %d is a %q, not an alert: %w", id, state.PayloadType, ErrNotFound)
	}
	if state.Active != nil && !*state.Active {
		return nil
	}
	n["active"] = json.RawMessage("false")
	return c.do(ctx, request{method: "PUT", route: "/api/notification/:id", path: path, body: n}, nil)
}
