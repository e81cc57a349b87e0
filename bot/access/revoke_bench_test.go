package access

import (
	"fmt"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// BenchmarkLookUpLeftovers measures what the leftovers add to a disable's card against a fake
// with Metabase's realistic latency (an API key's bcrypt check on every request): an admin
// target, a JWT instance, three keys and ten public links.
func BenchmarkLookUpLeftovers(b *testing.B) {
	s := metabasetest.New(b, metabasetest.WithLatencyProfile(metabasetest.RealisticLatency()))
	lee := s.AddUser(metabasetest.User{Email: "lee@example.com", Active: true, Superuser: true})
	for i := range 3 {
		s.AddAPIKey(metabasetest.APIKey{Name: fmt.Sprint("k", i), UpdatedByID: lee.ID})
	}
	for i := range 10 {
		s.AddPublicItem(metabasetest.PublicItem{Kind: "dashboard", Name: fmt.Sprint("d", i),
			PublicUUID: fmt.Sprintf("%08d-1111-1111-1111-111111111111", i), MadePublicByID: lee.ID})
	}
	s.SetSetting("jwt-enabled", true)
	mb, err := metabase.New(s.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		b.Fatal(err)
	}
	target := metabase.User{ID: lee.ID, IsSuperuser: true}
	b.ResetTimer()
	for b.Loop() {
		l, err := lookUpLeftovers(b.Context(), mb, target)
		if err != nil || len(l.Links) != 10 || len(l.Keys) != 3 {
			b.Fatalf("leftovers = %+v, %v", l, err)
		}
	}
}
