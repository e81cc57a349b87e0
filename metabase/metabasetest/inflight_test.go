package metabasetest

import (
	"net/http"
	"sync"
	"testing"
)

// TestMaxInFlight: three held requests overlap, a later one does not; other paths and methods
// are not counted.
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	s := New(t)
	release := s.Hold("GET", "/api/health")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := http.Get(s.URL() + "/api/health")
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	if err := s.WaitForRequests(t.Context(), "GET", "/api/health", 3); err != nil {
		t.Fatal(err)
	}
	if got := s.MaxInFlight("GET", "/api/health"); got != 3 {
		t.Errorf("while held: MaxInFlight = %d, want 3", got)
	}
	release()
	wg.Wait()
	for range 2 { // sequential: never more than one at a time
		resp, err := http.Get(s.URL() + "/api/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := s.MaxInFlight("GET", "/api/health"); got != 3 {
		t.Errorf("after: MaxInFlight = %d, want 3", got)
	}
	if got := s.MaxInFlight("POST", "/api/health"); got != 0 {
		t.Errorf("other method: MaxInFlight = %d, want 0", got)
	}
	if got := s.MaxInFlight("", "/api/user"); got != 0 {
		t.Errorf("other path: MaxInFlight = %d, want 0", got)
	}
}
