package bot

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// deactivatedEmails reads every page of users.list, no faster than the spacing, waits out a
// refusal, tells progress after each page, and keeps only deactivated people with an email.
func TestDeactivatedEmailsPagesAndPaces(t *testing.T) {
	t.Parallel()
	fs := slacktest.New(t)
	var want []string
	for i := range 450 {
		u := slacktest.User{ID: fmt.Sprintf("U%04d", i), Name: fmt.Sprintf("p%d", i), Email: fmt.Sprintf("p%d@example.com", i)}
		if i%100 == 7 {
			u.Deleted = true
			want = append(want, u.Email)
		}
		fs.AddUser(u)
	}
	fs.AddUser(slacktest.User{ID: "UGONEBOT", Name: "oldbot", Email: "bot@example.com", IsBot: true, Deleted: true})
	fs.AddUser(slacktest.User{ID: "UNOMAIL", Name: "nomail", Deleted: true})
	fs.RateLimit("users.list", 1, 0) // the second page is refused once
	api := slack.New("xoxb-test", slack.OptionAPIURL(fs.APIURL()))
	const spacing = 40 * time.Millisecond
	cfg := Config{SlashCommand: "/metabase", ApproverUsers: []string{"UAPP"}, Policy: testPolicy(), MembersSpacing: spacing}
	dir := NewDirectory(cfg, api)
	core, err := access.New(access.Config{Policy: cfg.Policy, Execution: testExecution("t")},
		access.Deps{Store: openTestStore(t), Metabase: newMemMetabase(), Directory: dir, Notifier: NewNotifier(cfg, api)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, api, core, dir)
	if err != nil {
		t.Fatal(err)
	}
	var progress []int
	start := time.Now()
	got, err := leavers{b}.deactivatedEmails(t.Context(), func(pages, read int) { progress = append(progress, read) })
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("deactivated emails %v, want %v", got, want)
	}
	// 453 members (with the bot user) in pages of 200, one of them asked again after a refusal.
	if !slices.Equal(progress, []int{200, 400, 453}) {
		t.Errorf("progress %v, want a report after each page", progress)
	}
	if n := fs.Calls("users.list"); n != 4 {
		t.Errorf("%d users.list calls, want 4 (3 pages, one refused once)", n)
	}
	if took < 3*spacing {
		t.Errorf("4 calls took %s, less than 3 spacings of %s: not paced", took, spacing)
	}
}

// The member list's long read ends when the bot stops, not minutes later.
func TestUntilShutdownEndsWithTheBot(t *testing.T) {
	t.Parallel()
	run, stop := context.WithCancel(t.Context())
	handler, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(run), runCtxKey{}, run), time.Minute)
	defer cancel()
	ctx, done := untilShutdown(handler, time.Hour)
	defer done()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < 59*time.Minute {
		t.Errorf("deadline %v, want the longer bound of an hour", dl)
	}
	stop()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the read went on after the bot stopped")
	}
}
