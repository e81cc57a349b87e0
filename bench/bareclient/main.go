// Command bareclient is the baseline of the benchmarks: a bare slack-go Socket Mode client that
// acks every envelope at once and does nothing else. It reads SLACK_APP_TOKEN, SLACK_BOT_TOKEN
// and SLACK_API_URL like the bot, and stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	api := slack.New(os.Getenv("SLACK_BOT_TOKEN"), slack.OptionAppLevelToken(os.Getenv("SLACK_APP_TOKEN")),
		slack.OptionAPIURL(os.Getenv("SLACK_API_URL")))
	sm := socketmode.New(api)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request != nil {
					_ = sm.Ack(*evt.Request)
				}
			}
		}
	}()
	if err := sm.RunContext(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "bareclient:", err)
		os.Exit(1)
	}
}
