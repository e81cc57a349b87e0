package metabasetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

const plainKey = "mb_plain-notification-user-key"

// notifFixture is a fake with an admin (1), a plain user Pat (20) holding
// plainKey, an active user Ann (21) and a deactivated user Dee (22).
func notifFixture(t *testing.T, era Era) *Server {
	t.Helper()
	s := New(t, WithEra(era), WithAPIKey(plainKey, 20))
	s.AddUser(User{ID: 20, Email: "pat@example.com", FirstName: "Pat", Active: true})
	s.AddUser(User{ID: 21, Email: "ann@example.com", FirstName: "Ann", LastName: "Active", Active: true})
	s.AddUser(User{ID: 22, Email: "dee@example.com", FirstName: "Dee", LastName: "Gone"})
	return s
}

var plain = map[string]string{"X-API-Key": plainKey}

// getJSON does a request expected to answer JSON and decodes the body.
func getJSON(t *testing.T, s *Server, method, path string, hdr map[string]string, body string, wantStatus int) any {
	t.Helper()
	status, ct, raw := rawDo(t, s, method, path, hdr, body)
	if status != wantStatus {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, raw, wantStatus)
	}
	if ct != jsonCT {
		t.Fatalf("%s %s: content type %q, want JSON; body %s", method, path, ct, raw)
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, raw)
	}
	return v
}

// field walks a decoded JSON value along keys (strings) and indexes (ints).
func field(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("field %v: %v is not an object", path, v)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("field %v: %v has no index %d", path, v, k)
			}
			v = a[k]
		}
	}
	return v
}

func ids(t *testing.T, rows any) []int {
	t.Helper()
	var out []int
	for _, r := range rows.([]any) {
		out = append(out, int(field(t, r, "id").(float64)))
	}
	return out
}

// TestNotificationErrorsFidelity pins status, content type and body of the
// error replies of the notification endpoints to Metabase's source.
func TestNotificationErrorsFidelity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		era    Era
		method string
		path   string
		header map[string]string
		body   string
		status int
		ct     string
		want   string // exact body for text, a substring for JSON
	}{
		{"pulse needs auth", EraNotificationAdmin, "GET", "/api/pulse", nil, "", 401, textCT, "Unauthenticated"},
		{"auth before route matching", EraNotificationAdmin, "GET", "/api/notification/nope", nil, "", 401, textCT, "Unauthenticated"},
		{"pulse archived not boolean", EraNotificationAdmin, "GET", "/api/pulse?archived=maybe", admin, "", 400, jsonCT, `"archived"`},
		{"pulse dashboard_id not positive", EraNotificationAdmin, "GET", "/api/pulse?dashboard_id=0", admin, "", 400, jsonCT, `"dashboard_id"`},
		{"pulse missing", EraNotificationAdmin, "GET", "/api/pulse/999", admin, "", 404, textCT, "Not found."},
		{"pulse put missing", EraNotificationAdmin, "PUT", "/api/pulse/999", admin, `{"archived":true}`, 404, textCT, "Not found."},
		{"pulse put bad archived before 404", EraNotificationAdmin, "PUT", "/api/pulse/999", admin, `{"archived":"yes"}`, 400, jsonCT, `"archived"`},
		{"pulse id not numeric", EraNotificationAdmin, "GET", "/api/pulse/abc", admin, "", 404, textCT, "API endpoint does not exist."},
		{"admin list absent before the admin API", EraNotification, "GET", "/api/notification/admin", admin, "", 404, textCT, "API endpoint does not exist."},
		{"bulk absent before the admin API", EraNotification, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[2],"action":"archive"}`, 404, textCT, "API endpoint does not exist."},
		{"notification absent before 0.54", EraPulseAlerts, "GET", "/api/notification", admin, "", 404, textCT, "API endpoint does not exist."},
		{"alert writes removed in 0.54", EraNotification, "PUT", "/api/alert/2", admin, `{"archived":true}`, 404, textCT, "API endpoint does not exist."},
		{"admin list is superuser only", EraNotificationAdmin, "GET", "/api/notification/admin", plain, "", 403, textCT, "You don't have permissions to do that."},
		{"admin list validates first", EraNotificationAdmin, "GET", "/api/notification/admin?sort_column=name", plain, "", 400, jsonCT, `"sort_column"`},
		{"bulk is superuser only", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", plain, `{"notification_ids":[2],"action":"archive"}`, 403, textCT, "You don't have permissions to do that."},
		{"bulk validates before 403", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", plain, `{"notification_ids":[],"action":"archive"}`, 400, jsonCT, `"notification_ids"`},
		{"bulk empty ids", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[],"action":"archive"}`, 400, jsonCT, `"notification_ids"`},
		{"bulk non-positive id", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[0],"action":"archive"}`, 400, jsonCT, `"notification_ids"`},
		{"bulk missing ids", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{"action":"archive"}`, 400, jsonCT, `"notification_ids"`},
		{"bulk unknown action", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[2],"action":"delete"}`, 400, jsonCT, `"action"`},
		{"bulk bad creator_id", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[2],"action":"change-creator","creator_id":"21"}`, 400, jsonCT, `"creator_id"`},
		{"change-creator needs creator_id", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[2],"action":"change-creator"}`, 400, textCT, "creator_id required for change-creator"},
		{"change-creator to a missing user", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[2],"action":"change-creator","creator_id":4242}`, 500, jsonCT, `"message"`},
		{"bulk malformed JSON", EraNotificationAdmin, "POST", "/api/notification/admin/bulk", admin, `{`, 400, textCT, "Malformed JSON in request body."},
		{"notification missing", EraNotification, "GET", "/api/notification/999", admin, "", 404, textCT, "Not found."},
		{"notification creator_id not positive", EraNotification, "GET", "/api/notification?creator_id=x", admin, "", 400, jsonCT, `"creator_id"`},
		{"legacy alert missing", EraPulseAlerts, "PUT", "/api/alert/999", admin, `{"archived":true}`, 404, textCT, "Not found."},
		{"collection missing", EraNotificationAdmin, "GET", "/api/collection/999999/items", admin, "", 404, textCT, "Not found."},
		{"someone else's personal collection", EraNotificationAdmin, "GET", "/api/collection/1021/items", plain, "", 403, textCT, "You don't have permissions to do that."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := notifFixture(t, tt.era)
			s.AddAlert(Alert{CreatorID: 21})
			status, ct, body := rawDo(t, s, tt.method, tt.path, tt.header, tt.body)
			if status != tt.status || ct != tt.ct {
				t.Fatalf("%s %s = %d %q %s, want %d %q", tt.method, tt.path, status, ct, body, tt.status, tt.ct)
			}
			if (tt.ct == textCT && body != tt.want) || (tt.ct == jsonCT && !strings.Contains(body, tt.want)) {
				t.Fatalf("%s %s body = %s, want %s", tt.method, tt.path, body, tt.want)
			}
		})
	}
}

