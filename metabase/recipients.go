package metabase

import (
	"context"
	"net/url"
	"strconv"
)

// inactiveRecipients returns the ids of the deactivated users among the
// user recipients of rows, or nil when no row has a hydrated user
// recipient. A deactivated user receives nothing (Metabase sends only to
// active users), but the notification versions before recipients-detail
// hydrate every user recipient, active or not, with the user's default
// columns, which do not include is_active: the batched :recipients
// hydration of :model/NotificationHandler in
// src/metabase/notification/models.clj ((t2/hydrate recipients :user) for
// every :notification-recipient/user). Newer versions attach "user": null
// to a deactivated one (recipients-detail) and need no look-up. So only
// when a hydrated user recipient is present are the deactivated users
// listed, once for the whole listing (docs/metabase-notifications.md#5-alerts-from-054-notifications).
//
// GET /api/user?status=deactivated&tenancy=all&limit=N&offset=N
func (c *Client) inactiveRecipients(ctx context.Context, rows []notificationJSON) (map[int]bool, error) {
	wanted := map[int]bool{}
	for _, j := range rows {
		for _, h := range j.Handlers {
			for _, r := range h.Recipients {
				if r.Type == "notification-recipient/user" && r.UserID != nil && len(r.User) > 0 && string(r.User) != "null" {
					wanted[*r.UserID] = true
				}
			}
		}
	}
	if len(wanted) == 0 {
		return nil, nil
	}
	inactive := map[int]bool{}
	for offset := 0; ; offset += c.pageSize {
		var page userPage
		err := c.do(ctx, request{
			method: "GET", route: "/api/user", path: "api/user", retry: true,
			query: url.Values{
				"status":  {string(StatusDeactivated)},
				"tenancy": {"all"},
				"limit":   {strconv.Itoa(c.pageSize)},
				"offset":  {strconv.Itoa(offset)},
			},
		}, &page)
		if err != nil {
			return nil, err
		}
		for _, u := range page.Data {
			if wanted[u.ID] && !u.IsActive {
				inactive[u.ID] = true
			}
		}
		if page.last(offset, c.pageSize) {
			return inactive, nil
		}
	}
}
