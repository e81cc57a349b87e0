package metabase

import (
	"errors"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		wantMsg string
	}{
		{"ok", 200, `{"status":"ok"}`, ""},
		{"initializing", 503, `{"status":"initializing","progress":0.3}`, `{"status":"initializing","progress":0.3}`},
		{"app db down", 503, `{"status":"Unable to get app-db connection"}`, `{"status":"Unable to get app-db connection"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := metabasetest.New(t)
			// A password client must not log in for a health check.
			c, _ := newTestClient(t, s.URL(), WithPassword("nobody@example.com", "x"))
			s.SetHealth(tt.status, tt.body)
			err := c.Health(t.Context())
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != tt.status || ae.Message != tt.wantMsg {
					t.Fatalf("err = %v", err)
				}
			}
			reqs := s.Requests()
			if len(reqs) != 1 || reqs[0].Path != "/api/health" || reqs[0].Auth != "none" {
				t.Errorf("requests = %+v, want one unauthenticated GET /api/health", reqs)
			}
		})
	}
}
