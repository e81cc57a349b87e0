package metabase

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// checkIDs rejects an empty list or an id that is not positive before any
// call: Metabase would answer 400, and an empty bulk action has nothing to
// do.
func checkIDs(op string, ids []int) error {
	if len(ids) == 0 {
		return fmt.Errorf("metabase: %s: no ids", op)
	}
	for _, id := range ids {
		if id <= 0 {
			return fmt.Errorf("metabase: %s: invalid id %d", op, id)
		}
	}
	return nil
}

// bulkAction is the body of POST /api/notification/admin/bulk.
type bulkAction struct {
	NotificationIDs []int  `json:"notification_ids"`
	Action          string `json:"action"`
	CreatorID       int    `json:"creator_id,omitempty"`
}

// bulk runs one bulk action. It is never retried, like every write.
//
// POST /api/notification/admin/bulk
func (c *Client) bulk(ctx context.Context, body bulkAction) (int, error) {
	var out struct {
		Updated int `json:"updated"`
	}
	err := c.do(ctx, request{
		method: "POST", route: "/api/notification/admin/bulk", path: "api/notification/admin/bulk", body: body,
	}, &out)
	if errors.Is(err, ErrNotSupported) {
		c.forgetCapabilities()
	}
	if err != nil {
		return 0, err
	}
	return out.Updated, nil
}

// ChangeAlertCreator makes newCreatorID the creator of the given alerts, so
// that they run with that user's permissions from then on. It returns how
// many alerts Metabase updated: ids that are not alerts (already deleted,
// or another kind of notification) are skipped silently, so a count below
// len(ids) means some were gone. Metabase checks neither that the new
// creator is active nor, beyond its foreign key, that it exists: check the
// successor first. The call is all or nothing and never retried.
//
// Where Capabilities().MoveAlerts is false (every version before the admin
// API) it returns an error matching ErrNotSupported without calling
// Metabase. Dashboard subscriptions cannot change creator in any version.
//
// POST /api/notification/admin/bulk {"action": "change-creator"}
func (c *Client) ChangeAlertCreator(ctx context.Context, ids []int, newCreatorID int) (int, error) {
	const op = "change alert creator"
	if err := checkIDs(op, ids); err != nil {
		return 0, err
	}
	if newCreatorID <= 0 {
		return 0, fmt.Errorf("metabase: %s: invalid new creator %d", op, newCreatorID)
	}
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return 0, err
	}
	if !caps.MoveAlerts {
		return 0, fmt.Errorf("metabase: %s: Metabase %s cannot move alerts: %w", op, caps.Version, ErrNotSupported)
	}
	return c.bulk(ctx, bulkAction{NotificationIDs: ids, Action: "change-creator", CreatorID: newCreatorID})
}

// ArchiveAlerts archives the given alerts, which stops them, and returns how
// many Metabase archived; ids of alerts that no longer exist are skipped,
// and archiving an archived alert counts. With the admin API it is one
// all-or-nothing call; from v0.54 until the admin API it is one GET and one
// PUT /api/notification/:id per alert (see archiveNotification); before
// v0.54 one PUT /api/alert/:id per alert. The per-alert paths go in order
// and stop at the first failure (the count says how far it got). Writes
// are never retried. In the notification versions Metabase mails each
// email recipient that they were removed (Capabilities.ArchiveAlertsEmails).
//
// POST /api/notification/admin/bulk {"action": "archive"},
// PUT /api/notification/:id {…, "active": false}, or PUT /api/alert/:id {"archived": true}
func (c *Client) ArchiveAlerts(ctx context.Context, ids []int) (int, error) {
	const op = "archive alerts"
	if err := checkIDs(op, ids); err != nil {
		return 0, err
	}
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return 0, err
	}
	switch {
	case !caps.ArchiveAlerts:
		return 0, fmt.Errorf("metabase: %s: Metabase %s cannot archive alerts: %w", op, caps.Version, ErrNotSupported)
	case caps.Alerts == AlertsFromNotificationAdmin:
		return c.bulk(ctx, bulkAction{NotificationIDs: ids, Action: "archive"})
	}
	done := 0
	for _, id := range ids {
		var err error
		if caps.Alerts == AlertsFromNotification {
			err = c.archiveNotification(ctx, id)
		} else {
			err = c.do(ctx, request{
				method: "PUT", route: "/api/alert/:id", path: "api/alert/" + strconv.Itoa(id),
				body: map[string]bool{"archived": true},
			}, nil)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			// Gone, as the bulk action skips it, unless the route itself is
			// gone: a 404 cannot tell (Metabase's words are translated), so
			// the capabilities are read again.
			if gone, cerr := c.stillSupported(ctx, caps.Alerts); cerr != nil || !gone {
				if cerr == nil {
					cerr = fmt.Errorf("metabase: %s: Metabase changed version: %w", op, ErrNotSupported)
				}
				return done, cerr
			}
			continue
		case err != nil:
			return done, fmt.Errorf("metabase: archive alert %d: %w", id, err)
		}
		done++
	}
	return done, nil
}

// stillSupported forgets the remembered capabilities and reports whether
// alerts are still where they were (src), after a 404 of a route with an
// id: then the object is gone, otherwise Metabase changed version.
func (c *Client) stillSupported(ctx context.Context, src AlertSource) (bool, error) {
	c.forgetCapabilities()
	caps, err := c.Capabilities(ctx)
	if err != nil {
		return false, err
	}
	return caps.Alerts == src && caps.ArchiveAlerts, nil
}

// ArchiveSubscription archives a dashboard subscription, which stops it. It
// is idempotent: an archived subscription is left alone. It reads the
// subscription first because PUT /api/pulse/:id fills absent fields with
// their defaults, so the body repeats skip_if_empty to keep it; the PUT is
// never retried. A missing subscription matches ErrNotFound.
//
// GET /api/pulse/:id, then PUT /api/pulse/:id {"archived": true, "skip_if_empty": …}
func (c *Client) ArchiveSubscription(ctx context.Context, id int) error {
	if id <= 0 {
		return fmt.Errorf("metabase: archive subscription: invalid id %d", id)
	}
	path := "api/pulse/" + strconv.Itoa(id)
	var p pulseJSON
	if err := c.do(ctx, request{method: "GET", route: "/api/pulse/:id", path: path, retry: true}, &p); err != nil {
		return err
	}
	if p.Archived {
		return nil
	}
	return c.do(ctx, request{
		method: "PUT", route: "/api/pulse/:id", path: path,
		body: map[string]bool{"archived": true, "skip_if_empty": p.SkipIfEmpty},
	}, nil)
}
