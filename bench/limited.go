package main

import (
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// limited is a workload under Slack's real rate tiers: n requests, each approved as soon as its
// card appears by one of the approvers, measured against the least time the tiers allow for the
// calls the bot had to make.
type limited struct {
	n, approvers int
	complete     bool
	// cards, outcomes and audits are what arrived; dupOutcomes counts cards with more than one
	// outcome reply (a repeated message).
	cards, outcomes, audits, dupOutcomes int
	// clicksWithin is how long the approvers took to click every card.
	clicksWithin time.Duration
	// elapsed runs from the first command to the last audit line.
	elapsed time.Duration
	// floor is the least time the tiers allow for the Slack calls made, and what imposes it.
	floor    time.Duration
	floorWhy string
	refused  int
}

// measureLimited runs n requests through the bot with the fake's rate limits on, approved by
// `approvers` people as the cards appear.
func measureLimited(botBin string, n, approvers int) limited {
	res := limited{n: n, approvers: approvers}
	ids := make([]string, approvers)
	for i := range ids {
		ids[i] = fmt.Sprintf("UAPP%02d", i)
	}
	f := newFakesLimited("limited", true, ids...)
	defer f.close()
	emails := emailsOf(addUsers(f.mb, "limited", n))
	f.start(botBin, f.botEnv(""))
	ctx, cancel := bounded(8 * time.Minute)
	defer cancel()

	start := time.Now()
	go func() {
		for _, e := range emails {
			id, err := f.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel, Text: "disable " + e + " rate-limited run"})
			if err != nil {
				log.Printf("command: %v", err)
				continue
			}
			if _, err := f.slack.WaitAck(ctx, id); err != nil {
				log.Printf("command ack: %v", err)
			}
		}
	}()
	cards := make(chan slacktest.Message, n)
	var clicks sync.WaitGroup
	var mu sync.Mutex
	var lastClick time.Time
	for _, a := range ids {
		clicks.Go(func() {
			for c := range cards {
				id, err := f.slack.Click(ctx, slacktest.Click{UserID: a, ChannelID: opsChannel, MessageTS: c.TS, ActionID: "mb_approve"})
				if err != nil {
					log.Printf("click: %v", err)
					continue
				}
				if _, err := f.slack.WaitAck(ctx, id); err != nil {
					log.Printf("click ack: %v", err)
				}
				mu.Lock()
				lastClick = time.Now()
				mu.Unlock()
			}
		})
	}
	seenCard := map[string]bool{}
	outcomes := map[string]int{}
	audits := 0
	res.complete = watch(f.slack, 7*time.Minute, func(m slacktest.Message, _ time.Time) {
		switch {
		case isCard(m) && !seenCard[m.TS]:
			seenCard[m.TS] = true
			cards <- m
			if len(seenCard) == n {
				close(cards)
			}
		case isOutcome(m):
			outcomes[m.ThreadTS]++
		case m.Channel == auditChannel && strings.Contains(m.Text, "*executed*"):
			audits++
		}
	}, func() bool { return audits >= n && len(outcomes) >= n })
	res.elapsed = time.Since(start)
	if len(seenCard) < n {
		close(cards)
	}
	clicks.Wait()
	res.cards, res.outcomes, res.audits = len(seenCard), len(outcomes), audits
	for _, k := range outcomes {
		if k > 1 {
			res.dupOutcomes++
		}
	}
	mu.Lock()
	res.clicksWithin = lastClick.Sub(start)
	mu.Unlock()
	res.floor, res.floorWhy = tierFloor(f.slack)
	for _, m := range []string{"chat.postMessage", "chat.update", "usergroups.users.list", "users.info", "chat.postEphemeral"} {
		res.refused += f.slack.Refused(m)
	}
	return res
}

// tierFloor is the least time Slack's tiers allow for the calls fs accepted: for each limit, the
// calls beyond its burst at its rate. The slowest limit is the floor.
func tierFloor(fs *slacktest.Server) (time.Duration, string) {
	var floor time.Duration
	why := "none"
	consider := func(name string, calls int, perMinute, burst float64) {
		if extra := float64(calls) - burst; extra > 0 {
			if d := time.Duration(extra / perMinute * float64(time.Minute)); d > floor {
				floor, why = d, fmt.Sprintf("%s: %d calls, %.0f a minute after a burst of %.0f", name, calls, perMinute, burst)
			}
		}
	}
	perChannel := map[string]int{}
	for _, m := range fs.Messages() {
		perChannel[m.Channel]++
	}
	cpm, cburst := slacktest.PostMessageChannelLimit()
	for ch, k := range perChannel {
		consider("chat.postMessage in "+ch, k, cpm, cburst)
	}
	for _, method := range []string{"chat.update", "usergroups.users.list", "users.info", "chat.postEphemeral", "views.open"} {
		if pm, burst, ok := slacktest.RateLimit(method); ok {
			consider(method, fs.Calls(method)-fs.Refused(method), pm, burst)
		}
	}
	return floor, why
}

// ratio is the run's time over the floor the tiers impose (0 when there is no floor).
func (l limited) ratio() float64 {
	if l.floor <= 0 {
		return 0
	}
	return float64(l.elapsed) / float64(l.floor)
}
