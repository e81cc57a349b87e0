package metabasetest

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestAPIKeyUser pins the user of an API key to api_keys/models/api_key.clj
// and users_rest/api.clj: found by id like anyone else, never listed,
// never reactivated, and DELETE answers success while changing nothing.
func TestAPIKeyUser(t *testing.T) {
	t.Parallel()
	s := New(t)
	u, key := s.AddAPIKeyUser("bot key", AdministratorsGroupID)
	if len(key) != 47 || !validAPIKey(key) {
		t.Fatalf("key %q does not look like a Metabase key", key)
	}
	path := "/api/user/" + strconv.Itoa(u.ID)

	// The key authenticates as its user, an admin through its group.
	status, ct, body := rawDo(t, s, "GET", "/api/user/current", map[string]string{"X-API-Key": key}, "")
	checkReply(t, status, ct, body, 200, jsonCT, `{"id":`+strconv.Itoa(u.ID)+`,"is_superuser":true}`)

	status, ct, body = rawDo(t, s, "GET", path, admin, "")
	checkReply(t, status, ct, body, 200, jsonCT,
		`{"first_name":"bot key","last_name":"","common_name":"bot key","is_active":true,"user_group_memberships":[{"id":1},{"id":2}]}`)
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["type"]; ok {
		t.Errorf("GET %s returns a type, which Metabase does not: %s", path, body)
	}
	if email, _ := got["email"].(string); !strings.HasPrefix(email, "api-key-user-") || !strings.HasSuffix(email, "@api-key.invalid") {
		t.Errorf("email = %q, want api-key-user-<uuid>@api-key.invalid", email)
	}

	for _, q := range []string{"?status=all", "?status=all&query=bot+key", "?status=all&tenancy=all"} {
		for _, id := range listIDs(t, s, "/api/user"+q) {
			if id == u.ID {
				t.Errorf("GET /api/user%s lists the API key's user", q)
			}
		}
	}

	status, ct, body = rawDo(t, s, "DELETE", path, admin, "")
	checkReply(t, status, ct, body, 200, jsonCT, `{"success":true}`)
	if after, _ := s.UserByID(u.ID); !after.Active {
		t.Error("DELETE deactivated the API key's user; Metabase filters the update by type personal")
	}
	if status, _, _ := rawDo(t, s, "GET", "/api/user/current", map[string]string{"X-API-Key": key}, ""); status != 200 {
		t.Errorf("the key stopped working after DELETE of its user: %d", status)
	}

	status, ct, body = rawDo(t, s, "PUT", path+"/reactivate", admin, "")
	checkReply(t, status, ct, body, 404, textCT, "Not found.")
}
