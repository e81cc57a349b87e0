package metabase

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

func TestCheckResponse(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 2<<20)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantMsg     string
		wantBodyLen int // -1: len(body)
		wantIs      []error
	}{
		{"ok", 200, "application/json", `{}`, "", 0, nil},
		{"text 400", 400, "text/plain", "You cannot remove the last member of the 'Admin' group!",
			"You cannot remove the last member of the 'Admin' group!", -1, nil},
		{"text 401", 401, "text/plain", "Unauthenticated", "Unauthenticated", -1, []error{ErrUnauthorized}},
		{"text 403", 403, "text/plain", "You don't have permissions to do that.", "You don't have permissions to do that.", -1, []error{ErrForbidden}},
		{"text 404", 404, "text/plain", "Not found.", "Not found.", -1, []error{ErrNotFound}},
		{"text json-looking", 400, "text/plain", `{"message":"x"}`, `{"message":"x"}`, -1, nil},
		{"json message", 400, "application/json; charset=utf-8",
			`{"message":"Not able to reactivate an active user","via":[],"trace":[]}`,
			// The words alone decide nothing: ReactivateUser re-reads the user.
			"Not able to reactivate an active user", -1, nil},
		{"json errors sorted", 400, "application/json; charset=utf-8",
			`{"errors":{"username":"value must be a non-blank string.","password":"value must be a non-blank string."}}`,
			"password: value must be a non-blank string.; username: value must be a non-blank string.", -1, nil},
		{"json errors non-string", 400, "application/json", `{"errors":{"id":["bad","worse"]}}`, `id: ["bad","worse"]`, -1, nil},
		{"throttle", 401, "application/json;charset=utf-8",
			`{"errors":{"username":"Too many attempts! You must wait 15 seconds before trying again."}}`,
			"username: Too many attempts! You must wait 15 seconds before trying again.", -1, []error{ErrUnauthorized}},
		{"legacy 500", 500, "application/json; charset=utf-8",
			`{"message":"Internal server error.","cause":"Internal server error.","data":{"status-code":500},"trace":[]}`,
			"Internal server error.", -1, nil},
		{"json without message", 503, "application/json", `{"status":"initializing","progress":0.5}`,
			`{"status":"initializing","progress":0.5}`, -1, nil},
		{"bad json", 500, "application/json", `{"message":`, `{"message":`, -1, nil},
		{"html 502", 502, "text/html", "<html><body>Bad gateway</body></html>\n", "<html><body>Bad gateway</body></html>", -1, nil},
		{"no content type json", 400, "", `{"message":"m"}`, "m", -1, nil},
		{"empty body", 500, "", "", "", 0, nil},
		{"huge body capped", 500, "text/plain", big, strings.Repeat("x", maxMessageLen) + "…", maxErrorBodySize, nil},
		{"reactivate other 400", 400, "application/json", `{"message":"Not able to reactivate a user in a deactivated tenant"}`,
			"Not able to reactivate a user in a deactivated tenant", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := &http.Request{Method: "DELETE", URL: &url.URL{Path: "/api/user/5", RawQuery: "secret=1"}}
			resp := &http.Response{
				StatusCode: tt.status,
				Header:     http.Header{"Content-Type": {tt.contentType}},
				Body:       io.NopCloser(strings.NewReader(tt.body)),
				Request:    req,
			}
			err := checkResponse(resp)
			if tt.status < 300 {
				if err != nil {
					t.Fatalf("checkResponse = %v, want nil", err)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("checkResponse = %T %v, want *APIError", err, err)
			}
			if ae.StatusCode != tt.status || ae.Method != "DELETE" || ae.Path != "/api/user/5" {
				t.Errorf("got %d %s %s", ae.StatusCode, ae.Method, ae.Path)
			}
			if ae.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", ae.Message, tt.wantMsg)
			}
			wantLen := tt.wantBodyLen
			if wantLen < 0 {
				wantLen = len(tt.body)
			}
			if len(ae.Body) != wantLen {
				t.Errorf("len(Body) = %d, want %d", len(ae.Body), wantLen)
			}
			for _, target := range []error{ErrNotFound, ErrUnauthorized, ErrForbidden, ErrAlreadyActive} {
				want := false
				for _, w := range tt.wantIs {
					want = want || w == target
				}
				if got := errors.Is(err, target); got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", target, got, want)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Error() leaks the query: %q", err)
			}
		})
	}
}

func TestAPIErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *APIError
		want string
	}{
		{&APIError{StatusCode: 400, Method: "DELETE", Path: "/api/user/5", Message: "You cannot remove the last member of the 'Admin' group!"},
			"metabase: DELETE /api/user/5: 400 You cannot remove the last member of the 'Admin' group!"},
		{&APIError{StatusCode: 502, Method: "GET", Path: "/api/user"}, "metabase: GET /api/user: 502 Bad Gateway"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// TestNoSecretsInErrors provokes every kind of error with recognisable
// credentials and checks that none of them reaches err.Error().
func TestNoSecretsInErrors(t *testing.T) {
	t.Parallel()
	const (
		key      = "mb_SECRETKEYzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
		otherKey = "mb_OTHERSECRETKEYyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
		password = "hunter2-SECRET-PW"
	)
	s := metabasetest.New(t,
		metabasetest.WithAPIKey(key, metabasetest.AdminUserID),
		metabasetest.WithPasswordUser(metabasetest.AdminEmail, password),
	)
	plain := s.AddUser(metabasetest.User{Email: "plain@example.com", Active: true})
	s2 := metabasetest.New(t, metabasetest.WithAPIKey(otherKey, 2), metabasetest.WithPasswordUser("plain@example.com", "x"))

	secrets := []string{key, otherKey, password, "SECRET"}
	var errs []error
	record := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: err = nil, want an error", name)
			return
		}
		errs = append(errs, err)
	}
	ctx := t.Context()
	keyClient, _ := newTestClient(t, s.URL(), WithAPIKey(key), WithTimeout(20*time.Millisecond), WithRetry(RetryPolicy{MaxAttempts: 1}))

	// Login failure: wrong password.
	c, _ := newTestClient(t, s.URL(), WithPassword(metabasetest.AdminEmail, password+"-wrong"))
	_, err := c.CurrentUser(ctx)
	record("login", err)

	// 401: unknown key.
	c, _ = newTestClient(t, s.URL(), WithAPIKey(otherKey))
	_, err = c.CurrentUser(ctx)
	record("401", err)

	// 403: a key whose user is not an admin.
	c, _ = newTestClient(t, s2.URL(), WithAPIKey(otherKey))
	_, err = c.ListUsers(ctx, StatusAll)
	record("403", err)

	// 404, 500 and timeout with a valid key.
	_, err = keyClient.User(ctx, 999999)
	record("404", err)
	s.FailNext("GET", "/api/user/:id", 1, 500, "boom "+strings.Repeat("trace ", 10))
	_, err = keyClient.User(ctx, plain.ID)
	record("500", err)
	s.SetLatency("GET", "/api/user/current", time.Minute)
	_, err = keyClient.CurrentUser(ctx)
	record("timeout", err)
	s.SetLatency("GET", "/api/user/current", 0)

	// Session: a 401 after login, and the session ids used.
	sc, _ := newTestClient(t, s.URL(), WithPassword(metabasetest.AdminEmail, password))
	if _, err := sc.CurrentUser(ctx); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, sc.session)
	s.FailNext("GET", "/api/user/current", -1, 401, "Unauthenticated")
	_, err = sc.CurrentUser(ctx)
	record("session 401", err)
	secrets = append(secrets, sc.session)
	s.FailNext("DELETE", "/api/user/:id", -1, 500, "{}")
	record("session 500", sc.DisableUser(ctx, plain.ID))

	// Transport error to a closed port.
	c, _ = newTestClient(t, "http://"+closedAddr(t), WithAPIKey(key), WithRetry(RetryPolicy{MaxAttempts: 1}))
	_, err = c.CurrentUser(ctx)
	record("transport", err)
	c, _ = newTestClient(t, "http://"+closedAddr(t), WithPassword(metabasetest.AdminEmail, password), WithRetry(RetryPolicy{MaxAttempts: 1}))
	_, err = c.CurrentUser(ctx)
	record("transport login", err)

	// Cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = keyClient.CurrentUser(cctx)
	record("cancelled", err)

	// Bad URLs, some carrying credentials.
	for _, u := range []string{"ftp://user:SECRET@example.com", "http://user:SECRET@[::1", "https://", "http://SECRET\x7f"} {
		_, err = New(u, WithAPIKey(key), WithPassword("u", password))
		record("bad URL "+u, err)
	}

	for _, err := range errs {
		msg := err.Error()
		for _, sec := range secrets {
			if sec != "" && strings.Contains(msg, sec) {
				t.Errorf("error %q contains secret %q", msg, sec)
			}
		}
		var ae *APIError
		if errors.As(err, &ae) {
			for _, sec := range secrets {
				if sec != "" && bytes.Contains(ae.Body, []byte(sec)) {
					t.Errorf("APIError.Body %q contains secret %q", ae.Body, sec)
				}
			}
		}
	}
}
