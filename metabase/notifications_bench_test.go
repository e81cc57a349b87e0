package metabase

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// BenchmarkNotifications looks up what three targets left running among
// 5,000 subscriptions and 100 alerts, in each era, through the real client
// and the fake over loopback. calls/op counts every request the fake
// received per lookup once Capabilities is remembered: it must stay 2 (one
// subscription listing, one alert listing), whatever the number of items
// or targets, and 3 between v0.54 and recipients-detail, where alerts with
// user recipients add one listing of the deactivated users
// (inactiveRecipients).
func BenchmarkNotifications(b *testing.B) {
	for _, era := range []metabasetest.Era{metabasetest.EraNotificationAdmin, metabasetest.EraNotification, metabasetest.EraPulseAlerts} {
		b.Run(era.String(), func(b *testing.B) {
			s := metabasetest.New(b, metabasetest.WithEra(era))
			s.SeedUsers(500) // ids 2..501
			creators := make([]int, 500)
			for i := range creators {
				creators[i] = i + 2
			}
			s.SeedSubscriptions(5000, creators)
			for i := range 100 {
				s.AddAlert(metabasetest.Alert{CreatorID: creators[i*5], UserIDs: []int{creators[i]}, SlackChannels: []string{"#a"}})
			}
			c, err := New(s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Capabilities(b.Context()); err != nil {
				b.Fatal(err)
			}
			before := len(s.Requests())
			found := 0
			for b.Loop() {
				inv, err := c.Notifications(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				found = len(inv.CreatedBy(2, 3, 4)[2])
			}
			if found != 11 {
				b.Fatalf("user 2 has %d items, want 10 subscriptions and 1 alert", found)
			}
			calls := float64(len(s.Requests())-before) / float64(b.N)
			want := 2.0
			if era == metabasetest.EraNotification {
				want = 3
			}
			if calls != want {
				b.Fatalf("%.2f calls per lookup, want %.0f", calls, want)
			}
			b.ReportMetric(calls, "calls/op")
		})
	}
}

// BenchmarkNotificationsClient measures the client alone: the fake renders
// the 5,000 subscriptions and 100 alerts once, and a static server replays
// those bodies, so the figure is the client's HTTP round trips, decoding
// and grouping without the fake's rendering.
func BenchmarkNotificationsClient(b *testing.B) {
	s := metabasetest.New(b)
	s.SeedUsers(500)
	creators := make([]int, 500)
	for i := range creators {
		creators[i] = i + 2
	}
	s.SeedSubscriptions(5000, creators)
	for i := range 100 {
		s.AddAlert(metabasetest.Alert{CreatorID: creators[i*5], UserIDs: []int{creators[i]}})
	}
	bodies := map[string][]byte{}
	for _, p := range []string{"/api/session/properties", "/api/pulse", "/api/notification/admin?limit=10000"} {
		req, _ := http.NewRequestWithContext(b.Context(), "GET", s.URL()+p, nil)
		req.Header.Set("X-API-Key", metabasetest.AdminAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies[strings.SplitN(p, "?", 2)[0]] = body
	}
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(bodies[r.URL.Path])
	}))
	b.Cleanup(static.Close)
	c, err := New(static.URL, WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bodies["/api/pulse"]) + len(bodies["/api/notification/admin"])))
	for b.Loop() {
		inv, err := c.Notifications(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if len(inv.Subscriptions) != 5000 || len(inv.Alerts) != 100 {
			b.Fatalf("%d subscriptions, %d alerts", len(inv.Subscriptions), len(inv.Alerts))
		}
		_ = inv.CreatedBy(2, 3, 4)
	}
}
