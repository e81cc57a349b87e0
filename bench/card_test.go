package main

import (
	"testing"
	"time"
)

// TestCardBounds: the bounds are the (two round trips for one target, four for fifty,
// four for the complete card) and a row is met only within 1.2× its bound plus 50 ms, on both
// figures, with its items on the card.
func TestCardBounds(t *testing.T) {
	row := cardRow{targets: 1, rtt: 100 * time.Millisecond, ok: true, toCard: 290 * time.Millisecond, toComplete: 490 * time.Millisecond}
	if row.cardBound() != 200*time.Millisecond || row.completeBound() != 400*time.Millisecond {
		t.Fatalf("bounds %s, %s; want 200ms, 400ms", row.cardBound(), row.completeBound())
	}
	if !row.met() {
		t.Fatal("290 ms within 1.2×200 ms + 50 ms, 490 ms within 1.2×400 ms + 50 ms: not met")
	}
	row.toCard = 291 * time.Millisecond
	if row.met() {
		t.Fatal("291 ms met a 290 ms allowance")
	}
	row.toCard, row.ok = 100*time.Millisecond, false
	if row.met() {
		t.Fatal("met without the items on the card")
	}
	if b := (cardRow{targets: 50, rtt: 100 * time.Millisecond}).cardBound(); b != 400*time.Millisecond {
		t.Fatalf("fifty targets' card bound %s, want 400ms", b)
	}
}
