package access

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestManyTargetsFoundInOneListing: a request naming more people than one round of searches finds
// them in one listing of the instance's users, not one search each; someone the listing lacks is
// still searched for, and refused only when the search does not find them either.
func TestManyTargetsFoundInOneListing(t *testing.T) {
	t.Parallel()
	fake := metabasetest.New(t)
	fake.SeedUsers(60) // ids 2..61, more than one page
	client, err := metabase.New(fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey), metabase.WithPageSize(20))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{
		Policy:    Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour},
		Execution: Execution{InstanceID: "listing", BulkConcurrency: 4, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second},
	}, Deps{Store: st, Metabase: client, Directory: stubDirectory{}, Notifier: &recordingNotifier{}})
	if err != nil {
		t.Fatal(err)
	}
	c := ChangeRequest{Action: approval.Disable, Reason: "reorg", Requester: "UREQ", Channel: "COPS"}
	for id := 2; id < 52; id++ {
		email := fmt.Sprintf("User%d@example.com", id) // as typed: case does not matter
		c.Targets = append(c.Targets, TargetRef{Kind: ByEmail, Email: email, Raw: email})
	}
	r, err := s.Submit(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Targets) != 50 || r.Targets[49].UserID != 51 {
		t.Fatalf("%d targets, last %+v; want 50, the last user 51", len(r.Targets), r.Targets[len(r.Targets)-1])
	}
	// Three pages of 20 for 60 users (and the bot's admin): no search per person.
	if n := fake.Count("GET", "/api/user"); n > 4 {
		t.Fatalf("%d user calls for 50 targets, want the pages of one listing", n)
	}
	if _, err := s.Cancel(t.Context(), r.ID, "UREQ"); err != nil {
		t.Fatal(err)
	}

	before := fake.Count("GET", "/api/user")
	c.SourceKey = "second"
	c.Targets = append(c.Targets, TargetRef{Kind: ByEmail, Email: "nobody@example.com", Raw: "nobody@example.com"})
	_, err = s.Submit(t.Context(), c)
	var rfs *Refusals
	if !errors.As(err, &rfs) || len(rfs.Items) != 1 || rfs.Items[0].Code != UnknownEmail {
		t.Fatalf("Submit = %v, want one refusal of the unknown email", err)
	}
	if n := fake.Count("GET", "/api/user") - before; n > 5 {
		t.Fatalf("%d user calls, want the listing's pages and one search for the missing user", n)
	}
}
