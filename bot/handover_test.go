package bot

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

func TestParseHandover(t *testing.T) {
	t.Parallel()
	jane := access.TargetRef{Kind: access.ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}
	bob := &access.TargetRef{Kind: access.ByEmail, Email: "bob@example.com", Raw: "bob@example.com"}
	tests := []struct {
		name    string
		text    string
		want    Command
		wantErr string
	}{
		{"handover", "disable jane@example.com handover bob@example.com Left the company",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{jane}, Successor: bob, Reason: "Left the company"}, ""},
		{"handover and archive", "disable jane@example.com HANDOVER bob@example.com archive Left",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{jane}, Successor: bob, Archive: true, Reason: "Left"}, ""},
		{"until then handover", "disable jane@example.com until 2027-01-15 handover 42 sabbatical",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{jane}, Until: "2027-01-15",
				Successor: &access.TargetRef{Kind: access.ByID, ID: 42, Raw: "42"}, Reason: "sabbatical"}, ""},
		{"successor by mention", "disable jane@example.com handover <@U9|Bob> archive",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{jane},
				Successor: &access.TargetRef{Kind: access.ByChatUser, ChatUser: "U9", Raw: "@Bob"}, Archive: true}, ""},
		{"archive without handover is the reason", "disable jane@example.com archive everything",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{jane}, Reason: "archive everything"}, ""},
		{"enable keeps handover as its reason", "enable jane@example.com handover done",
			Command{Verb: VerbEnable, Targets: []access.TargetRef{jane}, Reason: "handover done"}, ""},
		{"handover needs a user", "disable jane@example.com handover of duties", Command{}, "`handover` needs the user who takes over"},
		{"handover at the end", "disable jane@example.com handover", Command{}, "`handover` needs the user who takes over"},
		{"bad successor", "disable jane@example.com handover bob@@example.com x", Command{}, "not a valid email"},
		{"until after handover", "disable jane@example.com handover bob@example.com until 2027-01-15 leave", Command{}, "before `handover`"},
		{"orphans", "orphans", Command{Verb: VerbOrphans}, ""},
		{"orphans takes nothing", "orphans jane@example.com", Command{}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.text)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("command mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// cardText renders the card's blocks as the text a reader sees.
func cardBlocksText(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	checkLimits(t, blocks)
	var b strings.Builder
	for _, bl := range blocks {
		if s, ok := bl.(*slack.SectionBlock); ok {
			if s.Text != nil {
				b.WriteString(s.Text.Text + "\n")
			}
			for _, f := range s.Fields {
				b.WriteString(f.Text + "\n")
			}
		}
	}
	return b.String()
}

func janeWithItems() approval.Request {
	r := request(1)
	r.Targets[0].Email = "jane@example.com"
	r.Lookup = &approval.Lookup{At: time.Now(), Version: "v0.61.0", RunStatus: true, MoveAlerts: true, ArchiveAlerts: true}
	r.Targets[0].Consequences = &approval.Consequences{Subscriptions: 2, Alerts: 1, Failing: 1, CollectionItems: 12, Items: []approval.Item{
		{Kind: approval.Subscription, ID: 1, Name: "Daily <!channel> ops", DashboardID: 8, SlackChannels: []string{"#ops"}},
		{Kind: approval.Subscription, ID: 2, Name: "Weekly sales", DashboardID: 7, Recipients: 2, SlackChannels: []string{"#sales"}},
		{Kind: approval.Alert, ID: 3, Name: "Revenue drop", CardID: 12, Recipients: 1, Failing: true, FailedWith: "permission denied"},
	}}
	return r
}

func TestCardShowsConsequences(t *testing.T) {
	t.Parallel()
	v := testView(Config{MetabaseURL: "https://mb.example.com/"})
	text := cardBlocksText(t, v.renderCard(janeWithItems()))
	for _, want := range []string{
		"What jane@example.com leaves running in Metabase:* 2 subscriptions and 1 alert (1 failing) · 12 items in their personal collection",
		"• Subscription <https://mb.example.com/dashboard/8|Daily &lt;!channel&gt; ops> · #ops\n",
		"• Subscription <https://mb.example.com/dashboard/7|Weekly sales> · 2 recipients · #sales",
		"• Alert <https://mb.example.com/question/12|Revenue drop> · 1 recipient · *last run failed*: permission denied",
		"full list, with links, is in the thread",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the card lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "<!channel>") {
		t.Errorf("an item name pings the channel:\n%s", text)
	}
	thread := v.threadMessages(access.Notice{Kind: access.ToThread, Event: &access.Event{Type: access.Requested, Request: janeWithItems()}})
	if len(thread) != 1 || !strings.Contains(thread[0].text, "*jane@example.com* created 2 subscriptions and 1 alert") ||
		!strings.Contains(thread[0].text, "question/12|Revenue drop") {
		t.Errorf("the thread list is %+v", thread)
	}
}

func TestCardShowsNothingExtraForNothing(t *testing.T) {
	t.Parallel()
	v := testView(Config{MetabaseURL: "https://mb.example.com"})
	r := request(1)
	plainCard := cardBlocksText(t, v.renderCard(r))
	r.Lookup = &approval.Lookup{At: time.Now(), MoveAlerts: true}
	r.Targets[0].Consequences = &approval.Consequences{}
	if got := cardBlocksText(t, v.renderCard(r)); got != plainCard {
		t.Errorf("a user with nothing running changed the card:\n%s\nwant:\n%s", got, plainCard)
	}
	if thread := v.threadMessages(access.Notice{Kind: access.ToThread, Event: &access.Event{Type: access.Requested, Request: r}}); len(thread) != 0 {
		t.Errorf("a user with nothing running got thread replies: %+v", thread)
	}
	r.Lookup.Error = "Metabase did not answer in time"
	if got := cardBlocksText(t, v.renderCard(r)); !strings.Contains(got, "could not list the subscriptions and alerts they leave running: Metabase did not answer in time") {
		t.Errorf("a failed lookup is not on the card:\n%s", got)
	}
}

func TestCardShowsHandover(t *testing.T) {
	t.Parallel()
	v := testView(Config{})
	tests := []struct {
		name    string
		lookup  approval.Lookup
		archive bool
		want    []string
		not     []string
	}{
		{"newest", approval.Lookup{Version: "v0.61.0", MoveAlerts: true, ArchiveAlerts: true}, false,
			[]string{"Hand-over to Bob (bob@example.com)*: their alerts move to bob@example.com", "they will be listed",
				"Moved alerts run with bob@example.com's permissions"}, []string{"cannot move"}},
		{"newest archive", approval.Lookup{Version: "v0.61.0", MoveAlerts: true, ArchiveAlerts: true}, true,
			[]string{"Subscriptions cannot change creator in any Metabase; they will be archived", "Moved alerts run with"}, nil},
		{"0.56", approval.Lookup{Version: "v0.56.0"}, false,
			[]string{"This Metabase (v0.56.0) cannot move alerts; they will be listed."}, []string{"Moved alerts run with"}},
		{"0.56 archive, an old record", approval.Lookup{Version: "v0.56.0"}, true,
			[]string{"This Metabase (v0.56.0) cannot move or archive alerts; they will be listed."}, []string{"emails each recipient"}},
		{"0.56 archive", approval.Lookup{Version: "v0.56.0", ArchiveAlerts: true, ArchiveAlertsEmails: true}, true,
			[]string{"This Metabase (v0.56.0) cannot move alerts; they will be archived.",
				"Metabase emails each recipient of an archived alert that they were removed from it."}, nil},
		{"0.56 list", approval.Lookup{Version: "v0.56.0", ArchiveAlerts: true, ArchiveAlertsEmails: true}, false,
			[]string{"cannot move alerts; they will be listed."}, []string{"emails each recipient"}},
		{"newest archive, alerts move", approval.Lookup{Version: "v0.61.0", MoveAlerts: true, ArchiveAlerts: true, ArchiveAlertsEmails: true}, true,
			nil, []string{"emails each recipient"}},
		{"0.53 archive", approval.Lookup{Version: "v0.53.0", ArchiveAlerts: true}, true,
			[]string{"This Metabase (v0.53.0) cannot move alerts; they will be archived."}, []string{"disables the account only"}},
		{"not read", approval.Lookup{Error: "Metabase did not answer"}, true,
			[]string{"could not be read, so approving disables the account only"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := janeWithItems()
			r.Lookup = &tt.lookup
			r.Handover = &approval.Handover{SuccessorID: 9, SuccessorEmail: "bob@example.com", SuccessorName: "Bob", Archive: tt.archive}
			text := cardBlocksText(t, v.renderCard(r))
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("the card lacks %q:\n%s", w, text)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(text, n) {
					t.Errorf("the card says %q:\n%s", n, text)
				}
			}
		})
	}
}

