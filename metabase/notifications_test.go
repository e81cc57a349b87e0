package metabase

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// Users of the notification fixtures.
const (
	annID = 21 // active
	deeID = 22 // deactivated, the offboarded target
	bobID = 23 // active, created nothing
	patID = 24 // active non-admin, holds plainKey
)

const plainKey = "mb_plain-notification-key-000"

// setupEra starts a fake Metabase of the given era with the fixture users
// and an admin client for it.
func setupEra(t *testing.T, era metabasetest.Era) (*Client, *metabasetest.Server) {
	t.Helper()
	s := metabasetest.New(t, metabasetest.WithEra(era), metabasetest.WithAPIKey(plainKey, patID))
	s.AddUser(metabasetest.User{ID: annID, Email: "ann@example.com", FirstName: "Ann", LastName: "Lee", Active: true})
	s.AddUser(metabasetest.User{ID: deeID, Email: "dee@example.com", FirstName: "Dee", LastName: "Park"})
	s.AddUser(metabasetest.User{ID: bobID, Email: "bob@example.com", FirstName: "Bob", Active: true})
	s.AddUser(metabasetest.User{ID: patID, Email: "pat@example.com", FirstName: "Pat", Active: true})
	c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
	return c, s
}

// seedTarget gives Dee two subscriptions and one alert, and Ann one of
// each, returning Dee's alert.
func seedTarget(s *metabasetest.Server) (subA, subB metabasetest.Subscription, alert metabasetest.Alert) {
	subB = s.AddSubscription(metabasetest.Subscription{Name: "Weekly KPIs", DashboardID: 7, CreatorID: deeID,
		UserIDs: []int{annID, bobID, deeID}, Emails: []string{"board@example.org"}, SlackChannels: []string{"#kpi"}})
	subA = s.AddSubscription(metabasetest.Subscription{Name: "daily sales", DashboardID: 8, CreatorID: deeID,
		SlackChannels: []string{"#sales", "#ops"}})
	s.AddSubscription(metabasetest.Subscription{Name: "Ann's", DashboardID: 9, CreatorID: annID, UserIDs: []int{annID}})
	s.AddSubscription(metabasetest.Subscription{Name: "old", DashboardID: 9, CreatorID: deeID, Archived: true})
	alert = s.AddAlert(metabasetest.Alert{CardID: 55, CardName: "Revenue drop", CreatorID: deeID,
		UserIDs: []int{annID, deeID}, Emails: []string{"cfo@example.org"}, SlackChannels: []string{"#alerts"},
		LastCheck: &metabasetest.Run{At: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Failed: true, Error: "You do not have permissions to run this query."}})
	s.AddAlert(metabasetest.Alert{CardID: 56, CreatorID: annID, UserIDs: []int{annID}})
	s.AddAlert(metabasetest.Alert{CardID: 57, CreatorID: deeID, Archived: true})
	return subA, subB, alert
}

