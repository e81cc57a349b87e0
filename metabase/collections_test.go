package metabase

import (
	"errors"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestPersonalCollectionItemCount counts a deactivated user's unarchived
// items with one call when the user came from a listing, and two when it
// came from GET /api/user/:id, which carries no collection id.
func TestPersonalCollectionItemCount(t *testing.T) {
	t.Parallel()
	c, s := setupEra(t, metabasetest.EraNotificationAdmin)
	for _, it := range []metabasetest.CollectionItem{{Name: "q1"}, {Name: "dash", Model: "dashboard"}, {Name: "sub", Model: "collection"}, {Name: "old", Archived: true}} {
		s.AddCollectionItem(deeID, it)
	}
	listed, err := c.UserByEmail(t.Context(), "dee@example.com")
	if err != nil {
		t.Fatal(err)
	}
	before := len(s.Requests())
	n, err := c.PersonalCollectionItemCount(t.Context(), listed)
	if err != nil || n != 3 {
		t.Fatalf("PersonalCollectionItemCount = %d, %v; want 3", n, err)
	}
	if calls := len(s.Requests()) - before; calls != 1 {
		t.Errorf("%d calls for a listed user, want 1", calls)
	}
	byID, err := c.User(t.Context(), deeID)
	if err != nil {
		t.Fatal(err)
	}
	if byID.PersonalCollectionID != 0 {
		t.Fatalf("GET /api/user/:id carried personal_collection_id %d; the test assumes it does not", byID.PersonalCollectionID)
	}
	if n, err := c.PersonalCollectionItemCount(t.Context(), byID); err != nil || n != 3 {
		t.Errorf("PersonalCollectionItemCount(user by id) = %d, %v; want 3", n, err)
	}
	empty, err := c.UserByEmail(t.Context(), "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.PersonalCollectionItemCount(t.Context(), empty); err != nil || n != 0 {
		t.Errorf("empty collection = %d, %v; want 0", n, err)
	}
	if _, err := c.PersonalCollectionItemCount(t.Context(), &User{ID: 5}); err == nil {
		t.Error("a user with neither collection id nor email succeeded")
	}
	if _, err := c.PersonalCollectionItemCount(t.Context(), &User{ID: 5, PersonalCollectionID: 999999}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown collection = %v, want ErrNotFound", err)
	}
}
