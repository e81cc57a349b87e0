package slacktest

import (
	"slices"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// The repository's manifest subscribes to user_change: without it Slack would never tell the bot
// of a deactivation, and a bot token cannot read its own subscriptions to check.
func TestManifestSubscribesToUserChange(t *testing.T) {
	path, err := FindManifest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(m.BotEvents, "user_change") {
		t.Fatalf("%s subscribes to bot events %v, want user_change among them", path, m.BotEvents)
	}
	scopes, err := ReadManifestScopes(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(scopes, eventScopes["user_change"]) {
		t.Fatalf("%s grants %v, but user_change needs %s", path, scopes, eventScopes["user_change"])
	}
}

// ChangeUser arrives as slack-go decodes a real user_change: an events_api envelope whose inner
// event is a *slackevents.UserChangeEvent, with deleted and updated; redelivered like any envelope.
func TestChangeUserSendsUserChange(t *testing.T) {
	ctx := testCtx(t)
	h := start(t, nil)
	h.fs.AddUser(User{ID: "U9", Name: "jane", Email: "jane@example.com"})
	id, err := h.fs.ChangeUser(ctx, User{ID: "U9", Name: "jane", Email: "jane@example.com", Deleted: true})
	if err != nil || id == "" {
		t.Fatalf("ChangeUser = %q, %v", id, err)
	}
	evt := h.next(ctx, t, socketmode.EventTypeEventsAPI)
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok {
		t.Fatalf("Data = %T, want slackevents.EventsAPIEvent", evt.Data)
	}
	uc, ok := ev.InnerEvent.Data.(*slackevents.UserChangeEvent)
	if !ok {
		t.Fatalf("inner event = %T, want *slackevents.UserChangeEvent", ev.InnerEvent.Data)
	}
	if ev.TeamID != "T1" || uc.User.ID != "U9" || !uc.User.Deleted || uc.User.Updated == 0 || evt.Request.EnvelopeID != id {
		t.Errorf("event = team %q, user %+v, envelope %q", ev.TeamID, uc.User, evt.Request.EnvelopeID)
	}
	if err := h.fs.Redeliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	again := h.next(ctx, t, socketmode.EventTypeEventsAPI)
	if again.Request.EnvelopeID != id || again.Request.RetryAttempt != 1 {
		t.Errorf("redelivery = %+v", again.Request)
	}
	// A later edit moves "updated" forward, as Slack's does.
	if _, err := h.fs.ChangeUser(ctx, User{ID: "U9", Name: "jane2", Email: "jane@example.com", Deleted: true}); err != nil {
		t.Fatal(err)
	}
	later := h.next(ctx, t, socketmode.EventTypeEventsAPI).Data.(slackevents.EventsAPIEvent).InnerEvent.Data.(*slackevents.UserChangeEvent)
	if later.User.Updated <= uc.User.Updated {
		t.Errorf("updated went from %d to %d", uc.User.Updated, later.User.Updated)
	}
}

// Slack sends an event only to an app subscribed to it whose token has the event's scope.
func TestChangeUserOnlyWhenSubscribed(t *testing.T) {
	ctx := testCtx(t)
	for name, o := range map[string]Options{
		"not subscribed":    {BotEvents: []string{}},
		"without the scope": {BotScopes: []string{"chat:write", "commands"}},
	} {
		t.Run(name, func(t *testing.T) {
			fs := New(t, o)
			id, err := fs.ChangeUser(ctx, User{ID: "U9", Deleted: true})
			if err != nil || id != "" {
				t.Fatalf("ChangeUser = %q, %v; want nothing sent", id, err)
			}
			u, err := newAPI(fs, "xoxb-test", "xapp-test").GetUserInfoContext(ctx, "U9")
			if err == nil && !u.Deleted {
				t.Errorf("the change itself was not made: %+v", u)
			}
		})
	}
}

// users.list pages by cursor with the limit asked, includes deactivated members, refuses a forged
// cursor, shows emails only with users:read.email, and needs users:read.
func TestUsersList(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	for _, u := range []User{
		{ID: "U1", Email: "a@example.com"}, {ID: "U2", Email: "b@example.com", Deleted: true},
		{ID: "U3", Email: "c@example.com"}, {ID: "U4", Email: "d@example.com", Deleted: true},
	} {
		fs.AddUser(u)
	}
	api := newAPI(fs, "xoxb-test", "xapp-test")
	p := api.GetUsersPaginated(slack.GetUsersOptionLimit(2))
	var ids, deleted, emails []string
	pages := 0
	for {
		var err error
		p, err = p.Next(ctx)
		if p.Done(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(p.Users) > 2 {
			t.Fatalf("page of %d members with limit 2", len(p.Users))
		}
		for _, u := range p.Users {
			ids = append(ids, u.ID)
			emails = append(emails, u.Profile.Email)
			if u.Deleted {
				deleted = append(deleted, u.ID)
			}
		}
	}
	if pages != 3 || !slices.Equal(ids, []string{"U1", "U2", "U3", "U4", "UBOT"}) || !slices.Equal(deleted, []string{"U2", "U4"}) {
		t.Errorf("pages %d, members %v, deleted %v", pages, ids, deleted)
	}
	if emails[1] != "b@example.com" {
		t.Errorf("emails %v: a deactivated member's email is listed with users:read.email", emails)
	}
	_, err := api.GetUsersPaginated(slack.GetUsersOptionCursor("Zm9yZ2Vk")).Next(ctx)
	if errString(err) != "invalid_cursor" {
		t.Errorf("forged cursor: %v, want invalid_cursor", err)
	}

	noEmail := New(t, Options{BotScopes: []string{"users:read"}})
	noEmail.AddUser(User{ID: "U1", Email: "a@example.com"})
	us, err := newAPI(noEmail, "xoxb-test", "xapp-test").GetUsersContext(ctx)
	if err != nil || len(us) != 2 || us[0].Profile.Email != "" {
		t.Errorf("without users:read.email: %+v, %v; want members without emails", us, err)
	}
	noScope := New(t, Options{BotScopes: []string{"chat:write"}})
	if _, err := newAPI(noScope, "xoxb-test", "xapp-test").GetUsersContext(ctx); errString(err) != "missing_scope" {
		t.Errorf("without users:read: %v, want missing_scope", err)
	}
}
