package metabasetest

import (
	"strings"
	"testing"
)

// TestReactivateFormerAdmin: reactivation clears is_superuser, which
// deletes the Admin membership and runs the last-admin check while the user
// is still inactive. Before PR #68198 that check refuses unless two other
// active admins exist (metabase/metabase#59776); the newest only when none
// does. The refusal is the last-admin 400 and changes nothing.
func TestReactivateFormerAdmin(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		old        bool
		extraAdmin bool
		wantStatus int
	}{
		{"newest, the key's user is the only other admin", false, false, 200},
		{"before 68198, the key's user is the only other admin", true, false, 400},
		{"before 68198, two other admins", true, true, 200},
		{"v0.56, the key's user is the only other admin", false, false, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []Option
			if tt.old {
				opts = append(opts, WithLastAdminBefore68198())
			}
			if strings.HasPrefix(tt.name, "v0.56") {
				opts = append(opts, WithEra(EraNotification))
			}
			s := New(t, opts...)
			jane := s.AddUser(User{Email: "jane@example.com", Active: true, Superuser: true})
			if status, _, body := rawDo(t, s, "DELETE", "/api/user/"+itoa(jane.ID), admin, ""); status != 200 {
				t.Fatalf("DELETE jane = %d %s", status, body)
			}
			if tt.extraAdmin {
				s.AddUser(User{Email: "root@example.com", Active: true, Superuser: true})
			}
			status, ct, body := rawDo(t, s, "PUT", "/api/user/"+itoa(jane.ID)+"/reactivate", admin, "")
			if status != tt.wantStatus {
				t.Fatalf("reactivate = %d %s, want %d", status, body, tt.wantStatus)
			}
			u, _ := s.UserByID(jane.ID)
			if status == 400 {
				if ct != textCT || body != msgLastAdmin {
					t.Errorf("refusal = %q %q, want the last-admin text", ct, body)
				}
				if u.Active || !u.Superuser {
					t.Errorf("after the refusal active=%v superuser=%v, want unchanged (inactive admin)", u.Active, u.Superuser)
				}
				return
			}
			if !u.Active || u.Superuser {
				t.Errorf("after reactivation active=%v superuser=%v, want active non-admin", u.Active, u.Superuser)
			}
		})
	}
}

// TestVersionTag: WithVersionTag replaces the reported version, as a
// development build reports vLOCAL_DEV.
func TestVersionTag(t *testing.T) {
	t.Parallel()
	s := New(t, WithVersionTag("vLOCAL_DEV"), WithEra(EraNotification))
	v := getJSON(t, s, "GET", "/api/session/properties", nil, "", 200)
	if got := field(t, v, "version", "tag"); got != "vLOCAL_DEV" {
		t.Errorf("version.tag = %v, want vLOCAL_DEV", got)
	}
}
