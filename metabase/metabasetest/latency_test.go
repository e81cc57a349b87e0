package metabasetest

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// timed returns how long one request to s took and its status.
func timed(t *testing.T, s *Server, method, path string, header map[string]string) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	status, _, _ := rawDo(t, s, method, path, header, "")
	return time.Since(start), status
}

// TestRealisticLatency: a search with an API key pays the key check and
// the search; a session pays no key check; rows add their share.
func TestRealisticLatency(t *testing.T) {
	t.Parallel()
	p := RealisticLatency()
	s := New(t, WithLatencyProfile(p), WithPasswordUser(AdminEmail, "pw"))
	s.SeedUsers(2000)

	d, status := timed(t, s, "GET", "/api/user?status=all&query=user1999@example.com", admin)
	if want := p.APIKeyCheck + p.Search; status != 200 || d < want {
		t.Errorf("search by email with an API key: %d in %v, want 200 in at least %v", status, d, want)
	}
	d, status = timed(t, s, "GET", "/api/user?limit=500&offset=0", admin)
	if want := p.APIKeyCheck + p.Search + 500*p.PerRow; status != 200 || d < want {
		t.Errorf("page of 500 users: %d in %v, want 200 in at least %v", status, d, want)
	}
	d, status = timed(t, s, "GET", "/api/health", nil)
	if status != 200 || d < p.Health {
		t.Errorf("health: %d in %v, want 200 in at least %v", status, d, p.Health)
	}
	start := time.Now()
	status, _, body := rawDo(t, s, "POST", "/api/session", nil, `{"username":"`+AdminEmail+`","password":"pw"}`)
	if d := time.Since(start); status != 200 || d < p.Login {
		t.Fatalf("login: %d %s in %v, want 200 in at least %v", status, body, d, p.Login)
	}
}

// TestLatencyKeepsTheEffect: the request takes effect before its slow
// reply, so a client that gives up has still disabled the user.
func TestLatencyKeepsTheEffect(t *testing.T) {
	t.Parallel()
	s := New(t, WithLatencyProfile(LatencyProfile{Write: time.Hour}))
	ann := s.AddUser(User{ID: 10, Email: "ann@example.com", Active: true})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "DELETE", s.URL()+"/api/user/10", nil)
		req.Header.Set("X-API-Key", AdminAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if got, _ := s.UserByID(ann.ID); !got.Active {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatal("the DELETE never took effect")
		case <-tick.C:
		}
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the DELETE was answered before its latency")
	}
}
