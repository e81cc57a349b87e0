package main

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the benchmark's own schema

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// load is one run of the load test.
type load struct {
	version                        string // "after" (this tree) or "before" (the -before commit)
	backend                        string
	n, requesters                  int
	cmdAcks, clickAcks             int
	cards, outcomes, dupOutcomes   int
	deletes, audits                int
	createDur, approveDur          time.Duration
	cmdAck, clickAck, toCard, toOK dist
	complete                       bool
	// commits is the bot's commits from the first command until every outcome was sent and
	// recorded, per request (its creation and its approval); negative when not counted.
	commits float64
}

// measureLoad sends n disable commands from requesters concurrent requesters, waits for the
// cards, approves them all with as many concurrent approvers, and checks that every command
// was acked, Metabase got exactly n DELETEs and every outcome was posted once.
func measureLoad(botBin, version, backend, dbURL string, n, requesters int) load {
	res := load{version: version, backend: backend, n: n, requesters: requesters, commits: -1}
	approvers := make([]string, requesters)
	for i := range approvers {
		approvers[i] = fmt.Sprintf("UAPP%02d", i)
	}
	f := newFakes("load-"+backend+"-"+version, approvers...)
	defer f.close()
	emails := emailsOf(addUsers(f.mb, "load", n))
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(f.tb.TempDir(), "bot.db")
	}
	addr := freeAddr()
	f.start(botBin, f.botEnv(dbURL, "HTTP_ADDR="+addr))
	st := openStore(dbURL)
	defer st.Close()
	first, err := commits(addr)
	counted := err == nil
	ctx, cancel := bounded(4 * time.Minute)
	defer cancel()

	var mu sync.Mutex
	sentAt := map[string]time.Time{} // email -> command sent
	var cmdAcks, clickAcks []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	per := n / requesters
	for r := range requesters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("UREQ%02d", r)
			for i := r * per; i < (r+1)*per; i++ {
				t0 := time.Now()
				id, err := f.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: user, ChannelID: opsChannel, Text: "disable " + emails[i] + " load test"})
				if err != nil {
					log.Printf("command: %v", err)
					continue
				}
				a, err := f.slack.WaitAck(ctx, id)
				if err != nil {
					log.Printf("command ack: %v", err)
					continue
				}
				mu.Lock()
				sentAt[emails[i]] = t0
				cmdAcks = append(cmdAcks, a.Latency)
				mu.Unlock()
			}
		}()
	}

	// Cards, as they arrive, go to the approvers at once: creation and approval overlap, as they
	// would with people clicking.
	cardCh := make(chan slacktest.Message, n)
	var toCard []time.Duration
	var lastCard time.Time
	cardSeen := map[string]time.Time{}
	okSeen := map[string]time.Time{}
	clickedAt := map[string]time.Time{}
	outcomes := map[string]int{}
	var aw sync.WaitGroup
	for _, a := range approvers {
		aw.Add(1)
		go func() {
			defer aw.Done()
			for c := range cardCh {
				t0 := time.Now()
				id, err := f.slack.Click(ctx, slacktest.Click{UserID: a, ChannelID: opsChannel, MessageTS: c.TS, ActionID: "mb_approve"})
				if err != nil {
					log.Printf("click: %v", err)
					continue
				}
				mu.Lock()
				clickedAt[c.TS] = t0
				mu.Unlock()
				ack, err := f.slack.WaitAck(ctx, id)
				if err != nil {
					log.Printf("click ack: %v", err)
					continue
				}
				mu.Lock()
				clickAcks = append(clickAcks, ack.Latency)
				mu.Unlock()
			}
		}()
	}
	var firstClick time.Time
	res.complete = watch(f.slack, 3*time.Minute, func(m slacktest.Message, at time.Time) {
		switch {
		case isCard(m):
			if _, dup := cardSeen[m.TS]; dup {
				return
			}
			cardSeen[m.TS] = at
			lastCard = at
			email := strings.Fields(strings.TrimPrefix(m.Text, "Metabase disable request "))[2]
			mu.Lock()
			if t0, ok := sentAt[email]; ok {
				toCard = append(toCard, at.Sub(t0))
			}
			mu.Unlock()
			if firstClick.IsZero() {
				firstClick = at
			}
			cardCh <- m
			if len(cardSeen) == n {
				close(cardCh)
			}
		case isOutcome(m):
			outcomes[m.ThreadTS]++
			if _, ok := okSeen[m.ThreadTS]; !ok {
				okSeen[m.ThreadTS] = at
			}
		}
	}, func() bool { return len(okSeen) >= n })
	wg.Wait()
	if len(cardSeen) < n {
		close(cardCh)
	}
	aw.Wait()
	end := time.Now()
	// The audit line of each outcome comes last; wait for them (bounded) before counting.
	audits := func() int {
		c := 0
		for _, m := range f.slack.Messages() {
			if m.Channel == auditChannel && strings.Contains(m.Text, "*executed*") {
				c++
			}
		}
		return c
	}
	deadline := time.Now().Add(time.Minute)
	for audits() < len(okSeen) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if counted && drained(st, time.Minute) {
		if last, err := settledCommits(addr); err == nil {
			res.commits = float64(last-first) / float64(n)
		}
	}

	var toOK []time.Duration
	mu.Lock()
	for ts, at := range okSeen {
		if t0, ok := clickedAt[ts]; ok {
			toOK = append(toOK, at.Sub(t0))
		}
	}
	mu.Unlock()
	for _, c := range outcomes {
		if c > 1 {
			res.dupOutcomes++
		}
	}
	res.cmdAcks, res.clickAcks = len(cmdAcks), len(clickAcks)
	res.cards, res.outcomes = len(cardSeen), len(okSeen)
	res.deletes = f.mb.Count("DELETE", "/api/user/")
	res.audits = audits()
	res.createDur = lastCard.Sub(start)
	res.approveDur = end.Sub(firstClick)
	res.cmdAck, res.clickAck, res.toCard, res.toOK = summarize(cmdAcks), summarize(clickAcks), summarize(toCard), summarize(toOK)
	return res
}

