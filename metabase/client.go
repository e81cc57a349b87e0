package metabase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	defaultTimeout  = 10 * time.Second
	defaultPageSize = 500
	userAgent       = "metabase-bot"
)

// Client manages communication with the Metabase API. It is safe for
// concurrent use. Create one with New.
type Client struct {
	base     *url.URL // always ends in "/"
	hc       *http.Client
	timeout  time.Duration
	retry    RetryPolicy
	observe  func(method, route string, status int, d time.Duration, err error)
	pageSize int

	apiKey             string
	username, password string

	// Seams for tests: time and randomness.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(d time.Duration) time.Duration

	// loginSem serialises logins so concurrent callers share one; it is a
	// channel rather than a mutex so that waiting respects ctx.
	loginSem chan struct{}
	session  string // guarded by loginSem
	// loginErr is the last refused login and loginErrAt when it happened (guarded by loginSem).
	loginErr   error
	loginErrAt time.Time

	facts     factsCache     // what this Metabase is and can do (facts.go)
	inventory inventoryShare // the listing requests share (inventory.go)
}

// Option configures a Client in New.
type Option func(*Client)

// RetryPolicy bounds the retries of idempotent calls (GET, DELETE and
// reactivate) after connection errors and 502, 503 or 504 replies. The
// delay before retry n is BaseDelay·2^(n-1), capped at MaxDelay, with
// jitter; no retry starts once Budget (measured from the first attempt)
// would be exceeded. Zero fields take the defaults: 4 attempts, 200ms base,
// 2s max delay, 20s budget. MaxAttempts 1 disables retries.
type RetryPolicy struct {
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
	Budget      time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 4
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 2 * time.Second
	}
	if p.Budget <= 0 {
		p.Budget = 20 * time.Second
	}
	return p
}

// WithAPIKey authenticates with a Metabase API key, sent as X-API-Key.
// The key's group must be Administrators for the user endpoints.
func WithAPIKey(key string) Option {
	return func(c *Client) { c.apiKey = key }
}

// WithPassword authenticates with a session: the client logs in lazily
// with POST /api/session and sends the id as X-Metabase-Session. When a
// session expires (401), it logs in again once and retries the call once.
func WithPassword(username, password string) Option {
	return func(c *Client) { c.username, c.password = username, password }
}

// WithHTTPClient sets the underlying HTTP client (default: a new
// http.Client). Use WithTimeout for the per-request timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout sets the timeout of each HTTP attempt (default 10s).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithRetry sets the retry policy for idempotent calls.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) { c.retry = p.withDefaults() }
}

// WithObserver registers f to be called once per HTTP attempt, e.g. for
// metrics. route is a template such as "/api/user/:id", so it is safe as a
// metric label; status is 0 when no response arrived.
func WithObserver(f func(method, route string, status int, d time.Duration, err error)) Option {
	return func(c *Client) { c.observe = f }
}

// WithPageSize sets the page size ListUsers requests (default 500).
func WithPageSize(n int) Option {
	return func(c *Client) {
		if n > 0 {
			c.pageSize = n
		}
	}
}

// New returns a Client for the Metabase at baseURL, such as
// "https://metabase.example.com" or "https://example.com/metabase/". The
// URL must be absolute http or https.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		// url.Error repeats the URL, which may hold credentials: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("metabase: invalid base URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("metabase: invalid base URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("metabase: invalid base URL %q: missing host", u.Redacted())
	}
	u.User = nil
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := &Client{
		base:     u,
		hc:       &http.Client{},
		timeout:  defaultTimeout,
		retry:    RetryPolicy{}.withDefaults(),
		pageSize: defaultPageSize,
		now:      time.Now,
		sleep:    sleepCtx,
		jitter:   equalJitter,
		loginSem: make(chan struct{}, 1),
	}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// equalJitter returns a delay uniformly drawn from [d/2, d].
func equalJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// request describes one API call.
type request struct {
	method string
	route  string // template for the observer, e.g. "/api/user/:id"
	path   string // relative to the base URL, e.g. "api/user/5"
	query  url.Values
	body   any
	retry  bool // safe to repeat: GET, DELETE, reactivate
	noAuth bool
}