// TestSessionPropertiesVersion: the version setting is public, so GET
// /api/session/properties answers it without a credential, and the
// x-metabase-version header carries the same tag.
func TestSessionPropertiesVersion(t *testing.T) {
	t.Parallel()
	for _, era := range []Era{EraNotificationAdmin, EraNotification, EraPulseAlerts} {
		s := New(t, WithEra(era))
		v := getJSON(t, s, "GET", "/api/session/properties", nil, "", 200)
		if got := field(t, v, "version", "tag"); got != era.Tag() {
			t.Errorf("%v: version.tag = %v, want %s", era, got, era.Tag())
		}
	}
}

// TestListPulses: an admin sees every unarchived subscription of an
// unarchived dashboard, plus legacy pulses, sorted by name ignoring case,
// with recipients; deactivated recipients are dropped, a deactivated
// creator's subscription stays; a plain user sees only their own.
func TestListPulses(t *testing.T) {
	t.Parallel()
	s := notifFixture(t, EraNotificationAdmin)
	b := s.AddSubscription(Subscription{Name: "beta", DashboardID: 7, CreatorID: 22, UserIDs: []int{21, 22},
		Emails: []string{"ext@example.org"}, SlackChannels: []string{"#sales", "#ops"}})
	a := s.AddSubscription(Subscription{Name: "Alpha", DashboardID: 8, CreatorID: 20})
	legacy := s.AddSubscription(Subscription{Name: "cards only", CreatorID: 21, CardIDs: []int{5}})
	s.AddSubscription(Subscription{Name: "archived", DashboardID: 9, CreatorID: 21, Archived: true})
	s.AddSubscription(Subscription{Name: "dash archived", DashboardID: 10, CreatorID: 21, DashboardArchived: true})
	s.AddAlert(Alert{CreatorID: 21}) // alerts are never pulses in this era

	rows := getJSON(t, s, "GET", "/api/pulse", admin, "", 200)
	if got, want := ids(t, rows), []int{a.ID, b.ID, legacy.ID}; !slices.Equal(got, want) {
		t.Fatalf("GET /api/pulse ids = %v, want %v", got, want)
	}
	beta := field(t, rows, 1)
	if field(t, beta, "creator", "email") != "dee@example.com" || field(t, beta, "dashboard_id") != 7.0 {
		t.Errorf("deactivated creator's subscription = %v", beta)
	}
	if _, ok := field(t, beta, "creator").(map[string]any)["is_active"]; ok {
		t.Errorf("hydrated creator carries is_active: %v", field(t, beta, "creator"))
	}
	email := field(t, beta, "channels", 0)
	if field(t, email, "channel_type") != "email" || len(field(t, email, "recipients").([]any)) != 2 ||
		field(t, email, "recipients", 0, "email") != "ext@example.org" || field(t, email, "recipients", 1, "id") != 21.0 {
		t.Errorf("email channel = %v, want the address then active user 21 only", email)
	}
	if field(t, beta, "channels", 2, "details", "channel") != "#ops" || field(t, beta, "channels", 2, "enabled") != true {
		t.Errorf("slack channel = %v", field(t, beta, "channels", 2))
	}
	if field(t, rows, 2, "dashboard_id") != nil {
		t.Errorf("legacy pulse dashboard_id = %v, want null", field(t, rows, 2, "dashboard_id"))
	}
	archived := getJSON(t, s, "GET", "/api/pulse?archived=true", admin, "", 200)
	if len(archived.([]any)) != 1 || field(t, archived, 0, "name") != "archived" {
		t.Errorf("GET /api/pulse?archived=true = %v", archived)
	}
	mine := getJSON(t, s, "GET", "/api/pulse", plain, "", 200)
	if got := ids(t, mine); !slices.Equal(got, []int{a.ID}) {
		t.Errorf("plain user's GET /api/pulse ids = %v, want only their own %d", got, a.ID)
	}
}