// pgSchema creates a fresh schema for one run and returns a URL that uses it, and a function
// that drops it.
func pgSchema(base string) (string, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := storetest.Schema(ctx, base, "bench_")
	if err != nil {
		log.Fatalf("create schema: %v", err)
	}
	return u, func() {
		if err := drop(); err != nil {
			log.Printf("drop schema: %v", err)
		}
	}
}

// ---- bulk ----

type bulk struct {
	n, concurrency int
	latency        time.Duration
	took, bound    time.Duration
	deletes        int
	ok             bool
	how            string
}

// measureBulk disables n inactive users in one request, built by the inactive report
// (`/metabase inactive 90`, its button, the reason form), with every DELETE taking latency.
func measureBulk(botBin string, n, concurrency int, latency time.Duration) bulk {
	res := bulk{n: n, concurrency: concurrency, latency: latency,
		bound: time.Duration(n/concurrency) * latency,
		how:   "one request from the inactive report: `/metabase inactive 90`, its button, the reason form"}
	f := newFakes("bulk")
	defer f.close()
	addUsers(f.mb, "idle", n, time.Now().AddDate(0, 0, -200))
	f.start(botBin, f.botEnv("", fmt.Sprintf("BULK_CONCURRENCY=%d", concurrency)))
	ctx, cancel := bounded(3 * time.Minute)
	defer cancel()
	id, err := f.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel, Text: "inactive 90"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.slack.WaitAck(ctx, id); err != nil {
		log.Fatal(err)
	}
	report, err := f.slack.WaitEphemeral(ctx, func(m slacktest.Message) bool { return m.HasAction("mb_inactive_request") })
	if err != nil {
		log.Fatalf("no inactive report with a button: %v", err)
	}
	if _, err := f.slack.Click(ctx, slacktest.Click{UserID: requester, ChannelID: report.Channel, MessageTS: report.TS, ActionID: "mb_inactive_request"}); err != nil {
		log.Fatal(err)
	}
	view, err := f.slack.WaitView(ctx, func(v slacktest.View) bool { return v.CallbackID == "mb_inactive_form" })
	if err != nil {
		log.Fatalf("no clean-up form: %v", err)
	}
	if _, err := f.slack.SubmitView(ctx, slacktest.ViewSubmission{UserID: requester, ViewID: view.ID,
		Values: map[string]map[string]slacktest.InputValue{"mb_form_reason": {"reason": {Value: "licence clean-up"}}}}); err != nil {
		log.Fatal(err)
	}
	card, err := f.slack.WaitMessage(ctx, func(m slacktest.Message) bool { return isCard(m) && m.HasAction("mb_approve") })
	if err != nil {
		log.Fatalf("no bulk card: %v", err)
	}
	f.mb.SetLatency("DELETE", "/api/user/:id", latency)
	start := time.Now()
	if _, err := f.slack.Click(ctx, slacktest.Click{UserID: approver, ChannelID: opsChannel, MessageTS: card.TS, ActionID: "mb_approve"}); err != nil {
		log.Fatal(err)
	}
	if _, err := f.slack.WaitMessage(ctx, func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && (strings.Contains(m.Text, "Done.") || strings.Contains(m.Text, "Partly done") || strings.Contains(m.Text, "Failed."))
	}); err != nil {
		log.Fatalf("no bulk outcome: %v", err)
	}
	res.took = time.Since(start)
	res.deletes = f.mb.Count("DELETE", "/api/user/")
	res.ok = res.deletes == n
	return res
}