// TestNotificationsEras lists a deactivated user's subscriptions and alert
// in each era, with their recipients and links, and nothing for a user who
// created nothing.
func TestNotificationsEras(t *testing.T) {
	t.Parallel()
	f := false
	tests := []struct {
		era      metabasetest.Era
		caps     Capabilities
		runs     bool // the alert carries its last run
		cardID   int  // the alert's question as listed
		creatorA *bool
	}{
		{metabasetest.EraNotificationAdmin, Capabilities{Version: ParseVersion("v0.61.0"), Alerts: AlertsFromNotificationAdmin,
			MoveAlerts: true, ArchiveAlerts: true, ArchiveAlertsEmails: true, AlertRunStatus: true, ArchiveSubscriptions: true}, true, 55, &f},
		{metabasetest.EraNotification, Capabilities{Version: ParseVersion("v0.56.0"), Alerts: AlertsFromNotification,
			ArchiveAlerts: true, ArchiveAlertsEmails: true, ArchiveSubscriptions: true}, false, 55, nil},
		{metabasetest.EraPulseAlerts, Capabilities{Version: ParseVersion("v0.53.0"), Alerts: AlertsFromAlertAPI,
			ArchiveAlerts: true, ArchiveSubscriptions: true}, false, 55, nil},
	}
	for _, tt := range tests {
		t.Run(tt.era.String(), func(t *testing.T) {
			t.Parallel()
			c, s := setupEra(t, tt.era)
			subA, subB, alert := seedTarget(s)
			inv, err := c.Notifications(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.caps, inv.Capabilities); diff != "" {
				t.Errorf("Capabilities (-want +got):\n%s", diff)
			}
			got := inv.CreatedBy(deeID, bobID)
			if _, ok := got[bobID]; ok {
				t.Errorf("CreatedBy(bob) = %v, want no entry for a user who created nothing", got[bobID])
			}
			dee := Creator{ID: deeID, Email: "dee@example.com", Name: "Dee Park", Active: tt.creatorA}
			var lastCheck *RunStatus
			if tt.runs {
				lastCheck = &RunStatus{At: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Failed: true,
					Error: "You do not have permissions to run this query."}
			}
			want := []Notification{
				{Kind: KindSubscription, ID: subA.ID, Name: "daily sales", Creator: Creator{ID: deeID, Email: "dee@example.com", Name: "Dee Park"},
					DashboardID: 8, SlackChannels: []string{"#sales", "#ops"}},
				{Kind: KindSubscription, ID: subB.ID, Name: "Weekly KPIs", Creator: Creator{ID: deeID, Email: "dee@example.com", Name: "Dee Park"},
					DashboardID: 7, EmailUsers: 2, EmailAddresses: 1, SlackChannels: []string{"#kpi"}},
				{Kind: KindAlert, ID: alert.ID, Name: "Revenue drop", Creator: dee, CardID: tt.cardID,
					EmailUsers: 1, EmailAddresses: 1, SlackChannels: []string{"#alerts"}, LastCheck: lastCheck},
			}
			if diff := cmp.Diff(want, got[deeID]); diff != "" {
				t.Fatalf("CreatedBy(dee) (-want +got):\n%s", diff)
			}
			items := got[deeID]
			if items[1].Path() != "/dashboard/7" || items[2].Path() != "/question/55" || items[1].Recipients() != 4 {
				t.Errorf("Path/Recipients = %q %q %d", items[1].Path(), items[2].Path(), items[1].Recipients())
			}
			if items[2].Failing() != tt.runs {
				t.Errorf("alert Failing() = %v, want %v (Metabase says so only with the admin API)", items[2].Failing(), tt.runs)
			}
			if n := len(inv.Subscriptions) + len(inv.Alerts); n != 5 {
				t.Errorf("inventory holds %d items, want 5 active ones (the seeded system event is no alert)", n)
			}
		})
	}
}

