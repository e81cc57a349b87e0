package metabase

import (
	"errors"
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// frenchLastAdmin is the last-admin refusal as a French Metabase words it
// (metabase/metabase#59776).
const frenchLastAdmin = `Vous ne pouvez pas supprimer le dernier membre du groupe "Admin" !`

// TestReactivateDecidesByReread: a 400 from reactivate is told apart by
// re-reading the user, so a French Metabase gives the same answers as an
// English one, with Metabase's own words kept for people.
func TestReactivateDecidesByReread(t *testing.T) {
	t.Parallel()
	for _, locale := range []string{"en", "fr"} {
		t.Run(locale, func(t *testing.T) {
			t.Parallel()
			s := metabasetest.New(t, metabasetest.WithLocale(locale), metabasetest.WithLastAdminBefore68198())
			c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
			active := s.AddUser(metabasetest.User{Email: "ann@example.com", Active: true})
			if _, err := c.ReactivateUser(t.Context(), active.ID); !errors.Is(err, ErrAlreadyActive) {
				t.Errorf("reactivate an active user = %v, want ErrAlreadyActive", err)
			}
			// Jane was an admin; only the key's user is another active admin,
			// which Metabase before PR #68198 does not find enough.
			jane := s.AddUser(metabasetest.User{Email: "jane@example.com", Superuser: true})
			_, err := c.ReactivateUser(t.Context(), jane.ID)
			var ae *APIError
			if !errors.Is(err, ErrFormerAdminNotReactivated) || errors.Is(err, ErrAlreadyActive) || !errors.As(err, &ae) {
				t.Fatalf("reactivate a former admin = %v, want ErrFormerAdminNotReactivated wrapping the APIError", err)
			}
			if locale == "fr" && ae.Message != frenchLastAdmin {
				t.Errorf("Message = %q, want Metabase's own words %q", ae.Message, frenchLastAdmin)
			}
			if u, _ := s.UserByID(jane.ID); u.Active {
				t.Error("jane was reactivated despite the refusal")
			}
			// Another admin is added: the same call now succeeds.
			s.AddUser(metabasetest.User{Email: "root@example.com", Active: true, Superuser: true})
			if u, err := c.ReactivateUser(t.Context(), jane.ID); err != nil || !u.IsActive {
				t.Fatalf("reactivate with two other admins = %+v, %v", u, err)
			}
		})
	}
}

// TestDisableLastAdminDecidedByReread: Metabase's last-admin refusal is
// ErrLastAdmin in any language, with Metabase's words kept.
func TestDisableLastAdminDecidedByReread(t *testing.T) {
	t.Parallel()
	s := metabasetest.New(t, metabasetest.WithLocale("fr"))
	c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
	err := c.DisableUser(t.Context(), metabasetest.AdminUserID)
	var ae *APIError
	if !errors.Is(err, ErrLastAdmin) || !errors.As(err, &ae) || ae.Message != frenchLastAdmin {
		t.Fatalf("DisableUser(last admin) = %v, want ErrLastAdmin with the French message", err)
	}
}

// TestCapabilitiesProbedInAnyLanguage: a French Metabase, and one that
// reports vLOCAL_DEV (a build without its version file), are probed to the
// same capabilities as an English release.
func TestCapabilitiesProbedInAnyLanguage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		era  metabasetest.Era
		want AlertSource
	}{
		{metabasetest.EraNotificationAdmin, AlertsFromNotificationAdmin},
		{metabasetest.EraNotification, AlertsFromNotification},
		{metabasetest.EraPulseAlerts, AlertsFromAlertAPI},
	} {
		for _, tag := range []string{"", "vLOCAL_DEV"} {
			t.Run(tt.era.String()+" "+tag, func(t *testing.T) {
				t.Parallel()
				opts := []metabasetest.Option{metabasetest.WithEra(tt.era), metabasetest.WithLocale("fr")}
				if tag != "" {
					opts = append(opts, metabasetest.WithVersionTag(tag))
				}
				s := metabasetest.New(t, opts...)
				c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
				caps, err := c.Capabilities(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if caps.Alerts != tt.want || caps.ArchiveAlerts != true {
					t.Errorf("Capabilities = %+v, want alerts from %s, archivable", caps, tt.want)
				}
				if tag != "" && caps.Version.Known() {
					t.Errorf("Version %+v taken for a release", caps.Version)
				}
			})
		}
	}
}

// TestArchiveAlertsNoticesAnUpgradeInAnyLanguage: before v0.54 an alert is
// archived with PUT /api/alert/:id; if Metabase was upgraded meanwhile,
// that route answers a 404 whose words say nothing the client reads, and
// the capabilities read again tell an upgrade from a missing alert.
func TestArchiveAlertsNoticesAnUpgradeInAnyLanguage(t *testing.T) {
	t.Parallel()
	s := metabasetest.New(t, metabasetest.WithEra(metabasetest.EraPulseAlerts), metabasetest.WithLocale("fr"))
	c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
	a := s.AddAlert(metabasetest.Alert{CreatorID: metabasetest.AdminUserID})
	if n, err := c.ArchiveAlerts(t.Context(), []int{4242, a.ID}); err != nil || n != 1 {
		t.Fatalf("ArchiveAlerts = %d, %v; want the missing one skipped and 1 archived", n, err)
	}
	s.FailNext("PUT", "/api/alert/:id", 1, 404, "API endpoint does not exist.")
	s.FailNext("GET", "/api/session/properties", 1, 200, `{"version":{"tag":"v0.56.0"}}`)
	_, err := c.ArchiveAlerts(t.Context(), []int{a.ID})
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("ArchiveAlerts after an upgrade = %v, want ErrNotSupported", err)
	}
	if strings.Contains(err.Error(), "does not exist") {
		t.Errorf("the error still carries the English text: %v", err)
	}
}
