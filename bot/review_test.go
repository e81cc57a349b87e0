package bot

import (
	"errors"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// TestStartRefusesLiveLeaseOfSameOwner: the timer reads due requests from a snapshot; by the time
// it starts one, the executor in this very process may have renewed its lease. A live lease
// means a live executor, whoever holds it, so starting again would run the request twice.
func TestStartRefusesLiveLeaseOfSameOwner(t *testing.T) {
	t0 := time.Now()
	r := approval.Request{ID: "MB-X", State: approval.Approved, RequiredApprovals: 1,
		Targets: []approval.Target{{UserID: 1}}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := r.Start("A", t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Start("A", t0.Add(time.Second), time.Minute); !errors.Is(err, approval.ErrLeaseHeld) {
		t.Fatalf("Start by the holder of a live lease = %v, want ErrLeaseHeld", err)
	}
	if err := r.Start("A", t0.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatalf("Start after the lease ran out = %v, want nil", err)
	}
}
