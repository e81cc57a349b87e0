package metabasetest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestThrottle: the 11th failed login for a username within an hour is
// refused with "Too many attempts!" (docs/metabase.md#throttling).
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

// TestSessionLifecycle: a session works, dies with its user
// (docs/metabase.md#deactivation) or ExpireSessions, and reactivation does
// not revive it.
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

// TestListOrderAndSearch checks docs/metabase.md#list-users:
// case-insensitive substring search on names and email, personal users
// only, sorted by lower(first), lower(last), id.
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
