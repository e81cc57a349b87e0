package store

import (
	"sync"
	"testing"
)

// testChatUsers: only a change to deleted starts a deactivation; redeliveries, edits of a deleted
// account and stale reports keep its number; a reactivation lets the next one count anew.
func testChatUsers(t *testing.T, h harness) {
	s := h.fresh(t)
	ctx := t.Context()
	steps := []struct {
		name    string
		user    string
		deleted bool
		updated int64
		want    int
	}{
		{"profile edit of an unknown account", "U1", false, 100, 0},
		{"deactivation", "U1", true, 200, 1},
		{"the same event again", "U1", true, 200, 1},
		{"an edit of the deactivated account", "U1", true, 300, 1},
		{"a late redelivery of the edit before the deactivation", "U1", false, 100, 1},
		{"reactivation", "U1", false, 400, 0},
		{"second deactivation", "U1", true, 500, 2},
		{"first event about an account is a deactivation", "U2", true, 50, 1},
	}
	for _, st := range steps {
		n, err := s.SeeChatUser(ctx, "T1", st.user, st.deleted, st.updated)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if n != st.want {
			t.Fatalf("%s: deactivation %d, want %d", st.name, n, st.want)
		}
	}
	if n, err := s.SeeChatUser(ctx, "T2", "U1", true, 1); err != nil || n != 1 {
		t.Fatalf("the same user id in another team: %d, %v; want a record of its own (1)", n, err)
	}
}

// testChatUsersRace: two replicas recording the same deactivation at once both see the same
// number, so they key the same request.
func testChatUsersRace(t *testing.T, h harness) {
	a, b := h.pair(t)
	const rounds = 20
	for i := range rounds {
		user := "U" + string(rune('A'+i))
		var wg sync.WaitGroup
		got := make([]int, 2)
		errs := make([]error, 2)
		for j, s := range []*Store{a, b} {
			wg.Go(func() { got[j], errs[j] = s.SeeChatUser(t.Context(), "T1", user, true, 10) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("SeeChatUser: %v, %v", errs[0], errs[1])
		}
		if got[0] != 1 || got[1] != 1 {
			t.Fatalf("replicas saw deactivations %v, want [1 1]", got)
		}
	}
}