// countRequests counts the requests for method and exact path.
func countRequests(s *metabasetest.Server, method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// TestNotificationsCallBudget: listing 5,000 subscriptions for a request
// costs one GET /api/pulse and one alert listing, whatever the number of
// items or targets; the capability calls happen once and are remembered.
// Between v0.54 and recipients-detail, alerts with user recipients add one
// listing of the deactivated users (inactiveRecipients).
func TestNotificationsCallBudget(t *testing.T) {
	t.Parallel()
	eras := []struct {
		era       metabasetest.Era
		subs      int // the newest era gets the full 5,000; the call pattern does not depend on it
		alertPath string
		probes    map[string]int // detection calls on the first request, by path
		users     bool           // one listing of deactivated users per request
	}{
		{metabasetest.EraNotificationAdmin, 5000, "/api/notification/admin", map[string]int{"/api/session/properties": 1, "/api/notification/admin": 1}, false},
		{metabasetest.EraNotification, 1000, "/api/notification", map[string]int{"/api/session/properties": 1, "/api/notification/admin": 1}, true},
		{metabasetest.EraPulseAlerts, 1000, "/api/alert", map[string]int{"/api/session/properties": 1}, false},
	}
	for _, e := range eras {
		t.Run(e.era.String(), func(t *testing.T) {
			t.Parallel()
			c, s := setupEra(t, e.era)
			// Under the race detector on a busy machine the fake takes seconds to write
			// 5,000 rows: no attempt may time out and be retried, which would count twice.
			c.timeout = 2 * time.Minute
			creators := []int{annID, deeID, bobID, patID}
			s.SeedSubscriptions(e.subs, creators)
			for i := range 40 {
				s.AddAlert(metabasetest.Alert{CreatorID: creators[i%4], UserIDs: []int{annID}})
			}
			for round := 1; round <= 2; round++ {
				inv, err := c.Notifications(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				byUser := inv.CreatedBy(annID, deeID, bobID)
				if want := e.subs/4 + 10; len(byUser[deeID]) != want || len(byUser[bobID]) != want {
					t.Fatalf("round %d: dee %d, bob %d items, want %d each", round, len(byUser[deeID]), len(byUser[bobID]), want)
				}
				want := map[string]int{"/api/pulse": round, e.alertPath: round}
				if e.users {
					want["/api/user"] = round
				}
				for p, n := range e.probes {
					want[p] += n
				}
				got := map[string]int{}
				for _, r := range s.Requests() {
					got[r.Path]++
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("round %d: requests by path (-want +got):\n%s", round, diff)
				}
			}
		})
	}
}

// TestCapabilities covers the version reading, the remembering, and the
// detection for builds whose tag names no release.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	t.Run("remembered for the TTL", func(t *testing.T) {
		t.Parallel()
		s := metabasetest.New(t)
		c, clock := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
		for range 3 {
			if _, err := c.Capabilities(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if n := countRequests(s, "GET", "/api/session/properties"); n != 1 {
			t.Fatalf("properties read %d times within the TTL, want 1", n)
		}
		clock.mu.Lock()
		clock.t = clock.t.Add(capabilitiesTTL)
		clock.mu.Unlock()
		// After the TTL the remembered answer still comes at once, and a
		// new one is learned in the background.
		if _, err := c.Capabilities(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.facts.bg.Wait()
		if n := countRequests(s, "GET", "/api/session/properties"); n != 2 {
			t.Fatalf("properties read %d times after the TTL, want 2", n)
		}
		if _, err := c.Capabilities(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := countRequests(s, "GET", "/api/session/properties"); n != 2 {
			t.Fatalf("properties read %d times after the refresh, want 2", n)
		}
	})
	t.Run("unknown tag", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			era  metabasetest.Era
			want AlertSource
		}{
			{metabasetest.EraNotificationAdmin, AlertsFromNotificationAdmin},
			{metabasetest.EraNotification, AlertsFromNotification},
			{metabasetest.EraPulseAlerts, AlertsFromAlertAPI},
		} {
			s := metabasetest.New(t, metabasetest.WithEra(tt.era))
			s.FailNext("GET", "/api/session/properties", 1, 200, `{"version":{"tag":"vUNKNOWN"}}`)
			c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
			caps, err := c.Capabilities(t.Context())
			if err != nil || caps.Alerts != tt.want || caps.Version.Known() {
				t.Errorf("%v with an unknown tag: %+v, %v; want alerts from %q", tt.era, caps, err, tt.want)
			}
		}
	})
	t.Run("endpoint gone", func(t *testing.T) {
		t.Parallel()
		c, s := setupEra(t, metabasetest.EraNotificationAdmin)
		_, _, alert := seedTarget(s)
		if _, err := c.Capabilities(t.Context()); err != nil {
			t.Fatal(err)
		}
		// The admin API disappears after Capabilities looked (a downgrade):
		// the listing notices, looks again and falls back.
		s.FailNext("GET", "/api/notification/admin", -1, 404, "API endpoint does not exist.")
		inv, err := c.Notifications(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if inv.Capabilities.Alerts != AlertsFromNotification || inv.Capabilities.MoveAlerts {
			t.Errorf("capabilities after the admin API vanished = %+v", inv.Capabilities)
		}
		if got := inv.CreatedBy(deeID)[deeID]; len(got) != 3 || got[2].ID != alert.ID {
			t.Errorf("items after falling back = %+v", got)
		}
	})
	t.Run("not an admin", func(t *testing.T) {
		t.Parallel()
		_, s := setupEra(t, metabasetest.EraNotificationAdmin)
		c, _ := newTestClient(t, s.URL(), WithAPIKey(plainKey))
		if _, err := c.Notifications(t.Context()); !errors.Is(err, ErrForbidden) {
			t.Fatalf("Notifications as a non-admin = %v, want ErrForbidden", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		c, _ := setupEra(t, metabasetest.EraNotificationAdmin)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := c.Notifications(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Notifications(cancelled) = %v, want context.Canceled", err)
		}
	})
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tag  string
		want Version
	}{
		{"v0.56.3", Version{Tag: "v0.56.3", Feature: 56, Patch: 3}},
		{"v1.57.3.1", Version{Tag: "v1.57.3.1", Edition: 1, Feature: 57, Patch: 3}},
		{"v0.58.0-beta", Version{Tag: "v0.58.0-beta", Feature: 58}},
		{"v0.54", Version{Tag: "v0.54", Feature: 54}},
		{"vUNKNOWN", Version{Tag: "vUNKNOWN"}},
		{"", Version{}},
	}
	for _, tt := range tests {
		if got := ParseVersion(tt.tag); got != tt.want {
			t.Errorf("ParseVersion(%q) = %+v, want %+v", tt.tag, got, tt.want)
		}
	}
	if v := ParseVersion("v1.54.0"); !v.AtLeast(54) || v.AtLeast(55) || ParseVersion("vUNKNOWN").AtLeast(1) {
		t.Errorf("AtLeast is wrong")
	}
}

// TestErrNotSupported: a 404 of a route without an object id means "not
// supported", whatever its words (Metabase translates them); a 404 of a
// route with an id is a missing object, even in the words of the
// not-found handler.
func TestErrNotSupported(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{"API endpoint does not exist.", "Ce point de terminaison de l'API n'existe pas."} {
		route := &APIError{StatusCode: 404, Message: msg}
		markNoRoute(route, "/api/notification/admin")
		if !errors.Is(route, ErrNotSupported) || !errors.Is(route, ErrNotFound) {
			t.Errorf("unknown route %q: Is(ErrNotSupported)=%v Is(ErrNotFound)=%v, want both", msg,
				errors.Is(route, ErrNotSupported), errors.Is(route, ErrNotFound))
		}
	}
	object := &APIError{StatusCode: 404, Message: "API endpoint does not exist."}
	markNoRoute(object, "/api/pulse/:id")
	if errors.Is(object, ErrNotSupported) {
		t.Errorf("a 404 of a route with an id matches ErrNotSupported")
	}
}

// TestOrphaned finds the items of a user deactivated outside the bot, and
// those without a creator, but not those of active users.
func TestOrphaned(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	seedTarget(s)
	nobody := s.AddAlert(metabasetest.Alert{CardID: 70})
	rep, err := c.Orphaned(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ByCreator[deeID]) != 3 || rep.Creators[deeID].Email != "dee@example.com" {
		t.Errorf("dee's orphans = %+v, creator %+v", rep.ByCreator[deeID], rep.Creators[deeID])
	}
	if got := rep.ByCreator[0]; len(got) != 1 || got[0].ID != nobody.ID {
		t.Errorf("creatorless = %+v", got)
	}
	keys := make([]int, 0, len(rep.ByCreator))
	for k := range rep.ByCreator {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []int{0, deeID}) {
		t.Errorf("orphan creators = %v, want [0 %d]", keys, deeID)
	}
}

// TestCreatedByNeverSelectsCreatorless: creator id 0 is how an item without a creator reads, so
// asking for user 0 (a user whose id is not known yet) selects nothing, not every such item.
func TestCreatedByNeverSelectsCreatorless(t *testing.T) {
	t.Parallel()
	inv := &Inventory{
		Subscriptions: []Notification{{Kind: KindSubscription, ID: 1}},
		Alerts:        []Notification{{Kind: KindAlert, ID: 2}, {Kind: KindAlert, ID: 3, Creator: Creator{ID: 7}}},
	}
	got := inv.CreatedBy(0, 7)
	if len(got) != 1 || len(got[7]) != 1 || got[7][0].ID != 3 {
		t.Errorf("CreatedBy(0, 7) = %v, want only user 7's alert", got)
	}
}
