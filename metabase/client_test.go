package metabase

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// fakeClock is a manual clock; sleeping advances it and records the delay.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.t = f.t.Add(d)
	return nil
}

func (f *fakeClock) delays() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// newTestClient returns a client for baseURL whose backoff sleeps advance
// a fake clock instead of waiting.
func newTestClient(t *testing.T, baseURL string, opts ...Option) (*Client, *fakeClock) {
	t.Helper()
	c, err := New(baseURL, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", baseURL, err)
	}
	clock := &fakeClock{t: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)}
	c.now, c.sleep = clock.now, clock.sleep
	return c, clock
}

// setup starts a fake Metabase and an admin client for it.
func setup(t *testing.T, opts ...Option) (*Client, *metabasetest.Server) {
	t.Helper()
	s := metabasetest.New(t)
	c, _ := newTestClient(t, s.URL(), append([]Option{WithAPIKey(metabasetest.AdminAPIKey)}, opts...)...)
	return c, s
}

// setupMux returns a client whose base URL has the path prefix /metabase/,
// and the mux behind it (go-github's setup), for raw responses.
func setupMux(t *testing.T, opts ...Option) (*Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, _ := newTestClient(t, srv.URL+"/metabase/", opts...)
	return c, mux
}

func TestNew_BaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		base    string
		wantErr string
	}{
		{"no slash", "https://mb.example.com", ""},
		{"slash", "https://mb.example.com/", ""},
		{"prefix", "http://mb.example.com/metabase", ""},
		{"prefix slash", "http://mb.example.com/metabase/", ""},
		{"ftp", "ftp://mb.example.com", "scheme must be http or https"},
		{"relative", "mb.example.com", "scheme must be http or https"},
		{"no host", "https://", "missing host"},
		{"unparseable", "http://[::1", "invalid base URL"},
		{"empty", "", "scheme must be http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.base)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%q) = %v, want nil", tt.base, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%q) = %v, want error containing %q", tt.base, err, tt.wantErr)
			}
		})
	}
}

