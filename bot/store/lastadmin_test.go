package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// executingRequest stores a request that some executor is working on.
func executingRequest(t *testing.T, s *Store, id string, user int) {
	t.Helper()
	now := time.Now()
	r := approval.Request{ID: id, Action: approval.Disable, State: approval.Approved, Requester: "UREQ",
		Targets: []approval.Target{{UserID: user, Email: "a@x"}}, ChannelID: "C", RequiredApprovals: 1,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), DecidedAt: now}
	if err := r.Start("x", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
}

// mark is what an execution records before it lists instance's admins (MarkAdminList). On an
// error it fails the test (safe in goroutines) and returns the zero mark.
func mark(t *testing.T, s *Store, instance string) AdminListMark {
	t.Helper()
	m, err := s.MarkAdminList(t.Context(), instance)
	if err != nil {
		t.Errorf("MarkAdminList(%q): %v", instance, err)
	}
	return m
}

// testLastAdminRace: two executions, on two store handles (two replicas), each about to
// deactivate one of the last two admins: exactly one may, however they interleave; once the
// winner's request is finished its reservation no longer counts.
func testLastAdminRace(t *testing.T, h harness) {
	a, b := h.pair(t)
	executingRequest(t, a, "R-A", 10)
	executingRequest(t, a, "R-B", 11)
	admins := []int{10, 11}
	var wg sync.WaitGroup
	got := make([]bool, 2)
	for i, c := range []struct {
		s    *Store
		req  string
		user int
	}{{a, "R-A", 10}, {b, "R-B", 11}} {
		wg.Go(func() {
			ok, err := c.s.ReserveAdminDisable(t.Context(), c.req, "", c.user, admins, mark(t, c.s, ""))
			if err != nil {
				t.Error(err)
			}
			got[i] = ok
		})
	}
	wg.Wait()
	if got[0] == got[1] {
		t.Fatalf("reservations = %v, want exactly one of the last two admins allowed", got)
	}
	// A request reserving again (a retry) is not counted against itself.
	winner, user := "R-A", 10
	if got[1] {
		winner, user = "R-B", 11
	}
	if ok, err := a.ReserveAdminDisable(t.Context(), winner, "", user, admins, mark(t, a, "")); err != nil || !ok {
		t.Fatalf("the winner reserving again = %v, %v; want allowed", ok, err)
	}
	// Finished: the reservation stops counting for lists read after it (Metabase's own list
	// then shows who is left), but still counts for a list read before it.
	listedBefore := mark(t, b, "")
	if _, err := a.Update(t.Context(), winner, func(r *approval.Request) ([]Outbox, error) {
		return nil, r.Finish("x", time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	other, otherUser := "R-B", 11
	if winner == "R-B" {
		other, otherUser = "R-A", 10
	}
	if ok, _ := b.ReserveAdminDisable(t.Context(), other, "", otherUser, admins, listedBefore); ok {
		t.Fatal("a list read before the winner's DELETE let the last admin be deactivated")
	}
	if ok, _ := b.ReserveAdminDisable(t.Context(), other, "", otherUser, []int{otherUser}, mark(t, b, "")); ok {
		t.Fatal("the last admin Metabase lists may be deactivated")
	}
	if ok, _ := b.ReserveAdminDisable(t.Context(), other, "", otherUser, []int{otherUser, 12}, mark(t, b, "")); !ok {
		t.Fatal("with another admin left, the deactivation was refused")
	}
}

// testLastAdminSameRequest: one request naming the last two admins, executed several targets at
// a time, may deactivate one of them, not both.
func testLastAdminSameRequest(t *testing.T, h harness) {
	s := h.fresh(t)
	executingRequest(t, s, "R-BOTH", 10)
	admins := []int{10, 11}
	first, err := s.ReserveAdminDisable(t.Context(), "R-BOTH", "", 10, admins, mark(t, s, ""))
	if err != nil || !first {
		t.Fatalf("first admin of the request: %v, %v; want allowed", first, err)
	}
	if second, _ := s.ReserveAdminDisable(t.Context(), "R-BOTH", "", 11, admins, mark(t, s, "")); second {
		t.Fatal("the same request was allowed to deactivate the last two admins")
	}
}

// testLastAdminPerInstance: a reservation in one Metabase instance does not hold back the last
// admins of another: each instance needs a person admin of its own, and only its own
// reservations can take that away.
func testLastAdminPerInstance(t *testing.T, h harness) {
	s := h.fresh(t)
	executingRequest(t, s, "R-PROD", 10)
	executingRequest(t, s, "R-EU", 10)
	if ok, err := s.ReserveAdminDisable(t.Context(), "R-PROD", "prod", 10, []int{10, 11}, mark(t, s, "prod")); err != nil || !ok {
		t.Fatalf("prod admin 10 with 11 left: %v, %v; want allowed", ok, err)
	}
	// eu's user 11 is another person than prod's 11; prod's reservation of 10 must not count.
	if ok, err := s.ReserveAdminDisable(t.Context(), "R-EU", "eu", 11, []int{10, 11}, mark(t, s, "eu")); err != nil || !ok {
		t.Fatalf("eu admin 11 with eu's 10 left: %v, %v; want allowed", ok, err)
	}
	if ok, _ := s.ReserveAdminDisable(t.Context(), "R-EU", "eu", 10, []int{10, 11}, mark(t, s, "eu")); ok {
		t.Fatal("eu's last two admins were both reserved")
	}
	if _, err := s.ReserveAdminDisable(t.Context(), "R-EU", "eu", 10, []int{10, 11}, mark(t, s, "prod")); err == nil {
		t.Fatal("a list marked for prod was accepted for eu")
	}
}

// testUpdateAlso: the related changes commit with the update or not at all, a missing or
// unchanged related request is skipped, and a request to create is created or updated.
func testUpdateAlso(t *testing.T, h harness) {
	s := h.fresh(t)
	executingRequest(t, s, "MAIN", 1)
	executingRequest(t, s, "OTHER", 2)
	created := approval.Request{ID: "NEW", Action: approval.Enable, State: approval.Scheduled, Requester: "UREQ",
		Targets: []approval.Target{{UserID: 1, Email: "a@x"}}, ChannelID: "C", RequiredApprovals: 1,
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), NotBefore: time.Now().Add(time.Hour)}
	_, err := s.UpdateAlso(t.Context(), "MAIN", func(r *approval.Request) ([]Outbox, []Also, error) {
		r.Reason = "main changed"
		return nil, []Also{
			{ID: "OTHER", Update: func(o *approval.Request) ([]Outbox, error) { o.Reason = "other changed"; return nil, nil }},
			{ID: "MISSING", Update: func(o *approval.Request) ([]Outbox, error) { o.Reason = "x"; return nil, nil }},
			{Create: &created},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"MAIN": "main changed", "OTHER": "other changed", "NEW": ""} {
		if r, err := s.Get(t.Context(), id); err != nil || r.Reason != want {
			t.Errorf("%s: reason %q (err %v), want %q", id, r.Reason, err, want)
		}
	}
	// A failing related change rolls back the main one.
	_, err = s.UpdateAlso(t.Context(), "MAIN", func(r *approval.Request) ([]Outbox, []Also, error) {
		r.Reason = "must not stay"
		return nil, []Also{{Create: &created, Update: func(o *approval.Request) ([]Outbox, error) { return nil, ErrConflict }}}, nil
	})
	if err == nil {
		t.Fatal("a failing related change did not fail the update")
	}
	if r, _ := s.Get(t.Context(), "MAIN"); r.Reason != "main changed" {
		t.Fatalf("the main change was kept although its related change failed: %q", r.Reason)
	}
}

// testCreateExclusive: two requests for the same user made at the same moment on two replicas
// (each validated without seeing the other) cannot both be created; a request that names a
// scheduled return it supersedes may be, and one created after the return appeared may not.
func testCreateExclusive(t *testing.T, h harness) {
	a, b := h.pair(t)
	now := time.Now()
	req := func(id string, user int) approval.Request {
		return approval.Request{ID: id, Action: approval.Disable, State: approval.Pending, Requester: "UREQ",
			Targets: []approval.Target{{UserID: user, Email: "a@x"}}, ChannelID: "C", RequiredApprovals: 1,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Store{a, b} {
		wg.Go(func() { errs[i] = s.CreateExclusive(t.Context(), req(fmt.Sprintf("R-%d", i), 42)) })
	}
	wg.Wait()
	var oe *OpenRequestError
	if (errs[0] == nil) == (errs[1] == nil) || !(errors.As(errs[0], &oe) || errors.As(errs[1], &oe)) {
		t.Fatalf("two requests for one user at once: %v / %v; want exactly one created, the other refused", errs[0], errs[1])
	}
	ret := req("LEAVE-R", 43)
	ret.State, ret.ParentID, ret.Action, ret.NotBefore = approval.Scheduled, "LEAVE", approval.Enable, now.Add(time.Hour)
	if err := a.Create(t.Context(), ret); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateExclusive(t.Context(), req("T-1", 43)); !errors.As(err, &oe) || oe.RequestID != "LEAVE-R" {
		t.Fatalf("a disable unaware of the scheduled return = %v, want refused naming it", err)
	}
	aware := req("T-2", 43)
	aware.Supersedes = []approval.Superseded{{ID: "LEAVE-R", At: ret.NotBefore}}
	if err := b.CreateExclusive(t.Context(), aware); err != nil {
		t.Fatalf("a disable that supersedes the return = %v, want created", err)
	}
}

// testLastAdminSkewedClocks: two replicas whose clocks disagree by minutes still see each
// other's reservations. Replica B reads the admins of an instance (10 and 11) and only then
// reserves 11; meanwhile replica A, whose clock is behind, reserved 10, deactivated it (after B's
// list) and finished. B's list still shows 10 active, so B must be refused, whatever the clocks
// say. Likewise when A reserved before B's list but finished after it.
func testLastAdminSkewedClocks(t *testing.T, h harness) {
	for _, tt := range []struct {
		name string
		// reserveFirst has A reserve before B takes its mark (A's DELETE still after B's list).
		reserveFirst bool
	}{{"reserved after the list", false}, {"reserved before the list, finished after", true}} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := h.pair(t)
			a.now = func() time.Time { return time.Now().Add(-5 * time.Minute) }
			b.now = func() time.Time { return time.Now().Add(5 * time.Minute) }
			executingRequest(t, a, "R-A", 10)
			executingRequest(t, a, "R-B", 11)
			admins := []int{10, 11}
			reserveA := func() {
				t.Helper()
				if ok, err := a.ReserveAdminDisable(t.Context(), "R-A", "", 10, admins, mark(t, a, "")); err != nil || !ok {
					t.Fatalf("A reserving 10 with 11 left = %v, %v; want allowed", ok, err)
				}
			}
			if tt.reserveFirst {
				reserveA()
			}
			listed := mark(t, b, "")
			// B lists admins 10 and 11 here.
			if !tt.reserveFirst {
				reserveA()
			}
			// A deactivates 10 (after B's list) and finishes.
			if _, err := a.Update(t.Context(), "R-A", func(r *approval.Request) ([]Outbox, error) {
				return nil, r.Finish("x", time.Now())
			}); err != nil {
				t.Fatal(err)
			}
			if ok, err := b.ReserveAdminDisable(t.Context(), "R-B", "", 11, admins, listed); err != nil || ok {
				t.Fatalf("B reserving 11 on a list that may still show 10 = %v, %v; want refused: 10 was deactivated after B's list", ok, err)
			}
			// A list read after A finished shows 10 gone; with another admin left, B may go on.
			if ok, err := b.ReserveAdminDisable(t.Context(), "R-B", "", 11, []int{11, 12}, mark(t, b, "")); err != nil || !ok {
				t.Fatalf("B reserving 11 with 12 left on a fresh list = %v, %v; want allowed", ok, err)
			}
		})
	}
}
