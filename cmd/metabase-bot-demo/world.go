package main

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// The demo workspace. Ids have the shapes Slack uses (U… people, S… user groups, C… channels).
const (
	opsChannel     = "COPS"
	opsName        = "ops"
	auditChannel   = "CAUDIT"
	auditName      = "metabase-audit"
	approverGroup  = "SAPPROVERS"
	approverHandle = "metabase-approvers"
	slashCommand   = "/metabase"
)

// person is someone the terminal can type as.
type person struct {
	name, id, realName, role string
}

// people of the demo workspace, in the order help lists them.
var people = []person{
	{"alice", "UALICE", "Alice Requester", "asks for changes"},
	{"bob", "UBOB", "Bob Approver", "approver (in @" + approverHandle + ")"},
	{"carol", "UCAROL", "Carol Approver", "approver (in @" + approverHandle + ")"},
	{"dave", "UDAVE", "Dave Bystander", "no role: his clicks are refused"},
}

// metabaseUsers are the demo's Metabase accounts besides the bot's own (the fake's seeded admin,
// whose API key the bot uses).
var metabaseUsers = []metabasetest.User{
	{Email: "ada@example.com", FirstName: "Ada", LastName: "Admin", Active: true, Superuser: true},
	{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true},
	{Email: "sam@example.com", FirstName: "Sam", LastName: "Sso", Active: true, SSOSource: "saml"},
	{Email: "lee@example.com", FirstName: "Lee", LastName: "Leaver", Active: true},
}

// world is the fake Slack and fake Metabase the bot runs against, with the demo's people in them.
type world struct {
	slack *slacktest.Server
	mb    *metabasetest.Server
	life  *lifetime
	// metabaseIDs are the ids the fake gave metabaseUsers, in the same order.
	metabaseIDs []int
}

// newWorld starts both fakes on loopback and fills them. close stops them.
func newWorld() *world {
	life := &lifetime{}
	w := &world{slack: slacktest.New(life), mb: metabasetest.New(life), life: life}
	for _, p := range people {
		w.slack.AddUser(slacktest.User{ID: p.id, Name: p.name, RealName: p.realName, Email: p.name + "@example.com"})
	}
	w.slack.SetUserGroup(approverGroup, "UBOB", "UCAROL")
	w.slack.AddChannel(opsChannel, opsName, true)
	w.slack.AddChannel(auditChannel, auditName, true)
	joined := time.Now().AddDate(-1, 0, 0)
	for _, u := range metabaseUsers {
		u.DateJoined = joined
		w.metabaseIDs = append(w.metabaseIDs, w.mb.AddUser(u).ID)
	}
	return w
}

func (w *world) close() { w.life.close() }

// findPerson returns the person called name.
func findPerson(name string) (person, bool) {
	i := slices.IndexFunc(people, func(p person) bool { return p.name == name })
	if i < 0 {
		return person{}, false
	}
	return people[i], true
}

// renderer knows the workspace's names, so mentions print as Slack shows them.
func (w *world) renderer() renderer {
	r := renderer{
		users:    map[string]string{w.slack.BotUserID(): "metabase-bot"},
		groups:   map[string]string{approverGroup: approverHandle},
		channels: map[string]string{opsChannel: opsName, auditChannel: auditName},
	}
	for _, p := range people {
		r.users[p.id] = p.name
		r.channels["D"+p.id] = "DM with " + p.name
	}
	return r
}

// metabaseLines describes each Metabase user as the fake holds them now.
func (w *world) metabaseLines() []string {
	var lines []string
	for _, id := range w.metabaseIDs {
		u, ok := w.mb.UserByID(id)
		if !ok {
			continue
		}
		state := "active"
		if !u.Active {
			state = "deactivated"
		}
		extra := ""
		if u.Superuser {
			extra += ", admin"
		}
		if u.SSOSource != "" {
			extra += ", signs in with " + u.SSOSource
		}
		lines = append(lines, fmt.Sprintf("%-18s %s %s (id %d%s): %s", u.Email, u.FirstName, u.LastName, u.ID, extra, state))
	}
	return lines
}

// lifetime stands in for the testing.TB the fakes are written for, since they are built for tests
// and this is a program: it keeps their clean-ups to run when the demo ends, and turns a fake's
// complaint into a panic, because one here is a mistake in the demo's own set-up. The embedded
// TB is nil, so a fake calling anything else panics too, rather than doing something a test
// runner would have done.
type lifetime struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
}

func (l *lifetime) Helper() {}

func (l *lifetime) Cleanup(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cleanups = append(l.cleanups, f)
}

func (l *lifetime) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (l *lifetime) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// close runs the clean-ups, last registered first, as testing does.
func (l *lifetime) close() {
	l.mu.Lock()
	fs := l.cleanups
	l.cleanups = nil
	l.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
