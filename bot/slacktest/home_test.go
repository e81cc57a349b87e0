package slacktest

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

func homeRequest(user string, blocks ...slack.Block) slack.PublishViewContextRequest {
	return slack.PublishViewContextRequest{UserID: user, View: slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}}
}

// TestViewsPublish: views.publish as its method page documents it
// (https://api.slack.com/methods/views.publish): one Home view per person whose id stays and
// whose hash changes, hash_conflict on a stale hash, view_too_large past 250 kB, at most 100
// blocks, invalid_arguments for an unknown user, and not_enabled while the app's Home tab is off.
func TestViewsPublish(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := testCtx(t)
	first, err := h.api.PublishViewContext(ctx, homeRequest("U2", approvalBlocks("MB-1")...))
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.api.PublishViewContext(ctx, homeRequest("U2", approvalBlocks("MB-2")...))
	if err != nil {
		t.Fatal(err)
	}
	if first.View.ID != second.View.ID || first.View.Hash == second.View.Hash || second.View.Type != slack.VTHomeTab {
		t.Errorf("republish: ids %s/%s hashes %s/%s type %s; want the same id, a new hash, type home",
			first.View.ID, second.View.ID, first.View.Hash, second.View.Hash, second.View.Type)
	}
	if v, _ := h.fs.Home("U2"); v.Publishes != 2 || !v.HasAction("decision", "approve") || !strings.Contains(v.Text(), "MB-2") {
		t.Errorf("Home of U2: %d publishes, %s", v.Publishes, v.Text())
	}
	stale := homeRequest("U2")
	stale.Hash = &first.View.Hash
	big := strings.Repeat("x", 2900)
	var large []slack.Block
	for range 99 {
		large = append(large, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, big, false, false), nil, nil))
	}
	var many []slack.Block
	for range 101 {
		many = append(many, slack.NewDividerBlock())
	}
	for _, tc := range []struct {
		name string
		req  slack.PublishViewContextRequest
		want string
	}{
		{"a stale hash", stale, "hash_conflict"},
		{"a view over 250 kB", homeRequest("U2", large...), "view_too_large"},
		{"101 blocks", homeRequest("U2", many...), "invalid_arguments"},
		{"an unknown user", homeRequest("UNOBODY"), "invalid_arguments"},
	} {
		if _, err := h.api.PublishViewContext(ctx, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %s", tc.name, err, tc.want)
		}
	}
	h.fs.SetHomeTab(false)
	if _, err := h.api.PublishViewContext(ctx, homeRequest("U3")); err == nil || err.Error() != "not_enabled" {
		t.Errorf("Home tab off: err %v, want not_enabled", err)
	}
}

// TestOpenHomeAndClick: app_home_opened arrives as an events_api envelope slack-go parses, with
// the view once one was published; a click on the Home carries the view as its container and no
// channel or response_url.
func TestOpenHomeAndClick(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := testCtx(t)
	h.next(ctx, t, socketmode.EventTypeConnected)
	if _, err := h.fs.OpenHome(ctx, "U2"); err != nil {
		t.Fatal(err)
	}
	evt := h.next(ctx, t, socketmode.EventTypeEventsAPI)
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	opened, ok2 := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || !ok2 || opened.User != "U2" || opened.Tab != "home" || opened.View != nil {
		t.Fatalf("app_home_opened: %#v", evt.Data)
	}
	pub, err := h.api.PublishViewContext(ctx, homeRequest("U2", approvalBlocks("MB-1")...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.fs.ClickHome(ctx, HomeClick{UserID: "U2", BlockID: "decision", ActionID: "approve"}); err != nil {
		t.Fatal(err)
	}
	cb, _ := h.next(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if cb.Container.Type != "view" || cb.Container.ViewID != pub.View.ID || cb.View.ID != pub.View.ID || cb.View.Type != slack.VTHomeTab ||
		cb.Channel.ID != "" || cb.ResponseURL != "" || cb.User.ID != "U2" || len(cb.ActionCallback.BlockActions) != 1 ||
		cb.ActionCallback.BlockActions[0].Value != "MB-1" {
		t.Errorf("Home click: %#v", cb)
	}
	if _, err := h.fs.ClickHome(ctx, HomeClick{UserID: "U3", ActionID: "approve"}); err == nil {
		t.Error("a click on a Home never published was sent")
	}
}

// TestOpenHomeNeedsTheSubscription: Slack sends app_home_opened only to an app subscribed to it.
func TestOpenHomeNeedsTheSubscription(t *testing.T) {
	t.Parallel()
	fs := New(t, Options{Manifest: &Manifest{HomeTab: true}})
	if _, err := fs.OpenHome(testCtx(t), "U2"); err == nil || !strings.Contains(err.Error(), "subscribe") {
		t.Errorf("err %v, want a refusal naming the subscription", err)
	}
}
