package slacktest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestTier2AllowsABurstThenAsksToWait(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	fs.rateClock = frozenClock()
	fs.SetUserGroup("S1", "U1")
	api := newAPI(fs, "xoxb-test", "xapp-test")
	for i := range tier2 {
		if _, err := api.GetUserGroupMembersContext(ctx, "S1"); err != nil {
			t.Fatalf("call %d of the burst: %v", i+1, err)
		}
	}
	_, err := api.GetUserGroupMembersContext(ctx, "S1")
	var rl *slack.RateLimitedError
	// One call refills every 3 s at 20 a minute.
	if !errors.As(err, &rl) || rl.RetryAfter < time.Second || rl.RetryAfter > 3*time.Second {
		t.Fatalf("call %d: err = %v, want HTTP 429 with Retry-After of at most 3s", tier2+1, err)
	}
	if got := fs.Refused("usergroups.users.list"); got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}
	// Another method has its own budget.
	if _, err := api.GetUserInfoContext(ctx, "UBOT"); err != nil {
		t.Errorf("users.info after usergroups.users.list ran out: %v", err)
	}
}

func TestPostMessageIsLimitedPerChannel(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	fs.rateClock = frozenClock()
	fs.AddChannel("C1", "ops", true)
	fs.AddChannel("C2", "audit", true)
	api := newAPI(fs, "xoxb-test", "xapp-test")
	var err error
	n := 0
	for ; err == nil && n < 20; n++ {
		_, _, err = api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
	}
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second || n != int(postPerChannel.burst)+1 {
		t.Fatalf("post %d to one channel: err = %v, want the burst of %v then HTTP 429 after 1s", n, err, postPerChannel.burst)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("another channel: %v", err)
	}
}

func TestPostMessageWorkspaceLimitAnswersRateLimited(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	fs.rateClock = frozenClock()
	api := newAPI(fs, "xoxb-test", "xapp-test")
	var err error
	for i := 0; err == nil && i <= int(postPerWorkspace.burst); i++ {
		ch := fmt.Sprintf("C%d", i)
		fs.AddChannel(ch, ch, true)
		_, _, err = api.PostMessageContext(ctx, ch, slack.MsgOptionText("x", false))
	}
	if errString(err) != "rate_limited" {
		t.Fatalf("past the workspace's messages a minute: err = %v, want rate_limited", err)
	}
}

func TestRateLimitsCanBeLifted(t *testing.T) {
	ctx := testCtx(t)
	for _, o := range []Options{{NoRateLimits: true}, {LiftRateLimits: []string{"usergroups.users.list"}}} {
		fs := New(t, o)
		fs.SetUserGroup("S1", "U1")
		api := newAPI(fs, "xoxb-test", "xapp-test")
		for i := range 2 * tier2 {
			if _, err := api.GetUserGroupMembersContext(ctx, "S1"); err != nil {
				t.Fatalf("%+v: call %d: %v", o, i+1, err)
			}
		}
	}
}

// frozenClock stands still, so a test of a limit does not depend on how fast the machine runs the
// calls that reach it.
func frozenClock() func() time.Time {
	t := time.Now()
	return func() time.Time { return t }
}