// TestUpdatePulse: PUT /api/pulse/:id archives; creator_id is dropped
// silently (200, creator unchanged); the body defaults unarchive and clear
// skip_if_empty when left out; only the creator or an admin may write.
func TestUpdatePulse(t *testing.T) {
	t.Parallel()
	s := notifFixture(t, EraNotificationAdmin)
	p := s.AddSubscription(Subscription{Name: "weekly", DashboardID: 3, CreatorID: 22, SkipIfEmpty: true,
		SlackChannels: []string{"#x"}})
	v := getJSON(t, s, "PUT", "/api/pulse/"+itoa(p.ID), admin, `{"archived":true,"skip_if_empty":true,"creator_id":21}`, 200)
	if field(t, v, "archived") != true || field(t, v, "creator_id") != 22.0 || field(t, v, "channels", 0, "enabled") != false {
		t.Fatalf("PUT archived = %v", v)
	}
	got, _ := s.SubscriptionByID(p.ID)
	if !got.Archived || got.CreatorID != 22 || !got.SkipIfEmpty {
		t.Fatalf("after archive: %+v", got)
	}
	getJSON(t, s, "PUT", "/api/pulse/"+itoa(p.ID), admin, `{"name":"renamed"}`, 200)
	got, _ = s.SubscriptionByID(p.ID)
	if got.Archived || got.SkipIfEmpty || got.Name != "renamed" {
		t.Fatalf("PUT without archived/skip_if_empty: %+v, want both reset to their defaults", got)
	}
	if status, _, body := rawDo(t, s, "PUT", "/api/pulse/"+itoa(p.ID), plain, `{"archived":true}`); status != 403 {
		t.Fatalf("plain user's PUT on someone else's subscription = %d %s, want 403", status, body)
	}
	own := s.AddSubscription(Subscription{Name: "mine", DashboardID: 4, CreatorID: 20})
	getJSON(t, s, "PUT", "/api/pulse/"+itoa(own.ID), plain, `{"archived":true}`, 200)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestNotificationsAcrossEras lists one alert through every endpoint that
// serves it in each era, in that endpoint's shape.
func TestNotificationsAcrossEras(t *testing.T) {
	t.Parallel()
	t.Run("pulse alerts", func(t *testing.T) {
		t.Parallel()
		s := notifFixture(t, EraPulseAlerts)
		p := s.AddSubscription(Subscription{Name: "sub", DashboardID: 1, CreatorID: 21})
		a := s.AddAlert(Alert{CardID: 55, CardName: "Revenue", CreatorID: 22, UserIDs: []int{21}, SlackChannels: []string{"#rev"}})
		if a.ID == p.ID {
			t.Fatalf("alert id %d equals a subscription id: alerts are pulses before 0.54", a.ID)
		}
		rows := getJSON(t, s, "GET", "/api/alert", admin, "", 200)
		if got := ids(t, rows); !slices.Equal(got, []int{a.ID}) {
			t.Fatalf("GET /api/alert ids = %v", got)
		}
		if field(t, rows, 0, "card", "id") != 55.0 || field(t, rows, 0, "creator_id") != 22.0 ||
			field(t, rows, 0, "channels", 1, "details", "channel") != "#rev" {
			t.Errorf("legacy alert = %v", field(t, rows, 0))
		}
		if got := ids(t, getJSON(t, s, "GET", "/api/pulse", admin, "", 200)); !slices.Equal(got, []int{p.ID}) {
			t.Errorf("GET /api/pulse ids = %v, want the subscription only", got)
		}
		v := getJSON(t, s, "PUT", "/api/alert/"+itoa(a.ID), admin, `{"archived":true}`, 200)
		if field(t, v, "archived") != true {
			t.Errorf("PUT /api/alert archived = %v", v)
		}
		if status, _, _ := rawDo(t, s, "PUT", "/api/alert/"+itoa(a.ID), plain, `{"archived":false}`); status != 403 {
			t.Errorf("plain user's PUT on another's alert = %d, want 403", status)
		}
	})
	t.Run("notification", func(t *testing.T) {
		t.Parallel()
		s := notifFixture(t, EraNotification)
		a := s.AddAlert(Alert{CardID: 55, CardName: "Revenue", CreatorID: 22, UserIDs: []int{21, 22}, Emails: []string{"x@example.org"}})
		all := getJSON(t, s, "GET", "/api/notification", admin, "", 200)
		if got := ids(t, all); !slices.Equal(got, []int{systemEventNotificationID, a.ID}) {
			t.Fatalf("GET /api/notification ids = %v, want the seeded system event and the alert", got)
		}
		cards := getJSON(t, s, "GET", "/api/notification?payload_type=notification/card", admin, "", 200)
		n := field(t, cards, 0)
		if field(t, n, "payload", "card_id") != 55.0 || field(t, n, "creator", "email") != "dee@example.com" {
			t.Errorf("card notification = %v", n)
		}
		r := field(t, n, "handlers", 0, "recipients")
		// Before recipients-detail the deactivated user is hydrated like any
		// other, and nothing in it says they are inactive.
		dee, _ := field(t, r, 1, "user").(map[string]any)
		if _, hasActive := dee["is_active"]; field(t, r, 1, "user_id") != 22.0 || dee["email"] != "dee@example.com" || hasActive ||
			field(t, r, 2, "details", "value") != "x@example.org" {
			t.Errorf("recipients = %v, want the deactivated user hydrated without is_active, then the raw address", r)
		}
		compat := getJSON(t, s, "GET", "/api/alert", admin, "", 200)
		if _, hasID := field(t, compat, 0, "card").(map[string]any)["id"]; hasID || field(t, compat, 0, "card", "name") != "Revenue" {
			t.Errorf("compat GET /api/alert card = %v, want a name and no id", field(t, compat, 0, "card"))
		}
	})
}

// TestAdminNotifications: the admin list's filters and run status, and
// the bulk actions.
func TestAdminNotifications(t *testing.T) {
	t.Parallel()
	s := notifFixture(t, EraNotificationAdmin)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	dee := s.AddAlert(Alert{CreatorID: 22, LastSend: &Run{At: at, Failed: true, Error: "no access"}})
	ann := s.AddAlert(Alert{CreatorID: 21, LastSend: &Run{At: at.Add(time.Hour)}})
	none := s.AddAlert(Alert{})
	old := s.AddAlert(Alert{CreatorID: 22, Archived: true})

	page := getJSON(t, s, "GET", "/api/notification/admin?creatorless=true&sort_column=id&sort_direction=asc", admin, "", 200)
	if got := ids(t, field(t, page, "data")); !slices.Equal(got, []int{dee.ID, none.ID, old.ID}) {
		t.Fatalf("creatorless ids = %v", got)
	}
	row := field(t, page, "data", 0)
	if field(t, row, "creator", "is_active") != false || field(t, row, "last_send", "status") != "failing" ||
		field(t, row, "last_send", "error") != "no access" || field(t, row, "last_check") != nil {
		t.Errorf("admin row = %v", row)
	}
	one := getJSON(t, s, "GET", "/api/notification/admin?active=true&limit=1", admin, "", 200)
	if field(t, one, "total") != 3.0 || len(field(t, one, "data").([]any)) != 1 || field(t, one, "data", 0, "id") != float64(ann.ID) {
		t.Errorf("limit=1 page = %v, want total 3 and the latest send first", one)
	}
	if got := ids(t, field(t, getJSON(t, s, "GET", "/api/notification/admin?creator_id=22", admin, "", 200), "data")); len(got) != 2 {
		t.Errorf("creator_id=22 ids = %v", got)
	}

	v := getJSON(t, s, "POST", "/api/notification/admin/bulk", admin,
		`{"notification_ids":[`+itoa(dee.ID)+`,`+itoa(dee.ID)+`,`+itoa(old.ID)+`,999,1],"action":"change-creator","creator_id":21}`, 200)
	if field(t, v, "updated") != 2.0 {
		t.Errorf("change-creator updated = %v, want 2 (duplicates, unknown ids and the system event skipped)", v)
	}
	if a, _ := s.AlertByID(dee.ID); a.CreatorID != 21 {
		t.Errorf("alert %d creator = %d, want 21", dee.ID, a.CreatorID)
	}
	v = getJSON(t, s, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[`+itoa(ann.ID)+`],"action":"archive"}`, 200)
	if a, _ := s.AlertByID(ann.ID); field(t, v, "updated") != 1.0 || !a.Archived {
		t.Errorf("archive = %v, alert %+v", v, a)
	}
	// A deactivated new creator is accepted: nothing in the endpoint checks.
	getJSON(t, s, "POST", "/api/notification/admin/bulk", admin, `{"notification_ids":[`+itoa(none.ID)+`],"action":"change-creator","creator_id":22}`, 200)
}

// TestCollectionItems: total counts every unarchived item whatever the
// page, for the owner or an admin.
func TestCollectionItems(t *testing.T) {
	t.Parallel()
	s := notifFixture(t, EraNotificationAdmin)
	for _, it := range []CollectionItem{{Name: "b"}, {Name: "A", Model: "dashboard"}, {Name: "c", Model: "collection"}, {Name: "gone", Archived: true}} {
		s.AddCollectionItem(20, it)
	}
	users := getJSON(t, s, "GET", "/api/user?query=pat", admin, "", 200)
	cid := int(field(t, users, "data", 0, "personal_collection_id").(float64))
	v := getJSON(t, s, "GET", "/api/collection/"+itoa(cid)+"/items?limit=1&offset=0", admin, "", 200)
	if field(t, v, "total") != 3.0 || len(field(t, v, "data").([]any)) != 1 || field(t, v, "data", 0, "name") != "A" {
		t.Fatalf("items page = %v", v)
	}
	own := getJSON(t, s, "GET", "/api/collection/"+itoa(cid)+"/items?models=card", plain, "", 200)
	if field(t, own, "total") != 1.0 || field(t, own, "limit") != nil {
		t.Errorf("owner's unpaged card items = %v", own)
	}
}

// TestDeactivationDropsPulseRecipients: deactivating a user deletes their
// pulse recipient rows, so a reactivated user no longer receives; alert
// recipients in the notification eras keep their row with "user": null.
func TestDeactivationDropsPulseRecipients(t *testing.T) {
	t.Parallel()
	s := notifFixture(t, EraNotification)
	p := s.AddSubscription(Subscription{Name: "s", DashboardID: 1, CreatorID: 20, UserIDs: []int{21}})
	a := s.AddAlert(Alert{CreatorID: 20, UserIDs: []int{21}})
	if status, _, body := rawDo(t, s, "DELETE", "/api/user/21", admin, ""); status != 200 {
		t.Fatalf("DELETE = %d %s", status, body)
	}
	getJSON(t, s, "GET", "/api/pulse", admin, "", 200)
	if status, _, body := rawDo(t, s, "PUT", "/api/user/21/reactivate", admin, ""); status != 200 {
		t.Fatalf("reactivate = %d %s", status, body)
	}
	if got, _ := s.SubscriptionByID(p.ID); len(got.UserIDs) != 0 {
		t.Errorf("subscription recipients after deactivation and reactivation = %v, want none", got.UserIDs)
	}
	if got, _ := s.AlertByID(a.ID); !slices.Equal(got.UserIDs, []int{21}) {
		t.Errorf("alert recipients = %v, want the notification recipient row kept", got.UserIDs)
	}
}
