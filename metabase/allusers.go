package metabase

import (
	"context"
	"net/url"
	"strconv"

	"golang.org/x/sync/errgroup"
)

// allUsersConcurrency bounds the pages AllUsers fetches at once after the
// first.
const allUsersConcurrency = 8

// AllUsers returns every user, active or not, with or without a tenant, as
// UserByEmail would find them (API keys' users are never listed): a request
// naming many people finds them all in one listing instead of one search
// each. Like ListUsers, it costs two round trips at most, whatever the
// instance's size.
//
// GET /api/user?status=all&tenancy=all&limit=N&offset=N
func (c *Client) AllUsers(ctx context.Context) ([]User, error) {
	return c.listPages(ctx, url.Values{"status": {string(StatusAll)}, "tenancy": {"all"}})
}

// listPages walks GET /api/user with query in pages of c.pageSize: the first
// page says how many users there are, and the other pages are then fetched
// at once (at most allUsersConcurrency at a time), so a listing costs two
// round trips rather than one per page.
func (c *Client) listPages(ctx context.Context, query url.Values) ([]User, error) {
	size := c.pageSize
	page := func(ctx context.Context, offset int) (userPage, error) {
		q := url.Values{"limit": {strconv.Itoa(size)}, "offset": {strconv.Itoa(offset)}}
		for k, v := range query {
			q[k] = v
		}
		var p userPage
		err := c.do(ctx, request{method: "GET", route: "/api/user", path: "api/user", retry: true, query: q}, &p)
		return p, err
	}
	first, err := page(ctx, 0)
	if err != nil {
		return nil, err
	}
	if first.last(0, size) {
		return first.Data, nil
	}
	rest := make([][]User, (first.Total-1)/size)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(allUsersConcurrency)
	for i := range rest {
		g.Go(func() error {
			p, err := page(gctx, (i+1)*size)
			rest[i] = p.Data
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	users := first.Data
	for _, p := range rest {
		users = append(users, p...)
	}
	return users, nil
}
