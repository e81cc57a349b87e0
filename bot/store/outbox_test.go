package store

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// outboxRow is everything stored about an outbox row, for assertions.
type outboxRow struct {
	id           int64
	requestID    string
	kind         string
	payload      string
	claimedBy    string
	claimedUntil int64
	delivered    bool
	attempts     int
	lastError    string
}

func outboxRows(t *testing.T, s *Store) []outboxRow {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT id, request_id, kind, payload, claimed_by, claimed_until,
		delivered_at IS NOT NULL, attempts, last_error FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var o outboxRow
		if err := rows.Scan(&o.id, &o.requestID, &o.kind, &o.payload, &o.claimedBy, &o.claimedUntil,
			&o.delivered, &o.attempts, &o.lastError); err != nil {
			t.Fatalf("read outbox: %v", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

func pendingOutbox(t *testing.T, s *Store) int {
	t.Helper()
	n, err := s.PendingOutbox(t.Context())
	if err != nil {
		t.Fatalf("PendingOutbox: %v", err)
	}
	return n
}

// claim calls ClaimOutbox and returns the kinds claimed, in order.
func claim(t *testing.T, s *Store, owner string, now time.Time, limit int) ([]Outbox, []string) {
	t.Helper()
	got, err := s.ClaimOutbox(t.Context(), owner, now, time.Minute, limit)
	if err != nil {
		t.Fatalf("ClaimOutbox(%s): %v", owner, err)
	}
	kinds := []string{}
	for _, o := range got {
		kinds = append(kinds, o.RequestID+"/"+o.Kind)
	}
	return got, kinds
}

func testOutboxAtomic(t *testing.T, h harness) {
	s := h.fresh(t)
	created := t0.Add(-time.Minute)
	mustCreate(t, s, newRequest("R1", t0, 1),
		Outbox{Kind: "post_card", Payload: []byte(`{"text":"approve?"}`), CreatedAt: created},
		Outbox{Kind: "audit", RequestID: "AUDIT"})

	// A refused create queues nothing.
	if err := s.Create(t.Context(), newRequest("R1", t0), Outbox{Kind: "post_card"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate Create error = %v", err)
	}
	// A failed update queues nothing; a successful one queues its rows.
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		return []Outbox{{Kind: "never"}}, approval.ErrNotPending
	}); !errors.Is(err, approval.ErrNotPending) {
		t.Fatalf("Update error = %v", err)
	}
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		if err := approveErr(r.Approve("UAPP", t0.Add(time.Minute), approval.Policy{})); err != nil {
			return nil, err
		}
		return []Outbox{{Kind: "update_card"}, {Kind: "thread_reply", Payload: []byte("approved")}}, nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	rows := outboxRows(t, s)
	var got []string
	for _, o := range rows {
		got = append(got, o.requestID+"/"+o.kind+"/"+o.payload)
	}
	want := []string{`R1/post_card/{"text":"approve?"}`, "AUDIT/audit/", "R1/update_card/", "R1/thread_reply/approved"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}

	claimed, _ := claim(t, s, "d1", t0, 1)
	if len(claimed) != 1 {
		t.Fatalf("claimed %d rows, want 1", len(claimed))
	}
	wantFirst := Outbox{ID: rows[0].id, RequestID: "R1", Kind: "post_card", Payload: []byte(`{"text":"approve?"}`), CreatedAt: created, Attempts: 1}
	if diff := cmp.Diff(wantFirst, claimed[0]); diff != "" {
		t.Errorf("claimed row (-want +got):\n%s", diff)
	}
}

func testOutboxOrder(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0), Outbox{Kind: "card"}, Outbox{Kind: "reply"})
	mustCreate(t, s, newRequest("R2", t0), Outbox{Kind: "card"})

	// Only the first undelivered row of each request is claimable.
	first, kinds := claim(t, s, "d1", t0, 10)
	if diff := cmp.Diff([]string{"R1/card", "R2/card"}, kinds); diff != "" {
		t.Fatalf("first claim (-want +got):\n%s", diff)
	}
	// While R1's card is claimed (even by nobody else), its reply waits.
	if _, kinds := claim(t, s, "d2", t0, 10); len(kinds) != 0 {
		t.Fatalf("claimed %v while the card was undelivered", kinds)
	}
	// Rows of other requests keep flowing meanwhile.
	mustCreate(t, s, newRequest("R3", t0), Outbox{Kind: "card"})
	if _, kinds := claim(t, s, "d2", t0, 10); !cmp.Equal(kinds, []string{"R3/card"}) {
		t.Fatalf("claim with R1 blocked = %v, want R3/card", kinds)
	}
	if err := s.CompleteOutbox(t.Context(), first[0].ID, "d1"); err != nil {
		t.Fatalf("CompleteOutbox: %v", err)
	}
	if _, kinds := claim(t, s, "d2", t0, 10); !cmp.Equal(kinds, []string{"R1/reply"}) {
		t.Fatalf("claim after delivering the card = %v, want R1/reply", kinds)
	}
	if n := pendingOutbox(t, s); n != 3 {
		t.Errorf("PendingOutbox = %d, want 3", n)
	}
}

