package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// limitedSlack posts messages, refusing the calls whose numbers are in refuse with err.
type limitedSlack struct {
	slackAPI
	calls  int
	refuse map[int]error
	posted []string
}

func (s *limitedSlack) PostMessageContext(_ context.Context, _ string, opts ...slack.MsgOption) (string, string, error) {
	s.calls++
	if err := s.refuse[s.calls]; err != nil {
		return "", "", err
	}
	_, values, err := slack.UnsafeApplyMsgOptions("xoxb-test", "C1", "https://slack.invalid/api/", opts...)
	if err != nil {
		return "", "", err
	}
	s.posted = append(s.posted, values.Get("text"))
	return "C1", fmt.Sprintf("1.%06d", s.calls), nil
}

// manyTargets is a finished bulk request whose outcome takes several thread messages.
func manyTargets(n int) approval.Request {
	r := approval.Request{ID: "MB-TEST", Action: approval.Disable, State: approval.Succeeded, ChannelID: "C1", MessageTS: "1.000000"}
	for i := range n {
		r.Targets = append(r.Targets, approval.Target{UserID: i + 2, Email: fmt.Sprintf("user%03d-%s@example.com", i, strings.Repeat("x", 40)),
			Result: approval.Result{Outcome: approval.Done}})
	}
	return r
}

func TestRateLimitMidThreadWaitsInsteadOfRepeating(t *testing.T) {
	t.Parallel()
	r := manyTargets(100)
	no := access.Notice{Kind: access.ToThread, Event: &access.Event{Type: access.Finished, Request: r}, Request: r}
	parts := len((&view{}).threadMessages(no))
	if parts < 3 {
		t.Fatalf("the outcome takes %d messages; the test needs at least 3", parts)
	}
	for _, limit := range []error{&slack.RateLimitedError{RetryAfter: time.Millisecond}, slack.SlackErrorResponse{Err: "rate_limited"}} {
		api := &limitedSlack{refuse: map[int]error{2: limit}}
		if _, err := NewNotifier(Config{}, api).Tell(t.Context(), no); err != nil {
			t.Fatalf("%v: Tell = %v, want the notice delivered after the wait", limit, err)
		}
		if len(api.posted) != parts {
			t.Errorf("%v: %d messages posted, want each of the %d once", limit, len(api.posted), parts)
		}
	}
	// The first part refused: nothing was posted, so the notice is retried whole, later.
	api := &limitedSlack{refuse: map[int]error{1: slack.SlackErrorResponse{Err: "rate_limited"}}}
	_, err := NewNotifier(Config{}, api).Tell(t.Context(), no)
	var de *access.DeliveryError
	if !errors.As(err, &de) || de.Permanent || len(api.posted) != 0 {
		t.Fatalf("first part rate limited: err = %#v, posted %d; want a transient DeliveryError and nothing posted", err, len(api.posted))
	}
}

func TestRateLimitedIsNotPermanent(t *testing.T) {
	t.Parallel()
	for code, permanent := range map[string]bool{"rate_limited": false, "ratelimited": false, "not_in_channel": true, "missing_scope": true} {
		if got := permanentSlackError(slack.SlackErrorResponse{Err: code}); got != permanent {
			t.Errorf("permanentSlackError(%s) = %v, want %v", code, got, permanent)
		}
	}
}
