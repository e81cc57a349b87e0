package bot

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// countingSlack accepts ephemeral replies (the report) and counts them.
type countingSlack struct {
	*fuzzSlack
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
	api := &countingSlack{fuzzSlack: newFuzzSlack(nil)}
	later := time.Now().AddDate(0, 0, 200)
	p := testPolicy()
	p.BotMetabaseUserID = metabasetest.AdminUserID
	cfg := Config{ApproverGroup: "SAPP", SlashCommand: "/metabase", Policy: p}
	dir := NewDirectory(cfg, api)
	core, err := access.New(access.Config{Policy: p, Execution: testExecution("bench"), Now: func() time.Time { return later }},
		access.Deps{Store: openTestStore(b), Metabase: mb, Directory: dir, Notifier: NewNotifier(cfg, api)})
	if err != nil {
		b.Fatal(err)
	}
	bot, err := New(cfg, api, core, dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sc := slack.SlashCommand{UserID: "UREQ", ChannelID: "COPS", Command: "/metabase", Text: "inactive 90"}
	cmd := Command{Verb: VerbInactive, Days: 90}
	before := fake.Count("GET", "/api/user")
	b.ReportAllocs()
	for b.Loop() {
		bot.inactiveReport(ctx, sc, cmd)
	}
	if api.ephemerals != b.N {
		b.Fatalf("%d reports sent for %d runs", api.ephemerals, b.N)
	}
	b.ReportMetric(float64(fake.Count("GET", "/api/user")-before)/float64(b.N), "metabase-requests/op")
	users, _, _, err := core.Inactive(ctx, "UREQ", "COPS", 90)
	if err != nil || len(users) != total-1 {
		b.Fatalf("inactiveUsers = %d users, %v; want %d (all but the bot's own account)", len(users), err, total-1)
	}
}
