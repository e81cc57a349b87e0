package slacktest

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestBotScopesComeFromTheManifest(t *testing.T) {
	path, err := FindManifest()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadManifestScopes(path)
	if err != nil {
		t.Fatal(err)
	}
	fs := New(t)
	if got := fs.BotScopes(); !slices.Equal(got, want) {
		t.Errorf("BotScopes() = %v, want the manifest's %v", got, want)
	}
	// auth.test tells the app its scopes in a header.
	resp, err := http.PostForm(fs.APIURL()+"auth.test", url.Values{"token": {"xoxb-test"}})
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ OK bool }
	if err := decodeJSON(resp, &body); err != nil || !body.OK {
		t.Fatalf("auth.test = %+v, %v", body, err)
	}
	if got := resp.Header.Get("X-OAuth-Scopes"); got != strings.Join(want, ",") {
		t.Errorf("X-OAuth-Scopes = %q, want %q", got, strings.Join(want, ","))
	}
}

func TestMethodsNeedTheirScopes(t *testing.T) {
	fs := New(t, Options{BotScopes: []string{"commands", "users:read"}})
	fs.AddChannel("C1", "ops", true)
	fs.AddChannel("G1", "secret", true)
	fs.AddUser(User{ID: "U1", Name: "alice", Email: "alice@example.com"})
	fs.SetUserGroup("S1", "U1")
	call := func(method string, v url.Values) map[string]any {
		t.Helper()
		v.Set("token", "xoxb-test")
		resp, err := http.PostForm(fs.APIURL()+method, v)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := decodeJSON(resp, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		method string
		args   url.Values
		needed string
	}{
		{"chat.postMessage", url.Values{"channel": {"C1"}, "text": {"hi"}}, "chat:write"},
		{"chat.update", url.Values{"channel": {"C1"}, "ts": {"1.000001"}, "text": {"hi"}}, "chat:write"},
		{"chat.postEphemeral", url.Values{"channel": {"C1"}, "user": {"U1"}, "text": {"hi"}}, "chat:write"},
		{"chat.delete", url.Values{"channel": {"C1"}, "ts": {"1.000001"}}, "chat:write"},
		{"usergroups.users.list", url.Values{"usergroup": {"S1"}}, "usergroups:read"},
		{"users.lookupByEmail", url.Values{"email": {"alice@example.com"}}, "users:read.email"},
		{"conversations.info", url.Values{"channel": {"C1"}}, "channels:read"},
		{"conversations.info", url.Values{"channel": {"G1"}}, "groups:read"},
		{"conversations.join", url.Values{"channel": {"C1"}}, "channels:join"},
	}
	for _, tt := range tests {
		got := call(tt.method, tt.args)
		if got["ok"] != false || got["error"] != "missing_scope" || got["needed"] != tt.needed || got["provided"] != "commands,users:read" {
			t.Errorf("%s %v = %v, want missing_scope needing %s", tt.method, tt.args, got, tt.needed)
		}
	}
	// users:read alone reads a profile, but not its email.
	got := call("users.info", url.Values{"user": {"U1"}})
	user, _ := got["user"].(map[string]any)
	profile, _ := user["profile"].(map[string]any)
	if got["ok"] != true || profile == nil || profile["email"] != nil {
		t.Errorf("users.info without users:read.email = %v, want a profile without email", got)
	}
	// auth.test needs no scope.
	if got := call("auth.test", url.Values{}); got["ok"] != true {
		t.Errorf("auth.test = %v", got)
	}
}

func TestAppTokenNeedsConnectionsWrite(t *testing.T) {
	fs := New(t, Options{AppScopes: []string{"authorizations:read"}})
	api := slack.New("xoxb-test", slack.OptionAppLevelToken("xapp-test"), slack.OptionAPIURL(fs.APIURL()))
	_, _, err := api.StartSocketModeContext(testCtx(t))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "missing_scope" || se.Needed != "connections:write" || se.Provided != "authorizations:read" {
		t.Fatalf("apps.connections.open without connections:write: err = %#v, want missing_scope", err)
	}
}
