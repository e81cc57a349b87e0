package metabase

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

const testPassword = "correct horse battery staple"

func setupSession(t *testing.T, password string, opts ...Option) (*Client, *metabasetest.Server) {
	t.Helper()
	s := metabasetest.New(t, metabasetest.WithPasswordUser(metabasetest.AdminEmail, testPassword))
	c, _ := newTestClient(t, s.URL(), append([]Option{WithPassword(metabasetest.AdminEmail, password)}, opts...)...)
	return c, s
}

func TestSessionLoginLazily(t *testing.T) {
	t.Parallel()
	c, s := setupSession(t, testPassword)
	if n := s.Count("", "/api/"); n != 0 {
		t.Fatalf("New made %d requests, want 0", n)
	}
	for range 3 {
		if _, err := c.CurrentUser(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Count("POST", "/api/session"); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}
	for _, r := range s.Requests() {
		if r.Path == "/api/user/current" && r.Auth != "session" {
			t.Errorf("auth = %q, want session", r.Auth)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	c, s := setupSession(t, testPassword)
	ctx := t.Context()
	if _, err := c.CurrentUser(ctx); err != nil {
		t.Fatal(err)
	}
	s.ExpireSessions()
	if _, err := c.User(ctx, metabasetest.AdminUserID); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := s.Count("POST", "/api/session"); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
	if n := s.Count("GET", "/api/user/1"); n != 2 {
		t.Errorf("GET /api/user/1 = %d, want 2 (one 401, one retry)", n)
	}
}

func TestSessionPersistent401NoLoop(t *testing.T) {
	t.Parallel()
	c, s := setupSession(t, testPassword)
	s.FailNext("GET", "/api/user/current", -1, 401, "Unauthenticated")
	_, err := c.CurrentUser(t.Context())
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if n := s.Count("POST", "/api/session"); n != 2 {
		t.Errorf("logins = %d, want 2 (initial + one re-login)", n)
	}
	if n := s.Count("GET", "/api/user/current"); n != 2 {
		t.Errorf("calls = %d, want 2 (one retry)", n)
	}
}

func TestSessionUserDisabled(t *testing.T) {
	t.Parallel()
	// The session's own user is disabled: the session dies and the
	// re-login is refused with "Your account is disabled."
	s := metabasetest.New(t, metabasetest.WithPasswordUser("ops@example.com", testPassword))
	c, _ := newTestClient(t, s.URL(), WithPassword("ops@example.com", testPassword))
	admin, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
	me, err := c.CurrentUser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DisableUser(t.Context(), me.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.CurrentUser(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Path != "/api/session" || ae.Message != "_error: Your account is disabled." {
		t.Fatalf("err = %v", err)
	}
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		c, s := setupSession(t, "wrong")
		_, err := c.CurrentUser(t.Context())
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		want := "metabase: POST /api/session: 401 password: did not match stored password"
		if err.Error() != want {
			t.Errorf("err = %q, want %q", err, want)
		}
		if n := s.Count("", "/api/"); n != 1 {
			t.Errorf("requests = %d, want 1 (no retry, no call)", n)
		}
	})
	t.Run("refused login is not retried on every call", func(t *testing.T) {
		t.Parallel()
		c, s := setupSession(t, "wrong")
		for i := range 20 {
			if _, err := c.CurrentUser(t.Context()); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "did not match stored password") {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
		// Twenty calls would have locked the account out (10 failures) had each one logged in.
		if n := s.Count("POST", "/api/session"); n != 1 {
			t.Errorf("logins = %d, want 1 within the cool-down", n)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		t.Parallel()
		c, s := setupSession(t, "wrong")
		// Ten processes with the wrong password each fail once; the eleventh is throttled.
		for i := range 10 {
			other, _ := newTestClient(t, s.URL(), WithPassword(metabasetest.AdminEmail, "wrong"))
			if _, err := other.CurrentUser(t.Context()); !strings.Contains(err.Error(), "did not match stored password") {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		_, err := c.CurrentUser(t.Context())
		var ae *APIError
		if !errors.As(err, &ae) || !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want a 401 APIError", err)
		}
		if want := "username: Too many attempts! You must wait 15 seconds before trying again."; ae.Message != want {
			t.Errorf("Message = %q, want %q", ae.Message, want)
		}
		if n := s.Count("POST", "/api/session"); n != 11 {
			t.Errorf("logins = %d, want 11 (one per client)", n)
		}
		if n := s.Count("GET", "/"); n != 0 {
			t.Errorf("calls = %d, want 0", n)
		}
	})
	t.Run("login 503 not retried", func(t *testing.T) {
		t.Parallel()
		c, s := setupSession(t, testPassword)
		s.FailNext("POST", "/api/session", 1, 503, "busy")
		if _, err := c.CurrentUser(t.Context()); !isStatus(err, 503) {
			t.Fatalf("err = %v, want 503", err)
		}
		if n := s.Count("POST", "/api/session"); n != 1 {
			t.Errorf("logins = %d, want 1", n)
		}
	})
}

func TestSessionConcurrentLoginShared(t *testing.T) {
	t.Parallel()
	c, s := setupSession(t, testPassword)
	release := s.Hold("POST", "/api/session")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := c.CurrentUser(t.Context())
			errs <- err
		})
	}
	if err := s.WaitForRequests(t.Context(), "POST", "/api/session", 1); err != nil {
		t.Fatal(err)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := s.Count("POST", "/api/session"); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}
}
