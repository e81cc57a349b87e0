package metabasetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rawDo sends one request to the fake and returns status, content type
// and body.
func rawDo(t *testing.T, s *Server, method, path string, header map[string]string, body string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Metabase-Version") == "" {
		t.Errorf("%s %s: no x-metabase-version header", method, path)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

const (
	textCT = "text/plain"
	jsonCT = "application/json; charset=utf-8"
)

var admin = map[string]string{"X-API-Key": AdminAPIKey}

// TestFidelity pins the fake to metabase-api.md: each case is a request and
// the status, content type and body real Metabase answers, with the
// section it comes from.
func TestFidelity(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		setup  func(s *Server) // optional
		method string
		path   string
		header map[string]string
		body   string
		status int
		ct     string
		want   string // exact text, or JSON compared as values
		subset bool   // JSON: only the keys in want must match
	}
	const (
		plainKey = "mb_plainplainplainplainplainplain"
		odd      = "sk_notanapikeybutregistered"
	)
	activeID, inactiveID, plainID := "10", "11", "12"
	tests := []tc{
		// §7 health, no auth.
		{name: "health", method: "GET", path: "/api/health", status: 200, ct: jsonCT, want: `{"status":"ok"}`},
		{name: "health initializing", setup: func(s *Server) { s.SetHealth(503, `{"status":"initializing","progress":0.5}`) },
			method: "GET", path: "/api/health", status: 503, ct: jsonCT, want: `{"status":"initializing","progress":0.5}`},
		// §1.3 unauthenticated: 401 text "Unauthenticated", before route matching.
		{name: "list no auth", method: "GET", path: "/api/user", status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "current no auth", method: "GET", path: "/api/user/current", status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "bad id no auth", method: "GET", path: "/api/user/abc", status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "delete no auth", method: "DELETE", path: "/api/user/" + activeID, status: 401, ct: textCT, want: "Unauthenticated"},
		// §1.2 keys: must start mb_ and be 12–254 chars, else ignored.
		{name: "unknown key", method: "GET", path: "/api/user", header: map[string]string{"X-API-Key": "mb_unknownunknown"},
			status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "key without mb_ ignored", method: "GET", path: "/api/user", header: map[string]string{"X-API-Key": odd},
			status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "bad session", method: "GET", path: "/api/user/current",
			header: map[string]string{"X-Metabase-Session": "00000000-0000-4000-8000-000000000000"}, status: 401, ct: textCT, want: "Unauthenticated"},
		// §2 unmatched routes and §4.6 id regex.
		{name: "unknown route", method: "GET", path: "/api/nope", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		{name: "non-numeric id", method: "GET", path: "/api/user/abc", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		{name: "delete non-numeric id", method: "DELETE", path: "/api/user/abc", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		{name: "id zero", method: "GET", path: "/api/user/0", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		// §4.1 list: superuser only; paging; total ignores paging.
		{name: "list non-admin", method: "GET", path: "/api/user", header: map[string]string{"X-API-Key": plainKey},
			status: 403, ct: textCT, want: "You don't have permissions to do that."},
		{name: "list unpaged", method: "GET", path: "/api/user?query=ACTIVE@", header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"total":1,"limit":null,"offset":null}`},
		{name: "list offset only", method: "GET", path: "/api/user?offset=1", header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"total":3,"limit":50,"offset":1}`},
		{name: "list limit only", method: "GET", path: "/api/user?limit=1&status=all", header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"total":4,"limit":1,"offset":0}`},
		{name: "list deactivated", method: "GET", path: "/api/user?status=deactivated&limit=5", header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"total":1,"limit":5,"offset":0}`},
		{name: "include_deactivated overrides status", method: "GET", path: "/api/user?status=active&include_deactivated=true",
			header: admin, status: 200, ct: jsonCT, subset: true, want: `{"total":4}`},
		{name: "unknown status means active", method: "GET", path: "/api/user?status=bogus&limit=abc",
			header: admin, status: 200, ct: jsonCT, subset: true, want: `{"total":3,"limit":null,"offset":null}`},
		// §4.2 get by id: deactivated users too; missing → 404 text; others' ids → 403.
		{name: "get missing", method: "GET", path: "/api/user/999", header: admin, status: 404, ct: textCT, want: "Not found."},
		{name: "get inactive", method: "GET", path: "/api/user/" + inactiveID, header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"id":11,"is_active":false,"user_group_memberships":[{"id":1}]}`},
		{name: "get other as non-admin", method: "GET", path: "/api/user/" + activeID, header: map[string]string{"X-API-Key": plainKey},
			status: 403, ct: textCT, want: "You don't have permissions to do that."},
		{name: "get self as non-admin", method: "GET", path: "/api/user/" + plainID, header: map[string]string{"X-API-Key": plainKey},
			status: 200, ct: jsonCT, subset: true, want: `{"id":12}`},
		// §4.3 current user.
		{name: "current", method: "GET", path: "/api/user/current", header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"id":1,"email":"bot@example.com","is_superuser":true,"group_ids":[1,2]}`},
		// §4.4 PUT.
		{name: "put inactive", method: "PUT", path: "/api/user/" + inactiveID, header: admin, body: `{"is_superuser":true}`,
			status: 404, ct: textCT, want: "Not found."},
		{name: "put is_active ignored", method: "PUT", path: "/api/user/" + activeID, header: admin, body: `{"is_active":false}`,
			status: 200, ct: jsonCT, subset: true, want: `{"id":10,"is_active":true}`},
		{name: "put superuser", method: "PUT", path: "/api/user/" + activeID, header: admin, body: `{"is_superuser":true}`,
			status: 200, ct: jsonCT, subset: true, want: `{"is_superuser":true,"user_group_memberships":[{"id":1},{"id":2}]}`},
		{name: "put internal", method: "PUT", path: "/api/user/13371338", header: admin, body: `{}`,
			status: 400, ct: textCT, want: "Not able to modify the internal user"},
		{name: "put invalid type", method: "PUT", path: "/api/user/" + activeID, header: admin, body: `{"is_superuser":"yes"}`,
			status: 400, ct: jsonCT, subset: true, want: `{"errors":{"is_superuser":"nullable boolean"}}`},
		{name: "put duplicate email", method: "PUT", path: "/api/user/" + activeID, header: admin, body: `{"email":"INACTIVE@example.com"}`,
			status: 400, ct: jsonCT, subset: true, want: `{"errors":{"email":"Email address already associated to another user."}}`},
		// §4.5 reactivate.
		{name: "reactivate active", method: "PUT", path: "/api/user/" + activeID + "/reactivate", header: admin,
			status: 400, ct: jsonCT, subset: true, want: `{"message":"Not able to reactivate an active user"}`},
		{name: "reactivate missing", method: "PUT", path: "/api/user/2147483647/reactivate", header: admin,
			status: 404, ct: textCT, want: "Not found."},
		{name: "reactivate non-admin", method: "PUT", path: "/api/user/" + inactiveID + "/reactivate", header: map[string]string{"X-API-Key": plainKey},
			status: 403, ct: textCT, want: "You don't have permissions to do that."},
		{name: "reactivate", method: "PUT", path: "/api/user/" + inactiveID + "/reactivate", header: admin,
			status: 200, ct: jsonCT, subset: true, want: `{"id":11,"is_active":true,"is_superuser":false,"user_group_memberships":[{"id":1}]}`},
		// §4.6 DELETE (newest), and the legacy 500.
		{name: "delete", method: "DELETE", path: "/api/user/" + activeID, header: admin, status: 200, ct: jsonCT, want: `{"success":true}`},
		{name: "delete inactive", method: "DELETE", path: "/api/user/" + inactiveID, header: admin, status: 200, ct: jsonCT, want: `{"success":true}`},
		{name: "delete missing", method: "DELETE", path: "/api/user/999", header: admin, status: 404, ct: textCT, want: "Not found."},
		{name: "delete internal", method: "DELETE", path: "/api/user/13371338", header: admin, status: 400, ct: textCT,
			want: "Not able to modify the internal user"},
		{name: "delete last admin", method: "DELETE", path: "/api/user/1", header: admin, status: 400, ct: textCT,
			want: "You cannot remove the last member of the 'Admin' group!"},
		{name: "delete non-admin", method: "DELETE", path: "/api/user/" + activeID, header: map[string]string{"X-API-Key": plainKey},
			status: 403, ct: textCT, want: "You don't have permissions to do that."},
		{name: "legacy delete inactive", setup: func(s *Server) { s.SetLegacyDelete(true) },
			method: "DELETE", path: "/api/user/" + inactiveID, header: admin, status: 500, ct: jsonCT, subset: true,
			want: `{"message":"Internal server error.","data":{"status-code":500}}`},
		{name: "legacy delete missing", setup: func(s *Server) { s.SetLegacyDelete(true) },
			method: "DELETE", path: "/api/user/999", header: admin, status: 500, ct: jsonCT, subset: true,
			want: `{"message":"Internal server error."}`},
		{name: "legacy delete active", setup: func(s *Server) { s.SetLegacyDelete(true) },
			method: "DELETE", path: "/api/user/" + activeID, header: admin, status: 200, ct: jsonCT, want: `{"success":true}`},
		// §1.1, §2, §5, §6 login.
		{name: "login empty", method: "POST", path: "/api/session", body: `{}`, status: 400, ct: jsonCT, subset: true,
			want: `{"errors":{"username":"value must be a non-blank string."}}`},
		{name: "login wrong password", method: "POST", path: "/api/session", body: `{"username":"active@example.com","password":"nope"}`,
			status: 401, ct: jsonCT, want: `{"errors":{"password":"did not match stored password"}}`},
		{name: "login unknown user", method: "POST", path: "/api/session", body: `{"username":"ghost@example.com","password":"pw"}`,
			status: 401, ct: jsonCT, want: `{"errors":{"password":"did not match stored password"}}`},
		{name: "login inactive", method: "POST", path: "/api/session", body: `{"username":"inactive@example.com","password":"pw"}`,
			status: 401, ct: jsonCT, want: `{"errors":{"_error":"Your account is disabled."}}`},
		{name: "logout unknown", method: "DELETE", path: "/api/session", status: 404, ct: textCT, want: "Not found."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, WithAPIKey(plainKey, 12), WithAPIKey(odd, 1))
			s.AddUser(User{ID: 10, Email: "active@example.com", Active: true})
			s.AddUser(User{ID: 11, Email: "inactive@example.com"})
			s.AddUser(User{ID: 12, Email: "plain@example.com", Active: true})
			s.SetPassword(10, "pw")
			s.SetPassword(11, "pw")
			if tt.setup != nil {
				tt.setup(s)
			}
			status, ct, body := rawDo(t, s, tt.method, tt.path, tt.header, tt.body)
			if status != tt.status {
				t.Errorf("status = %d, want %d (body %s)", status, tt.status, body)
			}
			if ct != tt.ct {
				t.Errorf("content type = %q, want %q", ct, tt.ct)
			}
			if tt.ct == textCT {
				if body != tt.want {
					t.Errorf("body = %q, want %q", body, tt.want)
				}
				return
			}
			var got, want map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if tt.subset {
				for k := range got {
					if _, ok := want[k]; !ok {
						delete(got, k)
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s\nfull: %s", diff, body)
			}
		})
	}
}

// TestThrottle checks metabase-api.md §6: the 11th failed login for a
// username within an hour is refused with "Too many attempts!".
func TestThrottle(t *testing.T) {
	t.Parallel()
	s := New(t, WithPasswordUser("ann@example.com", "pw"))
	login := `{"username":"ANN@example.com","password":"bad"}`
	for i := range 10 {
		status, _, body := rawDo(t, s, "POST", "/api/session", nil, login)
		if status != 401 || !strings.Contains(body, "did not match stored password") {
			t.Fatalf("attempt %d: %d %s", i+1, status, body)
		}
	}
	status, ct, body := rawDo(t, s, "POST", "/api/session", nil, `{"username":"ann@example.com","password":"pw"}`)
	want := `{"errors":{"username":"Too many attempts! You must wait 15 seconds before trying again."}}`
	if status != 401 || ct != jsonCT || body != want {
		t.Errorf("11th: %d %q %s, want 401 %s", status, ct, body, want)
	}
	// Another username is not affected.
	status, _, _ = rawDo(t, s, "POST", "/api/session", nil, `{"username":"bot@example.com","password":"x"}`)
	if status != 401 {
		t.Errorf("other user: %d", status)
	}
}

// TestSessionLifecycle: a session works, dies with its user (§5) or
// ExpireSessions, and reactivation does not revive it.
func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	s := New(t, WithPasswordUser("ann@example.com", "pw"))
	status, _, body := rawDo(t, s, "POST", "/api/session", nil, `{"username":"ann@example.com","password":"pw"}`)
	if status != 200 {
		t.Fatalf("login: %d %s", status, body)
	}
	var sess struct{ ID string }
	if err := json.Unmarshal([]byte(body), &sess); err != nil || len(sess.ID) != 36 {
		t.Fatalf("login body %s", body)
	}
	h := map[string]string{"X-Metabase-Session": sess.ID}
	if status, _, _ := rawDo(t, s, "GET", "/api/user/current", h, ""); status != 200 {
		t.Fatalf("current: %d", status)
	}
	ann, _ := s.UserByID(2)
	if status, _, _ := rawDo(t, s, "DELETE", "/api/user/2", admin, ""); status != 200 {
		t.Fatalf("delete: %d", status)
	}
	if status, _, _ := rawDo(t, s, "GET", "/api/user/current", h, ""); status != 401 {
		t.Errorf("session of inactive user: %d, want 401", status)
	}
	s.ReactivateBySSO(ann.ID)
	if status, _, _ := rawDo(t, s, "GET", "/api/user/current", h, ""); status != 401 {
		t.Errorf("session after reactivation: %d, want 401", status)
	}
	status, _, body = rawDo(t, s, "POST", "/api/session", nil, `{"username":"ann@example.com","password":"pw"}`)
	if status != 200 {
		t.Fatalf("re-login: %d %s", status, body)
	}
	_ = json.Unmarshal([]byte(body), &sess)
	s.ExpireSessions()
	if status, _, _ := rawDo(t, s, "GET", "/api/user/current", map[string]string{"X-Metabase-Session": sess.ID}, ""); status != 401 {
		t.Errorf("after ExpireSessions: %d, want 401", status)
	}
	if got := s.Requests()[0]; got.Auth != "none" || got.Status != 200 {
		t.Errorf("first request = %+v", got)
	}
}

