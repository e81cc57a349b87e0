package metabase

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestChangeAlertCreator moves a deactivated user's alert to a successor
// with the newest Metabase, and refuses without a call where it cannot.
func TestChangeAlertCreator(t *testing.T) {
	t.Parallel()
	t.Run("moves", func(t *testing.T) {
		t.Parallel()
		c, s := setupEra(t, metabasetest.EraNotificationAdmin)
		_, _, alert := seedTarget(s)
		n, err := c.ChangeAlertCreator(t.Context(), []int{alert.ID, 999}, annID)
		if err != nil || n != 1 {
			t.Fatalf("ChangeAlertCreator = %d, %v; want 1 (the missing id skipped)", n, err)
		}
		if a, _ := s.AlertByID(alert.ID); a.CreatorID != annID {
			t.Fatalf("alert creator = %d, want %d", a.CreatorID, annID)
		}
		inv, err := c.Notifications(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got := inv.CreatedBy(annID)[annID]
		if len(got) != 3 || !slices.ContainsFunc(got, func(n Notification) bool { return n.Kind == KindAlert && n.ID == alert.ID }) {
			t.Errorf("Ann's items after the move = %+v, want her own two and the moved alert", got)
		}
	})
	for _, era := range []metabasetest.Era{metabasetest.EraNotification, metabasetest.EraPulseAlerts} {
		t.Run("unsupported "+era.String(), func(t *testing.T) {
			t.Parallel()
			c, s := setupEra(t, era)
			_, _, alert := seedTarget(s)
			if _, err := c.ChangeAlertCreator(t.Context(), []int{alert.ID}, annID); !errors.Is(err, ErrNotSupported) {
				t.Fatalf("ChangeAlertCreator on %v = %v, want ErrNotSupported", era, err)
			}
			if n := s.Count("POST", "/api/notification/admin/bulk") + s.Count("PUT", "/api/alert"); n != 0 {
				t.Errorf("%d writes sent, want none", n)
			}
		})
	}
	t.Run("bad input changes nothing", func(t *testing.T) {
		t.Parallel()
		c, s := setupEra(t, metabasetest.EraNotificationAdmin)
		for _, tt := range []struct {
			ids     []int
			creator int
		}{{nil, annID}, {[]int{0}, annID}, {[]int{2}, 0}, {[]int{2}, -1}} {
			if _, err := c.ChangeAlertCreator(t.Context(), tt.ids, tt.creator); err == nil {
				t.Errorf("ChangeAlertCreator(%v, %d) succeeded", tt.ids, tt.creator)
			}
		}
		if n := len(s.Requests()); n != 0 {
			t.Errorf("%d requests for bad input, want none", n)
		}
	})
	t.Run("missing successor", func(t *testing.T) {
		t.Parallel()
		c, s := setupEra(t, metabasetest.EraNotificationAdmin)
		_, _, alert := seedTarget(s)
		_, err := c.ChangeAlertCreator(t.Context(), []int{alert.ID}, 4242)
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 500 {
			t.Fatalf("ChangeAlertCreator to a missing user = %v, want the 500 of the foreign key", err)
		}
	})
}

// TestWritesAreNotRetried: a 503 on a write comes back at once, with the
// write sent once; only reads are repeated.
func TestWritesAreNotRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		era     metabasetest.Era
		method  string
		pattern string
		call    func(ctx context.Context, c *Client, s *metabasetest.Server) error
	}{
		{"bulk change-creator", metabasetest.EraNotificationAdmin, "POST", "/api/notification/admin/bulk", func(ctx context.Context, c *Client, s *metabasetest.Server) error {
			_, _, a := seedTarget(s)
			_, err := c.ChangeAlertCreator(ctx, []int{a.ID}, annID)
			return err
		}},
		{"bulk archive", metabasetest.EraNotificationAdmin, "POST", "/api/notification/admin/bulk", func(ctx context.Context, c *Client, s *metabasetest.Server) error {
			_, _, a := seedTarget(s)
			_, err := c.ArchiveAlerts(ctx, []int{a.ID})
			return err
		}},
		{"legacy alert archive", metabasetest.EraPulseAlerts, "PUT", "/api/alert/:id", func(ctx context.Context, c *Client, s *metabasetest.Server) error {
			_, _, a := seedTarget(s)
			_, err := c.ArchiveAlerts(ctx, []int{a.ID})
			return err
		}},
		{"subscription archive", metabasetest.EraNotificationAdmin, "PUT", "/api/pulse/:id", func(ctx context.Context, c *Client, s *metabasetest.Server) error {
			p, _, _ := seedTarget(s)
			return c.ArchiveSubscription(ctx, p.ID)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, s := setupEra(t, tt.era)
			if _, err := c.Capabilities(t.Context()); err != nil {
				t.Fatal(err)
			}
			s.FailNext(tt.method, tt.pattern, 1, 503, "Metabase is still initializing. Please sit tight...")
			err := tt.call(t.Context(), c, s)
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 503 {
				t.Fatalf("write under a 503 = %v, want the 503", err)
			}
			n := 0
			for _, r := range s.Requests() {
				if r.Method == tt.method && r.Status == 503 {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("write sent %d times, want 1", n)
			}
		})
	}
}