func testOutboxLease(t *testing.T, h harness) {
	a, b := h.pair(t)
	mustCreate(t, a, newRequest("R1", t0), Outbox{Kind: "card"})
	got, err := a.ClaimOutbox(t.Context(), "d1", t0, time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimOutbox = %v, %v", got, err)
	}
	if _, kinds := claim(t, b, "d2", t0.Add(59*time.Second), 10); len(kinds) != 0 {
		t.Fatalf("a second owner claimed a live-leased row: %v", kinds)
	}
	taken, _ := claim(t, b, "d2", t0.Add(time.Minute), 10)
	if len(taken) != 1 || taken[0].ID != got[0].ID || taken[0].Attempts != 2 {
		t.Fatalf("claim after the lease expired = %+v, want row %d at attempt 2", taken, got[0].ID)
	}
	// The first owner lost the row: it may not complete it.
	if err := a.CompleteOutbox(t.Context(), got[0].ID, "d1"); !errors.Is(err, ErrConflict) {
		t.Errorf("CompleteOutbox by the previous owner error = %v, want ErrConflict", err)
	}
	if err := b.CompleteOutbox(t.Context(), got[0].ID, "d2"); err != nil {
		t.Errorf("CompleteOutbox by the new owner: %v", err)
	}
	if n := pendingOutbox(t, a); n != 0 {
		t.Errorf("PendingOutbox = %d, want 0", n)
	}
	// A delivered row is never claimed again.
	if _, kinds := claim(t, a, "d3", t0.Add(time.Hour), 10); len(kinds) != 0 {
		t.Errorf("claimed a delivered row: %v", kinds)
	}
}

func testOutboxWrongOwner(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0), Outbox{Kind: "card"})
	got, _ := claim(t, s, "d1", t0, 1)
	id := got[0].ID
	if err := s.CompleteOutbox(t.Context(), id, "d2"); !errors.Is(err, ErrConflict) {
		t.Errorf("CompleteOutbox by another owner error = %v, want ErrConflict", err)
	}
	if err := s.RetryOutbox(t.Context(), id, "d2", t0, "x"); !errors.Is(err, ErrConflict) {
		t.Errorf("RetryOutbox by another owner error = %v, want ErrConflict", err)
	}
	if _, err := s.CompleteOutboxAndUpdate(t.Context(), id, "d2", "R1", func(r *approval.Request) error {
		r.MessageTS = "1.2"
		return nil
	}); !errors.Is(err, ErrNotClaimed) || !errors.Is(err, ErrConflict) {
		// The deliverer tells this apart from a lost compare-and-set: retrying cannot help.
		t.Errorf("CompleteOutboxAndUpdate by another owner error = %v, want ErrNotClaimed (an ErrConflict)", err)
	}
	if err := s.CompleteOutbox(t.Context(), id, ""); err == nil {
		t.Errorf("CompleteOutbox with an empty owner succeeded")
	}
	if err := s.CompleteOutbox(t.Context(), id, "d1"); err != nil {
		t.Errorf("CompleteOutbox by the owner: %v", err)
	}
	if err := s.CompleteOutbox(t.Context(), id, "d1"); !errors.Is(err, ErrConflict) {
		t.Errorf("second CompleteOutbox error = %v, want ErrConflict", err)
	}
	if _, err := s.ClaimOutbox(t.Context(), "", t0, time.Minute, 1); err == nil {
		t.Errorf("ClaimOutbox with an empty owner succeeded")
	}
	if _, err := s.ClaimOutbox(t.Context(), "d1", t0, time.Minute, 0); err == nil {
		t.Errorf("ClaimOutbox with limit 0 succeeded")
	}
}

func testOutboxRetry(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0), Outbox{Kind: "card"}, Outbox{Kind: "reply"})
	got, _ := claim(t, s, "d1", t0, 10)
	if err := s.RetryOutbox(t.Context(), got[0].ID, "d1", t0.Add(30*time.Second), "slack: ratelimited"); err != nil {
		t.Fatalf("RetryOutbox: %v", err)
	}
	// Not before the retry time, and the reply still waits behind the card.
	if _, kinds := claim(t, s, "d2", t0.Add(29*time.Second), 10); len(kinds) != 0 {
		t.Fatalf("claimed %v before the retry time", kinds)
	}
	again, kinds := claim(t, s, "d2", t0.Add(30*time.Second), 10)
	if !cmp.Equal(kinds, []string{"R1/card"}) || again[0].Attempts != 2 {
		t.Fatalf("claim at the retry time = %v (attempts %d), want R1/card at attempt 2", kinds, again[0].Attempts)
	}
	rows := outboxRows(t, s)
	if rows[0].lastError != "slack: ratelimited" || rows[0].claimedBy != "d2" {
		t.Errorf("row after retry and reclaim = %+v", rows[0])
	}
	// The released owner cannot complete it any more.
	if err := s.CompleteOutbox(t.Context(), got[0].ID, "d1"); !errors.Is(err, ErrConflict) {
		t.Errorf("CompleteOutbox by the released owner error = %v, want ErrConflict", err)
	}
}