func TestHandoverThreadAndAudit(t *testing.T) {
	t.Parallel()
	v := testView(Config{MetabaseURL: "https://mb.example.com", AuditChannel: "CAUDIT"})
	r := janeWithItems()
	r.State = approval.Succeeded
	r.Handover = &approval.Handover{SuccessorID: 9, SuccessorEmail: "bob@example.com"}
	r.Targets[0].Result = approval.Result{Outcome: approval.Done}
	items := r.Targets[0].Consequences.Items
	r.Targets[0].HandedOver = &approval.HandoverResult{UserDone: true, Items: []approval.ItemResult{
		{Item: items[0], Outcome: approval.ItemLeft, Message: "left in place: subscriptions cannot change creator"},
		{Item: items[1], Outcome: approval.ItemArchived},
		{Item: items[2], Outcome: approval.ItemMoved, Message: "to bob@example.com"},
	}}
	e := &access.Event{Type: access.Finished, Request: r}
	var all []string
	for _, m := range v.threadMessages(access.Notice{Kind: access.ToThread, Event: e}) {
		all = append(all, m.text)
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{
		"jane@example.com: disabled",
		"• Subscription <https://mb.example.com/dashboard/8|Daily &lt;!channel&gt; ops>: left in place: subscriptions cannot change creator",
		"• Subscription <https://mb.example.com/dashboard/7|Weekly sales>: archived",
		"• Alert <https://mb.example.com/question/12|Revenue drop>: moved to bob@example.com",
		"Hand-over: moved 1, archived 1, left in place 1, failed 0.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the thread lacks %q:\n%s", want, text)
		}
	}
	audit := v.auditText(access.Notice{Kind: access.ToAudit, Event: e})
	if !strings.Contains(audit, "hand-over: moved 1, archived 1, left 1, failed 0") {
		t.Errorf("the audit line does not count the hand-over: %s", audit)
	}
}

