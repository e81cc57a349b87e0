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
// each. The first page says how many users there are; the other pages are
// then fetched at once, so an instance of any size costs two round trips at
// most.
//
// GET /api/user?status=all&tenancy=all&limit=N&offset=N
func (c *Client) AllUsers(ctx context.Context) ([]User, error) {
	size := c.pageSize
	page := func(ctx context.Context, offset int) (userPage, error) {
		var p userPage
		err := c.do(ctx, request{
			method: "GET", route: "/api/user", path: "api/user", retry: true,
			query: url.Values{
				"status":  {string(StatusAll)},
				"tenancy": {"all"},
				"limit":   {strconv.Itoa(size)},
				"offset":  {strconv.Itoa(offset)},
			},
		}, &p)
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
