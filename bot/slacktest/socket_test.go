package slacktest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConnectionsOpenNeedsBearer: apps.connections.open takes the
// xapp token only in the Authorization header; "passing it as a POST
// parameter will result in an error" (https://api.slack.com/methods/apps.connections.open;
// docs/slack.md#socket-mode).
func TestConnectionsOpenNeedsBearer(t *testing.T) {
	fs := New(t)
	resp, err := http.Post(fs.APIURL()+"apps.connections.open", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"token": {"xapp-test"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["ok"] != false || got["error"] != "not_authed" {
		t.Errorf("apps.connections.open with the token as a form field = %v, want ok:false not_authed", got)
	}
	if fs.Connections() != 0 {
		t.Errorf("Connections() = %d", fs.Connections())
	}
}