// A bulk request of many users with many items each posts a bounded thread.
func TestThreadListsAreBounded(t *testing.T) {
	t.Parallel()
	v := testView(Config{MetabaseURL: "https://mb.example.com"})
	r := request(100)
	r.Lookup = &approval.Lookup{RunStatus: true}
	r.Handover = &approval.Handover{SuccessorID: 1, SuccessorEmail: "bob@example.com"}
	for i := range r.Targets {
		c := &approval.Consequences{Subscriptions: 20}
		h := &approval.HandoverResult{}
		for j := range 20 {
			it := approval.Item{Kind: approval.Subscription, ID: i*100 + j, Name: "A subscription with a long enough name", DashboardID: j + 1}
			c.Items = append(c.Items, it)
			h.Items = append(h.Items, approval.ItemResult{Item: it, Outcome: approval.ItemLeft, Message: "left in place"})
		}
		r.Targets[i].Consequences, r.Targets[i].HandedOver = c, h
	}
	for _, e := range []access.EventType{access.Requested, access.Finished} {
		msgs := v.threadMessages(access.Notice{Kind: access.ToThread, Event: &access.Event{Type: e, Request: r}})
		items := 0
		for _, m := range msgs {
			items += strings.Count(m.text, "• Subscription")
		}
		if items != maxThreadItems || len(msgs) > 60 {
			t.Errorf("%s: %d item lines in %d replies, want %d lines", e, items, len(msgs), maxThreadItems)
		}
	}
}