// TestListOrderAndSearch checks §4.1: case-insensitive substring search on
// names and email, personal users only, sorted by lower(first),
// lower(last), id.
func TestListOrderAndSearch(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddUser(User{ID: 20, Email: "zed@example.com", FirstName: "bob", LastName: "Young", Active: true})
	s.AddUser(User{ID: 21, Email: "lucky@metabase.com", FirstName: "Lucky", LastName: "Pigeon", Active: true})
	s.AddUser(User{ID: 22, Email: "b2@example.com", FirstName: "Bob", LastName: "adams", Active: true})
	s.AddUser(User{ID: 23, Email: "b3@example.com", FirstName: "BOB", LastName: "Adams", Active: true})
	s.AddUser(User{ID: 24, Email: "key@api-key.invalid", FirstName: "bob key", Active: true, Type: "api-key"})
	tests := []struct {
		query string
		want  []int
	}{
		{"", []int{22, 23, 20, 21, 1}}, // bob adams (22, 23 by id), bob young, lucky, metabase bot
		{"lUck", []int{21}},
		{"BOB", []int{22, 23, 20}},
		{"example.com", []int{22, 23, 20, 1}},
		{"adams", []int{22, 23}},
	}
	for _, tt := range tests {
		_, _, body := rawDo(t, s, "GET", "/api/user?query="+tt.query, admin, "")
		var page struct {
			Data []struct {
				ID       int   `json:"id"`
				GroupIDs []int `json:"group_ids"`
			}
			Total int
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, u := range page.Data {
			got = append(got, u.ID)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" || page.Total != len(tt.want) {
			t.Errorf("query %q (-want +got):\n%s total=%d", tt.query, diff, page.Total)
		}
	}
	// Renaming keeps the order.
	rawDo(t, s, "PUT", "/api/user/21", admin, `{"first_name":"Aaron"}`)
	_, _, body := rawDo(t, s, "GET", "/api/user?limit=1", admin, "")
	if !strings.Contains(body, `"id":21`) {
		t.Errorf("after rename, first row: %s", body)
	}
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.FailNext("GET", "/api/user/:id", 2, 503, "Metabase is still initializing. Please sit tight...")
	s.FailNext("DELETE", "/api/user/:id", 1, 500, `{"message":"boom"}`)
	for i, want := range []int{503, 503, 200} {
		if status, ct, _ := rawDo(t, s, "GET", "/api/user/1", admin, ""); status != want || (want == 503 && ct != textCT) {
			t.Errorf("GET #%d: %d %q, want %d", i+1, status, ct, want)
		}
	}
	if status, ct, _ := rawDo(t, s, "DELETE", "/api/user/5", admin, ""); status != 500 || ct != jsonCT {
		t.Errorf("DELETE: %d %q", status, ct)
	}
	// :id matches digits only.
	if status, _, _ := rawDo(t, s, "GET", "/api/user/current", admin, ""); status != 200 {
		t.Errorf("current: %d", status)
	}

	release := s.Hold("GET", "/api/health")
	done := make(chan int, 1)
	go func() {
		status, _, _ := rawDo(t, s, "GET", "/api/health", nil, "")
		done <- status
	}()
	if err := s.WaitForRequests(t.Context(), "GET", "/api/health", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("held request finished before release")
	default:
	}
	if r := s.Requests(); r[len(r)-1].Status != 0 {
		t.Errorf("in-flight status = %d, want 0", r[len(r)-1].Status)
	}
	release()
	if status := <-done; status != 200 {
		t.Errorf("released: %d", status)
	}
	if n := s.Count("GET", "/api/user/"); n != 4 {
		t.Errorf("Count = %d, want 4", n)
	}
}

func TestSetLatencyRespectsCancel(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.SetLatency("GET", "/api/health", 1<<40)
	ctx, cancel := contextWithCancel(t)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/api/health", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if err := s.WaitForRequests(t.Context(), "GET", "/api/health", 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("request completed despite latency")
	}
	// Cleanup (server close) must not hang on the delayed handler.
}

