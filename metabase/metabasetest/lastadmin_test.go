package metabasetest

import "testing"

// TestLastAdminCountsEveryActiveAdmin: throw-if-last-admin!
// (permissions_group_membership.clj) counts the active members of the
// Admin group other than the target, whatever their type: the query joins
// core_user on is_active only (docs/metabase.md#last-admin). An API key in
// the Administrators group is such a member, so the last personal admin
// may be disabled while it exists.
func TestLastAdminCountsEveryActiveAdmin(t *testing.T) {
	t.Parallel()
	const key = "mb_lastadminlastadminlastadminlast"
	s := New(t, WithAPIKey(key, 50))
	s.AddUser(User{ID: 50, Email: "api-key-user-50@api-key.invalid", FirstName: "bot key", Active: true,
		Superuser: true, Type: "api-key"})
	status, _, body := rawDo(t, s, "DELETE", "/api/user/1", map[string]string{"X-API-Key": key}, "")
	if status != 200 || body != `{"success":true}` {
		t.Fatalf("DELETE last personal admin with an API-key admin present = %d %s, want 200 {\"success\":true}", status, body)
	}
	// The internal user is no Admin-group member and never counts.
	s2 := New(t)
	if status, _, body := rawDo(t, s2, "DELETE", "/api/user/1", admin, ""); status != 400 {
		t.Fatalf("DELETE the only admin = %d %s, want 400", status, body)
	}
}
