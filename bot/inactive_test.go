package bot

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

func TestSelectInactive(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ago := func(days int) *time.Time { t := now.AddDate(0, 0, -days); return &t }
	users := []metabase.User{
		{ID: 2, Email: "recent@x", IsActive: true, LastLogin: ago(5), DateJoined: *ago(400)},
		{ID: 3, Email: "old100@x", IsActive: true, LastLogin: ago(100), DateJoined: *ago(400)},
		{ID: 4, Email: "never200@x", IsActive: true, DateJoined: *ago(200)},
		{ID: 5, Email: "never10@x", IsActive: true, DateJoined: *ago(10)},
		{ID: 6, Email: "deact@x", IsActive: false, LastLogin: ago(300), DateJoined: *ago(500)},
		{ID: 7, Email: "protected@x", IsActive: true, LastLogin: ago(300), DateJoined: *ago(500)},
		{ID: 8, Email: "edge90@x", IsActive: true, LastLogin: ago(90), DateJoined: *ago(500)},
		{ID: 9, Email: "edge89@x", IsActive: true, LastLogin: ago(89), DateJoined: *ago(500)},
	}
	got := selectInactive(users, now.AddDate(0, 0, -90), func(u metabase.User) bool { return u.ID == 7 })
	var emails []string
	for _, u := range got {
		emails = append(emails, u.Email)
	}
	// Exactly 90 days is not "more than 90 days" ago.
	want := []string{"never200@x", "old100@x"}
	if len(emails) != len(want) || emails[0] != want[0] || emails[1] != want[1] {
		t.Fatalf("selectInactive = %v, want %v", emails, want)
	}
}

// countingSlack accepts ephemeral replies (the report) and counts them.
type countingSlack struct {
	nopSlack
	ephemerals int
}

func (s *countingSlack) PostEphemeralContext(context.Context, string, string, ...slack.MsgOption) (string, error) {
	s.ephemerals++
	return "1.000001", nil
}

// BenchmarkInactiveReport times `inactive 90` over 20,000 Metabase users (all of them inactive,
// so selection, sorting and rendering see the worst case) against the fake Metabase over HTTP,
// and reports the Metabase requests one report makes: ListUsers pages 500 at a time, so 40.
func BenchmarkInactiveReport(b *testing.B) {
	const total = 20_000
	fake := metabasetest.New(b)
	fake.SeedUsers(total - 1) // plus the bot's own admin account
	mb, err := metabase.New(fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		b.Fatal(err)
	}
	api := &countingSlack{}
	later := time.Now().AddDate(0, 0, 200)
	bot, err := New(Config{ApproverGroup: "SAPP", BotMetabaseUserID: metabasetest.AdminUserID, Now: func() time.Time { return later }},
		api, mb, nopStore{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sc := slack.SlashCommand{UserID: "UREQ", ChannelID: "COPS", Command: "/metabase", Text: "inactive 90"}
	cmd := Command{Verb: VerbInactive, Days: 90}
	before := fake.Count("GET", "/api/user")
	b.ReportAllocs()
	for b.Loop() {
		bot.inactiveReport(ctx, sc, cmd, bot.log)
	}
	if api.ephemerals != b.N {
		b.Fatalf("%d reports sent for %d runs", api.ephemerals, b.N)
	}
	b.ReportMetric(float64(fake.Count("GET", "/api/user")-before)/float64(b.N), "metabase-requests/op")
	users, err := bot.inactiveUsers(ctx, 90)
	if err != nil || len(users) != total-1 {
		b.Fatalf("inactiveUsers = %d users, %v; want %d (all but the bot's own account)", len(users), err, total-1)
	}
}