func TestSeedUsers(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.SeedUsers(100_000)
	s.AddUser(User{Email: "aaa@example.com", FirstName: "Aaa", Active: true})
	_, _, body := rawDo(t, s, "GET", "/api/user?limit=2&offset=0", admin, "")
	var page struct {
		Data []struct {
			Email string `json:"email"`
		}
		Total int
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if page.Total != 100_002 || len(page.Data) != 2 || page.Data[0].Email != "aaa@example.com" {
		t.Errorf("total=%d data=%+v", page.Total, page.Data)
	}
	_, _, body = rawDo(t, s, "GET", "/api/user?query=user77777@example.com&status=all", admin, "")
	if !bytes.Contains([]byte(body), []byte(`"total":1`)) {
		t.Errorf("search: %s", body)
	}
}

func contextWithCancel(t *testing.T) (ctx context.Context, cancel context.CancelFunc) {
	return context.WithCancel(t.Context())
}

func TestAdminAPIKeyShape(t *testing.T) {
	t.Parallel()
	if len(AdminAPIKey) != 47 || !validAPIKey(AdminAPIKey) {
		t.Errorf("AdminAPIKey %q: len %d, want a valid 47-char key", AdminAPIKey, len(AdminAPIKey))
	}
}

func BenchmarkSeedUsers(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s := New(b)
		s.SeedUsers(100_000)
	}
}
