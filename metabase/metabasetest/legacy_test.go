package metabasetest

import "testing"

// TestLegacyGetHidesInactive: the toucan2-era src/metabase/api/user.clj,
// whose DELETE answers 500 for an inactive user (metabase/metabase#66599),
// fetches GET /api/user/:id with (fetch-user :id id, :is_active true), so
// an inactive user is 404 there (docs/metabase.md#get-user).
func TestLegacyGetHidesInactive(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddUser(User{ID: 11, Email: "inactive@example.com"})
	s.AddUser(User{ID: 10, Email: "active@example.com", Active: true})
	s.SetLegacyDelete(true)
	if status, ct, body := rawDo(t, s, "GET", "/api/user/11", admin, ""); status != 404 || ct != textCT || body != "Not found." {
		t.Errorf("legacy GET inactive = %d %q %q, want 404 text Not found.", status, ct, body)
	}
	if status, _, body := rawDo(t, s, "GET", "/api/user/10", admin, ""); status != 200 {
		t.Errorf("legacy GET active = %d %s, want 200", status, body)
	}
}

// TestLegacyAPIKeyUser: in 0.49–0.50 (the toucan2 src/metabase/api/user.clj
// after PR #36905) the user endpoints select and modify personal users
// only: GET /api/user/:id of an API key's user is 404 and DELETE is the
// check-500 of an update that changed nothing; the key keeps working.
func TestLegacyAPIKeyUser(t *testing.T) {
	t.Parallel()
	s := New(t)
	key, raw := s.AddAPIKeyUser("etl", 0)
	s.SetLegacyDelete(true)
	if status, ct, body := rawDo(t, s, "GET", "/api/user/"+itoa(key.ID), admin, ""); status != 404 || ct != textCT || body != "Not found." {
		t.Errorf("legacy GET of an API key's user = %d %q %q, want 404 Not found.", status, ct, body)
	}
	if status, _, body := rawDo(t, s, "DELETE", "/api/user/"+itoa(key.ID), admin, ""); status != 500 {
		t.Errorf("legacy DELETE of an API key's user = %d %s, want 500", status, body)
	}
	if status, _, _ := rawDo(t, s, "GET", "/api/user/current", map[string]string{"X-API-Key": raw}, ""); status != 200 {
		t.Errorf("the key stopped working after the DELETE: %d", status)
	}
}
