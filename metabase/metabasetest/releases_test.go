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

// TestPutNotificationArchives: PUT /api/notification/:id with the
// notification as read and active false archives it and mails every email
// recipient that they were removed (notify-notification-updates!); a body
// without payload_type is a 400 and a missing id a 404.
func TestPutNotificationArchives(t *testing.T) {
	t.Parallel()
	s := notifFixture(t, EraNotification)
	a := s.AddAlert(Alert{CardID: 55, CreatorID: 21, UserIDs: []int{21, 22}, Emails: []string{"x@example.org"}})
	path := "/api/notification/" + itoa(a.ID)
	_, _, read := rawDo(t, s, "GET", path, admin, "")
	if status, _, _ := rawDo(t, s, "PUT", path, admin, `{"active":false}`); status != 400 {
		t.Errorf("PUT without payload_type = %d, want 400", status)
	}
	if status, _, _ := rawDo(t, s, "PUT", "/api/notification/9999", admin, read); status != 404 {
		t.Errorf("PUT of a missing id = %d, want 404", status)
	}
	body := strings.Replace(read, `"active":true`, `"active":false`, 1)
	if status, _, got := rawDo(t, s, "PUT", path, admin, body); status != 200 || !strings.Contains(got, `"active":false`) {
		t.Fatalf("PUT = %d %s", status, got)
	}
	if got, _ := s.AlertByID(a.ID); !got.Archived || len(got.UserIDs) != 2 {
		t.Errorf("after the PUT archived=%v recipients=%v, want archived with its recipients", got.Archived, got.UserIDs)
	}
	mails := s.RemovalEmails()
	if len(mails) != 1 || strings.Join(mails[0].To, ",") != "ann@example.com,dee@example.com,x@example.org" {
		t.Errorf("removal emails = %+v, want one to every email recipient", mails)
	}
	if status, _, _ := rawDo(t, s, "PUT", path, admin, body); status != 200 || len(s.RemovalEmails()) != 1 {
		t.Errorf("archiving an archived alert mailed again")
	}
}
