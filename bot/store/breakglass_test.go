package store

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// breakGlass is a break-glass action by UREQ on targets, created at created.
func breakGlass(t *testing.T, id string, created time.Time, targets ...int) approval.Request {
	t.Helper()
	r := newRequest(id, created, targets...)
	if err := r.StartBreakGlass("me", created, time.Minute, 24*time.Hour, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	return r
}

func testBreakGlassLimit(t *testing.T, h harness) {
	s := h.fresh(t)
	ctx := t.Context()
	now := t0.Add(2 * time.Hour)
	l := BreakGlassLimit{Requester: "UREQ", Since: now.Add(-time.Hour), Max: 5}
	// Outside the window, an ordinary request, and another responder's: none counts.
	if err := s.CreateBreakGlass(ctx, breakGlass(t, "OLD", now.Add(-61*time.Minute), 1, 2, 3, 4, 5), BreakGlassLimit{Requester: "UREQ", Max: 5}, nil); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newRequest("PLAIN", now, 6))
	other := breakGlass(t, "OTHER", now, 7)
	other.Requester = "UOTHER"
	if err := s.CreateBreakGlass(ctx, other, BreakGlassLimit{Requester: "UOTHER", Max: 5}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBreakGlass(ctx, breakGlass(t, "A", now, 11, 12, 13, 14), l, nil); err != nil {
		t.Fatalf("four of five: %v", err)
	}
	var le *LimitError
	if err := s.CreateBreakGlass(ctx, breakGlass(t, "B", now, 15, 16), l, nil); !errors.As(err, &le) || le.Used != 4 || le.Max != 5 {
		t.Fatalf("six of five: err = %v, want a LimitError with 4 used", err)
	}
	if _, err := s.Get(ctx, "B"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused break-glass request was stored: %v", err)
	}
	if err := s.CreateBreakGlass(ctx, breakGlass(t, "C", now, 17), l, nil); err != nil {
		t.Fatalf("five of five: %v", err)
	}
}

// testBreakGlassLimitRace: two replicas each creating one-user break-glass actions at once never
// get past the limit together.
func testBreakGlassLimitRace(t *testing.T, h harness) {
	a, b := h.pair(t)
	l := BreakGlassLimit{Requester: "UREQ", Since: t0.Add(-time.Hour), Max: 5}
	var created, limited atomic.Int32
	var g errgroup.Group
	for i := range 12 {
		st := a
		if i%2 == 1 {
			st = b
		}
		g.Go(func() error {
			err := st.CreateBreakGlass(t.Context(), breakGlass(t, fmt.Sprintf("R%d", i), t0, 100+i), l, nil)
			var le *LimitError
			switch {
			case err == nil:
				created.Add(1)
			case errors.As(err, &le):
				limited.Add(1)
			default:
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if created.Load() != 5 || limited.Load() != 7 {
		t.Fatalf("created %d and limited %d, want 5 and 7", created.Load(), limited.Load())
	}
}