func testCompleteOutboxAndUpdate(t *testing.T, h harness) {
	s := h.fresh(t)
	mustCreate(t, s, newRequest("R1", t0), Outbox{Kind: "post_card"}, Outbox{Kind: "reply"})
	got, _ := claim(t, s, "d1", t0, 10)
	id := got[0].ID

	// When fn fails, neither the delivery nor the update is recorded.
	errBoom := errors.New("boom")
	if _, err := s.CompleteOutboxAndUpdate(t.Context(), id, "d1", "R1", func(r *approval.Request) error {
		r.MessageTS = "1700000000.000100"
		return errBoom
	}); err != errBoom {
		t.Fatalf("CompleteOutboxAndUpdate error = %v, want fn's error", err)
	}
	if rows := outboxRows(t, s); rows[0].delivered {
		t.Fatalf("row delivered although fn failed")
	}
	// A missing request rolls the delivery back too.
	if _, err := s.CompleteOutboxAndUpdate(t.Context(), id, "d1", "NOPE", func(r *approval.Request) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CompleteOutboxAndUpdate(missing request) error = %v, want ErrNotFound", err)
	}
	if n := pendingOutbox(t, s); n != 2 {
		t.Fatalf("PendingOutbox = %d, want 2", n)
	}

	r, err := s.CompleteOutboxAndUpdate(t.Context(), id, "d1", "R1", func(r *approval.Request) error {
		r.ChannelID = "CPOSTED"
		r.MessageTS = "1700000000.000100"
		return nil
	})
	if err != nil {
		t.Fatalf("CompleteOutboxAndUpdate: %v", err)
	}
	if r.MessageTS != "1700000000.000100" || r.Version != 2 {
		t.Errorf("returned request ts %q version %d", r.MessageTS, r.Version)
	}
	stored, _ := s.Get(t.Context(), "R1")
	if stored.MessageTS != "1700000000.000100" || stored.ChannelID != "CPOSTED" {
		t.Errorf("stored request ts %q channel %q", stored.MessageTS, stored.ChannelID)
	}
	if _, kinds := claim(t, s, "d1", t0, 10); !cmp.Equal(kinds, []string{"R1/reply"}) {
		t.Errorf("after delivering the card, claim = %v, want R1/reply", kinds)
	}
}

func testRaceClaim(t *testing.T, h harness) {
	a, b := h.pair(t)
	stores := []*Store{a, b}
	const (
		requests   = 40
		perRequest = 3
		workers    = 20
	)
	for i := range requests {
		var out []Outbox
		for k := range perRequest {
			out = append(out, Outbox{Kind: fmt.Sprintf("m%d", k)})
		}
		mustCreate(t, a, newRequest(fmt.Sprintf("R%02d", i), t0), out...)
	}

	var (
		mu      sync.Mutex
		claims  = map[int64]int{}
		byOrder = map[string][]string{} // request -> kinds in claim order
	)
	elapsed := race(t, workers, func(i int) error {
		s := stores[i%2]
		owner := fmt.Sprintf("worker-%02d", i)
		for {
			got, err := s.ClaimOutbox(t.Context(), owner, t0, time.Hour, 3)
			if err != nil {
				return fmt.Errorf("%s: claim: %w", owner, err)
			}
			mu.Lock()
			for _, o := range got {
				claims[o.ID]++
				byOrder[o.RequestID] = append(byOrder[o.RequestID], o.Kind)
			}
			mu.Unlock()
			for _, o := range got {
				if err := s.CompleteOutbox(t.Context(), o.ID, owner); err != nil {
					return fmt.Errorf("%s: complete %d: %w", owner, o.ID, err)
				}
			}
			if len(got) > 0 {
				continue
			}
			// Nothing claimable: done once everything is delivered, otherwise rows are
			// waiting behind rows other workers hold.
			n, err := s.PendingOutbox(t.Context())
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			runtime.Gosched()
		}
	})
	t.Logf("%d workers over 2 %s handles delivered %d rows: %v", workers, a.Backend(), requests*perRequest, elapsed)

	if len(claims) != requests*perRequest {
		t.Errorf("%d distinct rows claimed, want %d", len(claims), requests*perRequest)
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("row %d claimed %d times", id, n)
		}
	}
	for req, kinds := range byOrder {
		if !cmp.Equal(kinds, []string{"m0", "m1", "m2"}) {
			t.Errorf("request %s delivered out of order: %v", req, kinds)
		}
	}
}
