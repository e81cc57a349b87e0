package metabase

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// PersonalCollectionItemCount returns how many items (questions, models,
// dashboards, collections, …) sit directly in the user's personal
// collection, archived ones excepted. It reads the collection id from
// u.PersonalCollectionID, which the user listings set; for a user read with
// User (GET /api/user/:id, which does not carry it) it looks the user up by
// email first. One call per user: Metabase has no endpoint that counts
// several collections at once.
//
// GET /api/collection/:id/items?limit=1&offset=0 (its "total")
func (c *Client) PersonalCollectionItemCount(ctx context.Context, u *User) (int, error) {
	if u == nil {
		return 0, errors.New("metabase: personal collection: no user")
	}
	cid := u.PersonalCollectionID
	if cid == 0 {
		if u.Email == "" {
			return 0, fmt.Errorf("metabase: personal collection of user %d: no collection id and no email", u.ID)
		}
		found, err := c.UserByEmail(ctx, u.Email)
		if err != nil {
			return 0, err
		}
		if cid = found.PersonalCollectionID; cid == 0 {
			return 0, fmt.Errorf("metabase: user %d has no personal collection", u.ID)
		}
	}
	var page struct {
		Total int `json:"total"`
	}
	err := c.do(ctx, request{
		method: "GET", route: "/api/collection/:id/items", path: "api/collection/" + strconv.Itoa(cid) + "/items", retry: true,
		query: map[string][]string{"limit": {"1"}, "offset": {"0"}},
	}, &page)
	if err != nil {
		return 0, err
	}
	return page.Total, nil
}