// TestArchiveAlerts archives through the bulk action, or one PUT per alert
// before v0.54, and refuses in between.
func TestArchiveAlerts(t *testing.T) {
	t.Parallel()
	for _, era := range []metabasetest.Era{metabasetest.EraNotificationAdmin, metabasetest.EraPulseAlerts} {
		t.Run(era.String(), func(t *testing.T) {
			t.Parallel()
			c, s := setupEra(t, era)
			_, _, alert := seedTarget(s)
			other := s.AddAlert(metabasetest.Alert{CreatorID: deeID, CardID: 60})
			n, err := c.ArchiveAlerts(t.Context(), []int{alert.ID, 9999, other.ID})
			if err != nil || n != 2 {
				t.Fatalf("ArchiveAlerts = %d, %v; want 2 (the missing id skipped)", n, err)
			}
			for _, id := range []int{alert.ID, other.ID} {
				if a, _ := s.AlertByID(id); !a.Archived {
					t.Errorf("alert %d not archived", id)
				}
			}
			inv, err := c.Notifications(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := inv.CreatedBy(deeID)[deeID]; len(got) != 2 {
				t.Errorf("Dee's items after archiving her alerts = %d, want her 2 subscriptions", len(got))
			}
			// Again, as after a crash between the write and its record.
			if n, err := c.ArchiveAlerts(t.Context(), []int{alert.ID}); err != nil || n != 1 {
				t.Errorf("second ArchiveAlerts = %d, %v; want 1, nil", n, err)
			}
		})
	}
	t.Run("between 0.54 and the admin API", func(t *testing.T) {
		// PUT /api/notification/:id with the notification as read and
		// active false, as Metabase's own UI archives there; it mails the
		// recipients, so a repeat must not PUT again.
		t.Parallel()
		c, s := setupEra(t, metabasetest.EraNotification)
		_, _, alert := seedTarget(s)
		before, _ := s.AlertByID(alert.ID)
		for range 2 {
			if n, err := c.ArchiveAlerts(t.Context(), []int{alert.ID, 9999}); err != nil || n != 1 {
				t.Fatalf("ArchiveAlerts = %d, %v; want 1 (the missing id skipped), nil", n, err)
			}
		}
		after, _ := s.AlertByID(alert.ID)
		if !after.Archived || !slices.Equal(after.UserIDs, before.UserIDs) || !slices.Equal(after.Emails, before.Emails) {
			t.Errorf("after ArchiveAlerts: %+v, want archived with its recipients kept", after)
		}
		if n := s.Count("PUT", "/api/notification/"); n != 1 {
			t.Errorf("%d PUTs, want 1", n)
		}
		if m := s.RemovalEmails(); len(m) != 1 {
			t.Errorf("removal emails = %+v, want one round", m)
		}
	})
	t.Run("non-admin", func(t *testing.T) {
		t.Parallel()
		_, s := setupEra(t, metabasetest.EraPulseAlerts)
		_, _, alert := seedTarget(s)
		c, _ := newTestClient(t, s.URL(), WithAPIKey(plainKey))
		if _, err := c.ArchiveAlerts(t.Context(), []int{alert.ID}); !errors.Is(err, ErrForbidden) {
			t.Fatalf("ArchiveAlerts as a non-admin = %v, want ErrForbidden", err)
		}
	})
}

// TestArchiveSubscription archives once, keeps skip_if_empty and the
// creator, and succeeds again without a second write.
func TestArchiveSubscription(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	p := s.AddSubscription(metabasetest.Subscription{Name: "x", DashboardID: 3, CreatorID: deeID, SkipIfEmpty: true})
	for range 2 {
		if err := c.ArchiveSubscription(t.Context(), p.ID); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.SubscriptionByID(p.ID)
	if !got.Archived || !got.SkipIfEmpty || got.CreatorID != deeID {
		t.Fatalf("after ArchiveSubscription: %+v, want archived with skip_if_empty kept", got)
	}
	if n := s.Count("PUT", "/api/pulse/"+strconv.Itoa(p.ID)); n != 1 {
		t.Errorf("%d PUTs, want 1: an archived subscription is left alone", n)
	}
	if err := c.ArchiveSubscription(t.Context(), 4242); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotSupported) {
		t.Errorf("ArchiveSubscription(missing) = %v, want ErrNotFound", err)
	}
	if err := c.ArchiveSubscription(t.Context(), 0); err == nil {
		t.Error("ArchiveSubscription(0) succeeded")
	}
}
