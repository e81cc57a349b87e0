package slacktest

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// TestGetPermalink: chat.getPermalink answers the documented link form for a channel message and
// a thread reply, and Slack's errors for an unknown channel or message
// (https://api.slack.com/methods/chat.getPermalink).
func TestGetPermalink(t *testing.T) {
	fs := New(t)
	fs.AddChannel("C1", "ops", true)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	ctx := testCtx(t)
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("card", false))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C1", Ts: ts})
	if want := "https://fake.slack.com/archives/C1/p" + strings.Replace(ts, ".", "", 1); err != nil || link != want {
		t.Errorf("permalink = %q, %v; want %q", link, err, want)
	}
	link, err = api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C1", Ts: reply})
	if want := "https://fake.slack.com/archives/C1/p" + strings.Replace(reply, ".", "", 1) + "?thread_ts=" + ts + "&cid=C1"; err != nil || link != want {
		t.Errorf("thread reply permalink = %q, %v; want %q", link, err, want)
	}
	for _, tc := range []struct{ channel, ts, want string }{
		{"CNONE", ts, "channel_not_found"},
		{"C1", "1.000001", "message_not_found"},
	} {
		if _, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: tc.channel, Ts: tc.ts}); err == nil || err.Error() != tc.want {
			t.Errorf("permalink of %s/%s: %v, want %s", tc.channel, tc.ts, err, tc.want)
		}
	}
}
