package metabasetest

import (
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

// TestFidelity pins the fake to Metabase: each case is a request and the
// status, content type and body real Metabase answers, grouped by the
// docs/metabase.md section that gives the source.
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
		// #health: no auth.
		{name: "health", method: "GET", path: "/api/health", status: 200, ct: jsonCT, want: `{"status":"ok"}`},
		{name: "health initializing", setup: func(s *Server) { s.SetHealth(503, `{"status":"initializing","progress":0.5}`) },
			method: "GET", path: "/api/health", status: 503, ct: jsonCT, want: `{"status":"initializing","progress":0.5}`},
		// #unauthenticated: 401 text "Unauthenticated", before route matching.
		{name: "list no auth", method: "GET", path: "/api/user", status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "current no auth", method: "GET", path: "/api/user/current", status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "bad id no auth", method: "GET", path: "/api/user/abc", status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "delete no auth", method: "DELETE", path: "/api/user/" + activeID, status: 401, ct: textCT, want: "Unauthenticated"},
		// #api-keys: must start mb_ and be 12–254 chars, else ignored.
		{name: "unknown key", method: "GET", path: "/api/user", header: map[string]string{"X-API-Key": "mb_unknownunknown"},
			status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "key without mb_ ignored", method: "GET", path: "/api/user", header: map[string]string{"X-API-Key": odd},
			status: 401, ct: textCT, want: "Unauthenticated"},
		{name: "bad session", method: "GET", path: "/api/user/current",
			header: map[string]string{"X-Metabase-Session": "00000000-0000-4000-8000-000000000000"}, status: 401, ct: textCT, want: "Unauthenticated"},
		// #routes: unmatched routes and the id regex.
		{name: "unknown route", method: "GET", path: "/api/nope", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		{name: "non-numeric id", method: "GET", path: "/api/user/abc", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		{name: "delete non-numeric id", method: "DELETE", path: "/api/user/abc", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		{name: "id zero", method: "GET", path: "/api/user/0", header: admin, status: 404, ct: textCT, want: "API endpoint does not exist."},
		// #list-users: superuser only; paging; total ignores paging.
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
		// #get-user: deactivated users too; missing → 404 text; others' ids → 403.
		{name: "get missing", method: "GET", path: "/api/user/999", header: admin, status: 404, ct: textCT, want: "Not found."},
		{name: "get inactive", method: "GET", path: "/api/user/" + inactiveID, header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"id":11,"is_active":false,"user_group_memberships":[{"id":1}]}`},
		{name: "get other as non-admin", method: "GET", path: "/api/user/" + activeID, header: map[string]string{"X-API-Key": plainKey},
			status: 403, ct: textCT, want: "You don't have permissions to do that."},
		{name: "get self as non-admin", method: "GET", path: "/api/user/" + plainID, header: map[string]string{"X-API-Key": plainKey},
			status: 200, ct: jsonCT, subset: true, want: `{"id":12}`},
		// #current-user.
		{name: "current", method: "GET", path: "/api/user/current", header: admin, status: 200, ct: jsonCT, subset: true,
			want: `{"id":1,"email":"bot@example.com","is_superuser":true,"group_ids":[1,2]}`},
		// #update-user.
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
		// #reactivate.
		{name: "reactivate active", method: "PUT", path: "/api/user/" + activeID + "/reactivate", header: admin,
			status: 400, ct: jsonCT, subset: true, want: `{"message":"Not able to reactivate an active user"}`},
		{name: "reactivate missing", method: "PUT", path: "/api/user/2147483647/reactivate", header: admin,
			status: 404, ct: textCT, want: "Not found."},
		{name: "reactivate non-admin", method: "PUT", path: "/api/user/" + inactiveID + "/reactivate", header: map[string]string{"X-API-Key": plainKey},
			status: 403, ct: textCT, want: "You don't have permissions to do that."},
		{name: "reactivate", method: "PUT", path: "/api/user/" + inactiveID + "/reactivate", header: admin,
			status: 200, ct: jsonCT, subset: true, want: `{"id":11,"is_active":true,"is_superuser":false,"user_group_memberships":[{"id":1}]}`},
		// #delete-user: newest, and the legacy 500.
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
		// #login, #throttling.
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
