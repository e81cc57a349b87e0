package metabase

import "context"

// Health reports whether Metabase is up. It needs no credentials. Any
// reply but 200 is an *APIError: Metabase answers 503 while it starts or
// when its application database is down. Health is not retried, so it
// reports the state as it is.
//
// GET /api/health
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, request{method: "GET", route: "/api/health", path: "api/health", noAuth: true}, nil)
}