// do runs r, decoding a 2xx JSON body into out (if non-nil). With session
// auth it logs in lazily and, on a 401, logs in again once and retries
// once.
func (c *Client) do(ctx context.Context, r request, out any) error {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("metabase: %s /%s: encode body: %w", r.method, r.path, err)
		}
	}
	if r.noAuth || c.username == "" {
		return c.doRetry(ctx, r, body, "", out)
	}
	sess, err := c.sessionID(ctx, "")
	if err != nil {
		return err
	}
	err = c.doRetry(ctx, r, body, sess, out)
	if !isStatus(err, http.StatusUnauthorized) {
		return err
	}
	// The session expired or was revoked: one fresh login, one retry.
	if sess, err = c.sessionID(ctx, sess); err != nil {
		return err
	}
	return c.doRetry(ctx, r, body, sess, out)
}

func isStatus(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == code
}

// doRetry runs attempts of r until one succeeds, the error is not
// retryable, or the policy, budget or ctx runs out.
func (c *Client) doRetry(ctx context.Context, r request, body []byte, sess string, out any) error {
	start := c.now()
	for attempt := 1; ; attempt++ {
		retryable, err := c.attempt(ctx, r, body, sess, out)
		if err == nil || !retryable || !r.retry || attempt >= c.retry.MaxAttempts {
			return err
		}
		d := c.jitter(c.backoff(attempt))
		if c.now().Sub(start)+d > c.retry.Budget {
			return err
		}
		if serr := c.sleep(ctx, d); serr != nil {
			return fmt.Errorf("metabase: %s %s: %w (last error: %v)", r.method, c.urlFor(r).Path, serr, err)
		}
	}
}

// backoff returns the un-jittered delay after the given attempt:
// BaseDelay·2^(attempt-1), capped at MaxDelay.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay
	for i := 1; i < attempt && d < c.retry.MaxDelay; i++ {
		d *= 2
	}
	return min(d, c.retry.MaxDelay)
}

func (c *Client) urlFor(r request) *url.URL {
	u := *c.base
	u.Path = c.base.Path + r.path
	if r.query != nil {
		u.RawQuery = r.query.Encode()
	}
	return &u
}

// attempt performs one HTTP round trip under the per-request timeout and
// reports whether a failure may be retried.
func (c *Client) attempt(ctx context.Context, r request, body []byte, sess string, out any) (retryable bool, err error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.urlFor(r)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, u.String(), rd)
	if err != nil {
		return false, fmt.Errorf("metabase: %s %s: build request: %w", r.method, u.Path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !r.noAuth {
		if sess != "" {
			req.Header.Set("X-Metabase-Session", sess)
		} else if c.apiKey != "" {
			req.Header.Set("X-API-Key", c.apiKey)
		}
	}

	start := c.now()
	status := 0
	defer func() {
		if c.observe != nil {
			c.observe(r.method, r.route, status, c.now().Sub(start), err)
		}
	}()

	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, actx, r.method, u.Path, err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	status = resp.StatusCode
	if err := checkResponse(resp); err != nil {
		markNoRoute(err, r.route)
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true, err
		}
		return false, err
	}
	if out == nil {
		return false, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if actx.Err() != nil {
			return c.transportError(ctx, actx, r.method, u.Path, err)
		}
		return false, fmt.Errorf("metabase: %s %s: decode response: %w", r.method, u.Path, err)
	}
	return false, nil
}

// transportError wraps a failure without a response. The caller's
// cancellation wins; a per-request timeout is reported as such. The
// *url.Error wrapper is dropped because it repeats the full URL.
func (c *Client) transportError(ctx, actx context.Context, method, path string, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, fmt.Errorf("metabase: %s %s: %w", method, path, ctxErr)
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return true, fmt.Errorf("metabase: %s %s: timed out after %s: %w", method, path, c.timeout, context.DeadlineExceeded)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return true, fmt.Errorf("metabase: %s %s: %w", method, path, err)
}
