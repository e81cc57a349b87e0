package metabase

import (
	"errors"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestLegacyDisableInactive: on the toucan2-era Metabase whose DELETE
// answers 500 for an inactive user (metabase/metabase#66599), GET
// /api/user/:id also hides inactive users (fetch-user … :is_active true,
// docs/metabase.md#get-user), so a 404 there does not mean "missing".
// Disabling an inactive user must still succeed
// (docs/metabase.md#delete-user), and a missing one must still be
// ErrNotFound.
func TestLegacyDisableInactive(t *testing.T) {
	t.Parallel()
	c, s := setup(t, WithPageSize(25))
	s.SetLegacyDelete(true)
	for i := range 60 { // more than two pages of deactivated users, sorted before Zed
		s.AddUser(metabasetest.User{Email: "old" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.com"})
	}
	u := s.AddUser(metabasetest.User{Email: "zed@example.com", FirstName: "Zed"})
	if err := c.DisableUser(t.Context(), u.ID); err != nil {
		t.Fatalf("DisableUser(inactive) on legacy Metabase = %v, want nil", err)
	}
	if err := c.DisableUser(t.Context(), 4242); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DisableUser(missing) on legacy Metabase = %v, want ErrNotFound", err)
	}
	// An active user, and a second disable of it, as in a redelivered approval.
	a := s.AddUser(metabasetest.User{Email: "a@example.com", Active: true})
	for i := range 2 {
		if err := c.DisableUser(t.Context(), a.ID); err != nil {
			t.Fatalf("DisableUser #%d = %v", i+1, err)
		}
	}
}

// TestLegacyUserInactive: User documents "active or not", but the version
// with the legacy DELETE answers GET /api/user/:id with 404 for an
// inactive user (docs/metabase.md#get-user). The bot reads the target with
// User before disabling it (and on a takeover after a crash), so an
// inactive user must come back as inactive, not as ErrNotFound.
func TestLegacyUserInactive(t *testing.T) {
	t.Parallel()
	c, s := setup(t, WithPageSize(25))
	s.SetLegacyDelete(true)
	for i := range 60 {
		s.AddUser(metabasetest.User{Email: "old" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.com"})
	}
	in := s.AddUser(metabasetest.User{Email: "zed@example.com", FirstName: "Zed", Superuser: true})
	u, err := c.User(t.Context(), in.ID)
	if err != nil || u.ID != in.ID || u.IsActive || u.Email != "zed@example.com" {
		t.Fatalf("User(inactive) on legacy Metabase = %+v, %v; want the inactive user", u, err)
	}
	if _, err := c.User(t.Context(), 4242); !errors.Is(err, ErrNotFound) {
		t.Fatalf("User(missing) = %v, want ErrNotFound", err)
	}
}
