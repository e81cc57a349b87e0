package metabase

import (
	"errors"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestListAPIKeys lists the default-scope keys with group and updated_by,
// never a SCIM key, and recognises the client's own key by its prefix.
func TestListAPIKeys(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	leaver := s.AddUser(metabasetest.User{Email: "lee@example.com", FirstName: "Lee", Active: true, Superuser: true})
	adminKey := s.AddAPIKey(metabasetest.APIKey{Name: "etl", GroupID: metabasetest.AdministratorsGroupID, UpdatedByID: leaver.ID})
	plain := s.AddAPIKey(metabasetest.APIKey{Name: "dash", UpdatedByID: leaver.ID})
	s.AddAPIKey(metabasetest.APIKey{Name: "scim", SCIM: true, UpdatedByID: leaver.ID})
	own := s.AddAPIKey(metabasetest.APIKey{Name: "bot", Key: metabasetest.AdminAPIKey, GroupID: metabasetest.AdministratorsGroupID, UpdatedByID: metabasetest.AdminUserID})

	keys, err := c.ListAPIKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int]APIKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	if len(keys) != 3 {
		t.Fatalf("listed %d keys, want 3 (the SCIM key is never listed): %+v", len(keys), keys)
	}
	if k := byID[adminKey.ID]; !k.IsAdmin() || k.UpdatedBy.ID != leaver.ID || k.Name != "etl" {
		t.Errorf("admin key = %+v", k)
	}
	if k := byID[plain.ID]; k.IsAdmin() || k.Group.ID != metabasetest.AllUsersGroupID {
		t.Errorf("plain key = %+v, want All Users and not admin", k)
	}
	for _, k := range keys {
		if got, want := c.IsOwnAPIKey(k), k.ID == own.ID; got != want {
			t.Errorf("IsOwnAPIKey(%s) = %v, want %v", k.Name, got, want)
		}
		if len(k.MaskedKey) != 47 {
			t.Errorf("masked_key %q: want 47 characters", k.MaskedKey)
		}
	}
	pw, _ := newTestClient(t, s.URL(), WithPassword("x@example.com", "pw"))
	if pw.IsOwnAPIKey(byID[own.ID]) {
		t.Error("a client signing in with a password claimed a key as its own")
	}
}

// TestDeleteAPIKey deletes a key once: the key stops working, and a
// repeat, as after a crash, is ErrNotFound.
func TestDeleteAPIKey(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	k := s.AddAPIKey(metabasetest.APIKey{Name: "etl", GroupID: metabasetest.AdministratorsGroupID, UpdatedByID: metabasetest.AdminUserID})
	withKey, _ := newTestClient(t, s.URL(), WithAPIKey(k.Key))
	if _, err := withKey.ListAPIKeys(t.Context()); err != nil {
		t.Fatalf("the admin key did not work before the delete: %v", err)
	}
	if err := c.DeleteAPIKey(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := withKey.ListAPIKeys(t.Context()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("the deleted key still answers: %v", err)
	}
	if err := c.DeleteAPIKey(t.Context(), k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("repeat delete = %v, want ErrNotFound", err)
	}
	if len(s.APIKeys()) != 0 {
		t.Errorf("keys left: %+v", s.APIKeys())
	}
}

// TestAPIKeysNeedAdmin: a non-admin key is refused, as check-superuser does.
func TestAPIKeysNeedAdmin(t *testing.T) {
	t.Parallel()
	_, s := setup(t)
	k := s.AddAPIKey(metabasetest.APIKey{Name: "viewer", UpdatedByID: metabasetest.AdminUserID})
	c, _ := newTestClient(t, s.URL(), WithAPIKey(k.Key))
	if _, err := c.ListAPIKeys(t.Context()); !errors.Is(err, ErrForbidden) {
		t.Errorf("ListAPIKeys as a non-admin key = %v, want ErrForbidden", err)
	}
	if err := c.DeleteAPIKey(t.Context(), k.ID); !errors.Is(err, ErrForbidden) {
		t.Errorf("DeleteAPIKey as a non-admin key = %v, want ErrForbidden", err)
	}
}
