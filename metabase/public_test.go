package metabase

import (
	"errors"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestPublicLinks lists the public dashboards and questions, reads who
// shared each, and unshares one; a repeat is ErrNotFound.
func TestPublicLinks(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	lee := s.AddUser(metabasetest.User{Email: "lee@example.com", Active: true, Superuser: true})
	d := s.AddPublicItem(metabasetest.PublicItem{Kind: "dashboard", Name: "KPIs", PublicUUID: "11111111-1111-1111-1111-111111111111", MadePublicByID: lee.ID})
	q := s.AddPublicItem(metabasetest.PublicItem{Kind: "card", Name: "Revenue", PublicUUID: "22222222-2222-2222-2222-222222222222", MadePublicByID: metabasetest.AdminUserID})
	s.AddPublicItem(metabasetest.PublicItem{Kind: "card", Name: "private"})
	s.AddPublicItem(metabasetest.PublicItem{Kind: "card", Name: "archived", PublicUUID: "33333333-3333-3333-3333-333333333333", Archived: true})

	links, err := c.ListPublicLinks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []PublicLink{{Kind: "dashboard", ID: d.ID, Name: "KPIs"}, {Kind: "card", ID: q.ID, Name: "Revenue"}}
	if len(links) != len(want) || links[0] != want[0] || links[1] != want[1] {
		t.Fatalf("links = %+v, want %+v", links, want)
	}
	for i, wantBy := range []int{lee.ID, metabasetest.AdminUserID} {
		if by, err := c.PublicLinkSharer(t.Context(), links[i]); err != nil || by != wantBy {
			t.Errorf("sharer of %s = %d, %v; want %d", links[i].Name, by, err, wantBy)
		}
	}
	if err := c.Unshare(t.Context(), links[0]); err != nil {
		t.Fatal(err)
	}
	if it, _ := s.PublicItemByID("dashboard", d.ID); it.PublicUUID != "" || it.MadePublicByID != 0 {
		t.Errorf("after unshare: %+v", it)
	}
	if err := c.Unshare(t.Context(), links[0]); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrPublicSharingOff) {
		t.Errorf("repeat unshare = %v, want ErrNotFound", err)
	}
	if by, err := c.PublicLinkSharer(t.Context(), links[0]); err != nil || by != 0 {
		t.Errorf("sharer after unshare = %d, %v; want 0", by, err)
	}
	if err := c.Unshare(t.Context(), PublicLink{Kind: "collection", ID: 1}); err == nil {
		t.Error("Unshare of a collection was sent")
	}
}

// TestPublicSharingOff: with sharing off, listing and unsharing are
// ErrPublicSharingOff whatever language Metabase answers in.
func TestPublicSharingOff(t *testing.T) {
	t.Parallel()
	for _, locale := range []string{"", "fr"} {
		s := metabasetest.New(t, metabasetest.WithLocale(locale))
		c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
		d := s.AddPublicItem(metabasetest.PublicItem{Kind: "dashboard", Name: "KPIs", PublicUUID: "11111111-1111-1111-1111-111111111111"})
		s.SetSetting("enable-public-sharing", false)
		if _, err := c.ListPublicLinks(t.Context()); !errors.Is(err, ErrPublicSharingOff) {
			t.Errorf("%q: ListPublicLinks = %v, want ErrPublicSharingOff", locale, err)
		}
		err := c.Unshare(t.Context(), PublicLink{Kind: "dashboard", ID: d.ID})
		if !errors.Is(err, ErrPublicSharingOff) {
			t.Errorf("%q: Unshare = %v, want ErrPublicSharingOff", locale, err)
		}
		if it, _ := s.PublicItemByID("dashboard", d.ID); it.PublicUUID == "" {
			t.Errorf("%q: the link was removed while sharing was off", locale)
		}
	}
}

// TestPublicErrParameterError: a 400 carrying malli's {"errors": …} is a
// parameter error, not sharing turned off.
func TestPublicErrParameterError(t *testing.T) {
	t.Parallel()
	err := publicErr(&APIError{StatusCode: 400, Body: []byte(`{"errors":{"dashboard-id":"value must be an integer greater than zero."}}`)})
	if errors.Is(err, ErrPublicSharingOff) {
		t.Errorf("a parameter error read as sharing off: %v", err)
	}
	if !errors.Is(publicErr(&APIError{StatusCode: 400, Body: []byte("Le partage public n'est pas activé.")}), ErrPublicSharingOff) {
		t.Error("a plain-text 400 was not read as sharing off")
	}
}
