package metabasetest

import (
	"strings"
	"testing"
)

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