func TestBaseURLForms(t *testing.T) {
	t.Parallel()
	// With a path prefix, every request must land under it.
	for _, suffix := range []string{"/metabase", "/metabase/"} {
		t.Run("mux"+suffix, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			mux.HandleFunc("GET /metabase/api/user/current", func(w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("X-API-Key"); got != "mb_0123456789abcdef" {
					t.Errorf("X-API-Key = %q", got)
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"id":7,"email":"a@example.com"}`))
			})
			c, _ := newTestClient(t, srv.URL+suffix, WithAPIKey("mb_0123456789abcdef"))
			u, err := c.CurrentUser(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != 7 {
				t.Errorf("ID = %d, want 7", u.ID)
			}
		})
	}
	for _, suffix := range []string{"", "/"} {
		t.Run("fake"+suffix, func(t *testing.T) {
			t.Parallel()
			s := metabasetest.New(t)
			c, _ := newTestClient(t, s.URL()+suffix, WithAPIKey(metabasetest.AdminAPIKey))
			u, err := c.CurrentUser(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if u.Email != metabasetest.AdminEmail {
				t.Errorf("Email = %q", u.Email)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	// Long enough for the retried request to reach the fake on a loaded machine (at 20 ms the
	// second attempt could time out before the fake counted it), short enough to keep the test fast.
	c, s := setup(t, WithTimeout(250*time.Millisecond), WithRetry(RetryPolicy{MaxAttempts: 2}))
	s.SetLatency("GET", "/api/user/:id", time.Minute)
	_, err := c.User(t.Context(), 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "timed out after 250ms") {
		t.Errorf("err = %q, want it to name the timeout", err)
	}
	// A timed-out GET is a transient failure, so it is retried.
	if n := s.Count("GET", "/api/user/1"); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	t.Run("before", func(t *testing.T) {
		t.Parallel()
		c, s := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := c.User(ctx, 1)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want Canceled", err)
		}
		if n := s.Count("", "/api/"); n != 0 {
			t.Errorf("requests = %d, want 0", n)
		}
	})
	t.Run("in flight", func(t *testing.T) {
		t.Parallel()
		c, s := setup(t)
		release := s.Hold("DELETE", "/api/user/:id")
		defer release()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- c.DisableUser(ctx, 1) }()
		if err := s.WaitForRequests(t.Context(), "DELETE", "/api/user/1", 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		err := <-errc
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want Canceled", err)
		}
		var ae *APIError
		if errors.As(err, &ae) {
			t.Errorf("err is an APIError: %v", ae)
		}
		if n := s.Count("", "/api/"); n != 1 {
			t.Errorf("requests = %d, want 1 (no retry after cancel)", n)
		}
	})
}

func TestRetry(t *testing.T) {
	t.Parallel()
	bob := metabasetest.User{Email: "bob@example.com", FirstName: "Bob", Active: true}
	tests := []struct {
		name     string
		method   string
		pattern  string
		failN    int
		status   int
		call     func(ctx context.Context, c *Client, id int) error
		wantReqs int
		wantErr  int // status of the expected *APIError, 0 for success
	}{
		{"GET 503 twice then ok", "GET", "/api/user/:id", 2, 503, getUser, 3, 0},
		{"GET 502 always", "GET", "/api/user/:id", -1, 502, getUser, 4, 502},
		{"GET 504 once", "GET", "/api/user/:id", 1, 504, getUser, 2, 0},
		{"GET 500 not retried", "GET", "/api/user/:id", 1, 500, getUser, 1, 500},
		{"GET 404 not retried", "GET", "/api/user/:id", 1, 404, getUser, 1, 404},
		{"GET 429 not retried", "GET", "/api/user/:id", 1, 429, getUser, 1, 429},
		{"DELETE 503 once", "DELETE", "/api/user/:id", 1, 503, disable, 2, 0},
		{"reactivate 503 once", "PUT", "/api/user/:id/reactivate", 1, 503, reactivate, 2, 0},
		{"update 503 not retried", "PUT", "/api/user/:id", 1, 503, update, 1, 503},
		{"update 400 not retried", "PUT", "/api/user/:id", 1, 400, update, 1, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			u := s.AddUser(bob)
			if tt.pattern == "/api/user/:id/reactivate" {
				if err := c.DisableUser(t.Context(), u.ID); err != nil {
					t.Fatal(err)
				}
			}
			s.FailNext(tt.method, tt.pattern, tt.failN, tt.status, "transient trouble")
			err := tt.call(t.Context(), c, u.ID)
			if got := countPattern(s, tt.method, tt.pattern, u.ID); got != tt.wantReqs {
				t.Errorf("requests = %d, want %d", got, tt.wantReqs)
			}
			if tt.wantErr == 0 {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tt.wantErr {
				t.Fatalf("err = %v, want APIError %d", err, tt.wantErr)
			}
			if ae.Message != "transient trouble" {
				t.Errorf("Message = %q", ae.Message)
			}
		})
	}
}

func countPattern(s *metabasetest.Server, method, pattern string, id int) int {
	path := strings.Replace(pattern, ":id", strconv.Itoa(id), 1)
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

func getUser(ctx context.Context, c *Client, id int) error { _, err := c.User(ctx, id); return err }
func disable(ctx context.Context, c *Client, id int) error { return c.DisableUser(ctx, id) }
func reactivate(ctx context.Context, c *Client, id int) error {
	_, err := c.ReactivateUser(ctx, id)
	return err
}
func update(ctx context.Context, c *Client, id int) error {
	yes := true
	_, err := c.UpdateUser(ctx, id, UserUpdate{IsSuperuser: &yes})
	return err
}

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy RetryPolicy
		want   []time.Duration // with jitter disabled
	}{
		{"defaults", RetryPolicy{}, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}},
		{"capped", RetryPolicy{MaxAttempts: 6, BaseDelay: time.Second, MaxDelay: 2 * time.Second},
			[]time.Duration{time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second}},
		// 200ms fits the 500ms budget; 200+400 does not.
		{"budget", RetryPolicy{MaxAttempts: 10, Budget: 500 * time.Millisecond}, []time.Duration{200 * time.Millisecond}},
		{"disabled", RetryPolicy{MaxAttempts: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := metabasetest.New(t)
			c, clock := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey), WithRetry(tt.policy))
			c.jitter = func(d time.Duration) time.Duration { return d }
			s.FailNext("GET", "/api/user/current", -1, 503, "Metabase is still initializing. Please sit tight...")
			_, err := c.CurrentUser(t.Context())
			if !isStatus(err, 503) {
				t.Fatalf("err = %v, want 503", err)
			}
			if diff := cmp.Diff(tt.want, clock.delays()); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
			if n := s.Count("GET", "/api/user/current"); n != len(tt.want)+1 {
				t.Errorf("requests = %d, want %d", n, len(tt.want)+1)
			}
		})
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	for range 1000 {
		d := equalJitter(time.Second)
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("equalJitter(1s) = %v, want within [500ms, 1s]", d)
		}
	}
}

func TestTransportErrorRetried(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	c, clock := newTestClient(t, "http://"+addr, WithAPIKey("mb_0123456789abcdef"))
	_, err := c.CurrentUser(t.Context())
	if err == nil {
		t.Fatal("err = nil")
	}
	var ae *APIError
	if errors.As(err, &ae) {
		t.Fatalf("err = %v, want a transport error", err)
	}
	if !strings.HasPrefix(err.Error(), "metabase: GET /api/user/current: ") {
		t.Errorf("err = %q", err)
	}
	if n := len(clock.delays()); n != 3 {
		t.Errorf("retries = %d, want 3", n)
	}
}

// closedAddr returns the address of a port nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestObserver(t *testing.T) {
	t.Parallel()
	type call struct {
		method, route string
		status        int
		err           bool
	}
	var mu sync.Mutex
	var got []call
	obs := func(method, route string, status int, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, call{method, route, status, err != nil})
	}
	c, s := setup(t, WithObserver(obs))
	u := s.AddUser(metabasetest.User{Email: "eve@example.com", Active: true})
	s.FailNext("DELETE", "/api/user/:id", 1, 503, "busy")
	if err := c.DisableUser(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.User(t.Context(), 424242); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	want := []call{
		{"DELETE", "/api/user/:id", 503, true},
		{"DELETE", "/api/user/:id", 200, false},
		{"GET", "/api/user/:id", 404, true},
		{"GET", "/api/user", 200, false}, // a 404 may be an inactive user on older Metabase
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(call{})); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}
