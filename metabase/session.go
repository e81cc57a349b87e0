package metabase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// sessionID returns the current session id, logging in when there is none
// or when the current one equals stale (it was just rejected). Concurrent
// callers share one login.
func (c *Client) sessionID(ctx context.Context, stale string) (string, error) {
	select {
	case c.loginSem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("metabase: login: %w", ctx.Err())
	}
	defer func() { <-c.loginSem }()
	if c.session != "" && c.session != stale {
		return c.session, nil
	}
	c.session = ""
	// A refused login is remembered for a while: Metabase locks a username out after 10 failed
	// attempts, and a busy bot would otherwise spend them all within seconds of a password change.
	if c.loginErr != nil && time.Since(c.loginErrAt) < loginCooldown {
		return "", c.loginErr
	}
	id, err := c.login(ctx)
	if err != nil {
		if errors.Is(err, ErrUnauthorized) {
			c.loginErr, c.loginErrAt = err, time.Now()
		}
		return "", err
	}
	c.loginErr = nil
	c.session = id
	return id, nil
}

// loginCooldown is how long a refused login is reported again without asking Metabase.
const loginCooldown = time.Minute

// login creates a session. It is never retried: Metabase throttles
// logins (a 401 "Too many attempts!"), so repeating one can only hurt.
//
// POST /api/session
func (c *Client) login(ctx context.Context) (string, error) {
	body := struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{c.username, c.password}
	b, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("metabase: POST /api/session: encode body: %w", err)
	}
	var out struct {
		ID string `json:"id"`
	}
	err = c.doRetry(ctx, request{
		method: "POST", route: "/api/session", path: "api/session",
		body: body, noAuth: true,
	}, b, "", &out)
	if err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("metabase: POST /api/session: response has no session id")
	}
	return out.ID, nil
}
