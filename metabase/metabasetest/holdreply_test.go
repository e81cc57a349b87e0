package metabasetest

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestHoldReply: the DELETE takes effect at once and only its reply waits; a client that gives up meanwhile
// leaves the user deactivated (the request was handled, its reply never sent).
func TestHoldReply(t *testing.T) {
	t.Parallel()
	s := New(t)
	admin := map[string]string{"X-Api-Key": AdminAPIKey}
	ann := s.AddUser(User{Email: "ann@example.com", FirstName: "Ann", Active: true})
	bob := s.AddUser(User{Email: "bob@example.com", FirstName: "Bob", Active: true})

	release := s.HoldReply("DELETE", "/api/user/:id")
	done := make(chan int, 1)
	go func() {
		status, _, _ := rawDo(t, s, "DELETE", "/api/user/"+strconv.Itoa(ann.ID), admin, "")
		done <- status
	}()
	if err := s.WaitForRequests(t.Context(), "DELETE", "/api/user/", 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "DELETE", s.URL()+"/api/user/"+strconv.Itoa(bob.ID), nil)
		req.Header.Set("X-Api-Key", AdminAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	if err := s.WaitForRequests(t.Context(), "DELETE", "/api/user/", 2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("held reply sent before release")
	default:
	}
	cancel() // bob's client goes away before the reply
	if err := <-gone; err == nil {
		t.Fatal("cancelled DELETE got a reply")
	}
	release()
	if status := <-done; status != 200 {
		t.Errorf("released reply: %d, want 200", status)
	}
	if got, _ := s.UserByID(ann.ID); got.Active {
		t.Error("ann is still active after her DELETE was answered")
	}
	// bob's handler finishes on its own after his client left; his deactivation must still happen.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if got, _ := s.UserByID(bob.ID); !got.Active {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatal("bob stayed active: a held reply must not hold back the change")
		case <-tick.C:
		}
	}
	if n := s.Count("DELETE", "/api/user/"); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}
