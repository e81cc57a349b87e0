package metabasetest

import (
	"strings"
	"testing"
)

// TestLocaleTranslatesErrors: WithLocale("fr") changes the words of the
// errors, in text and in JSON, and nothing else.
func TestLocaleTranslatesErrors(t *testing.T) {
	t.Parallel()
	s := New(t, WithLocale("fr"))
	status, ct, body := rawDo(t, s, "DELETE", "/api/user/"+itoa(AdminUserID), admin, "")
	if status != 400 || ct != textCT || body != `Vous ne pouvez pas supprimer le dernier membre du groupe "Admin" !` {
		t.Errorf("last admin = %d %q %q, want the French refusal of metabase/metabase#59776", status, ct, body)
	}
	if status, _, body := rawDo(t, s, "GET", "/api/nowhere", admin, ""); status != 404 || strings.Contains(body, "does not exist") {
		t.Errorf("unknown route = %d %q, want 404 in French", status, body)
	}
	jane := s.AddUser(User{Email: "jane@example.com", Active: true})
	status, ct, body = rawDo(t, s, "PUT", "/api/user/"+itoa(jane.ID)+"/reactivate", admin, "")
	if status != 400 || ct != jsonCT || !strings.Contains(body, `"message":"Impossible de réactiver un utilisateur actif"`) {
		t.Errorf("reactivate active = %d %q %s, want the JSON 400 in French", status, ct, body)
	}
	if status, _, body := rawDo(t, s, "GET", "/api/user/"+itoa(jane.ID), admin, ""); status != 200 || !strings.Contains(body, "jane@example.com") {
		t.Errorf("a success is not touched: %d %s", status, body)
	}
}
