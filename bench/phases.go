package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// dist summarises durations.
type dist struct {
	n             int
	p50, p99, max time.Duration
}

func summarize(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(float64(len(s))*p))] }
	return dist{n: len(s), p50: q(0.50), p99: q(0.99), max: s[len(s)-1]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// ---- resources ----

type resources struct {
	botSize, bareSize                  int64
	botStart, bareStart                []time.Duration
	botRSS, botPeak, bareRSS, barePeak int
}

// measureResources takes binary sizes, start-to-connected times (3 starts each) and the RSS of
// each program connected and idle for 5 s.
func measureResources(botBin, bareBin string) resources {
	var r resources
	if st, err := os.Stat(botBin); err == nil {
		r.botSize = st.Size()
	}
	if st, err := os.Stat(bareBin); err == nil {
		r.bareSize = st.Size()
	}
	for i := range 3 {
		f := newFakes("resources")
		p, d := f.start(botBin, f.botEnv(""))
		r.botStart = append(r.botStart, d)
		if i == 0 {
			time.Sleep(5 * time.Second) // idle on purpose: this is the idle RSS
			r.botRSS, r.botPeak = p.rssKB()
		}
		q, d := f.start(bareBin, f.botEnv(""))
		r.bareStart = append(r.bareStart, d)
		if i == 0 {
			time.Sleep(5 * time.Second)
			r.bareRSS, r.barePeak = q.rssKB()
		}
		f.close()
	}
	return r
}

// ---- ack latency ----

type acks struct {
	n                                    int
	bareCmd, bareClick, botCmd, botClick dist
}

// sendAll sends n envelopes from workers goroutines and returns each ack's latency.
func sendAll(fs *slacktest.Server, n, workers int, send func(i int) (string, error)) []time.Duration {
	ctx, cancel := bounded(2 * time.Minute)
	defer cancel()
	var mu sync.Mutex
	var out []time.Duration
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id, err := send(i)
				if err != nil {
					log.Printf("send %d: %v", i, err)
					continue
				}
				a, err := fs.WaitAck(ctx, id)
				if err != nil {
					log.Printf("no ack for %d: %v", i, err)
					continue
				}
				mu.Lock()
				out = append(out, a.Latency)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// measureAcks sends n slash commands and n button clicks first to the bare client, then to the
// bot while every Metabase user call takes 2 s.
func measureAcks(botBin, bareBin string, n int) acks {
	const workers = 20
	res := acks{n: n}
	f := newFakes("acks")
	defer f.close()
	emails := emailsOf(addUsers(f.mb, "ack", n))
	ctx, cancel := bounded(3 * time.Minute)
	defer cancel()

	// Baseline: the bare client, with a message carrying a button to click.
	bare, _ := f.start(bareBin, f.botEnv(""))
	api := slack.New("xoxb-test", slack.OptionAPIURL(f.slack.APIURL()))
	_, ts, err := api.PostMessageContext(ctx, opsChannel, slack.MsgOptionText("button", false), slack.MsgOptionBlocks(
		slack.NewActionBlock("b", slack.NewButtonBlockElement("mb_approve", "x", slack.NewTextBlockObject(slack.PlainTextType, "Go", false, false)))))
	if err != nil {
		log.Fatal(err)
	}
	res.bareCmd = summarize(sendAll(f.slack, n, workers, func(i int) (string, error) {
		return f.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel, Text: "disable " + emails[i] + " bench"})
	}))
	res.bareClick = summarize(sendAll(f.slack, n, workers, func(int) (string, error) {
		return f.slack.Click(ctx, slacktest.Click{UserID: approver, ChannelID: opsChannel, MessageTS: ts, ActionID: "mb_approve"})
	}))
	bare.stop()

	// The bot, with Metabase answering every user call in 2 s.
	for _, m := range []string{"GET", "DELETE"} {
		f.mb.SetLatency(m, "/api/user/:id", 2*time.Second)
	}
	f.mb.SetLatency("GET", "/api/user", 2*time.Second)
	f.start(botBin, f.botEnv(""))
	res.botCmd = summarize(sendAll(f.slack, n, workers, func(i int) (string, error) {
		return f.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel, Text: "disable " + emails[i] + " bench"})
	}))
	cards := waitCards(f.slack, n, 2*time.Minute)
	res.botClick = summarize(sendAll(f.slack, len(cards), workers, func(i int) (string, error) {
		return f.slack.Click(ctx, slacktest.Click{UserID: approver, ChannelID: opsChannel, MessageTS: cards[i].TS, ActionID: "mb_approve"})
	}))
	waitOutcomes(f.slack, cards, 2*time.Minute)
	return res
}

// addUsers adds n active Metabase users prefixK@example.com and returns them.
func addUsers(mb *metabasetest.Server, prefix string, n int, lastLogin ...time.Time) []metabasetest.User {
	users := make([]metabasetest.User, n)
	for i := range n {
		u := metabasetest.User{Email: fmt.Sprintf("%s%d@example.com", prefix, i), FirstName: "Bench", LastName: fmt.Sprint(i), Active: true,
			DateJoined: time.Now().AddDate(-2, 0, 0)}
		if len(lastLogin) > 0 {
			t := lastLogin[0]
			u.LastLogin = &t
		}
		users[i] = mb.AddUser(u)
	}
	return users
}

func emailsOf(users []metabasetest.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Email
	}
	return out
}

func isCard(m slacktest.Message) bool {
	return m.Channel == opsChannel && m.ThreadTS == "" && strings.HasPrefix(m.Text, "Metabase disable request")
}

func isOutcome(m slacktest.Message) bool {
	return m.ThreadTS != "" && strings.Contains(m.Text, "Done.")
}

// watch polls the fake's messages every 2 ms and calls seen once per new message with the time
// it was first seen, until done reports true or d passes.
func watch(fs *slacktest.Server, d time.Duration, seen func(m slacktest.Message, at time.Time), done func() bool) bool {
	deadline := time.Now().Add(d)
	next := 0
	for time.Now().Before(deadline) {
		ms := fs.Messages()
		now := time.Now()
		for _, m := range ms[next:] {
			seen(m, now)
		}
		next = len(ms)
		if done() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// waitCards waits for n approval cards and returns them in posting order.
func waitCards(fs *slacktest.Server, n int, d time.Duration) []slacktest.Message {
	var cards []slacktest.Message
	if !watch(fs, d, func(m slacktest.Message, _ time.Time) {
		if isCard(m) {
			cards = append(cards, m)
		}
	}, func() bool { return len(cards) >= n }) {
		log.Printf("only %d of %d cards arrived", len(cards), n)
	}
	return cards
}

// waitOutcomes waits until every card has its outcome reply.
func waitOutcomes(fs *slacktest.Server, cards []slacktest.Message, d time.Duration) {
	want := map[string]bool{}
	for _, c := range cards {
		want[c.TS] = true
	}
	got := 0
	if !watch(fs, d, func(m slacktest.Message, _ time.Time) {
		if isOutcome(m) && want[m.ThreadTS] {
			got++
		}
	}, func() bool { return got >= len(cards) }) {
		log.Printf("only %d of %d outcomes arrived", got, len(cards))
	}
}

// ---- approval overhead ----

// overhead is one binary's approvals one at a time on one backend.
type overhead struct {
	version string // "after" (this tree) or "before" (the -before commit)
	backend string
	n       int
	bot     dist
	// toOutcome are the bot's commits from the click to the outcome reply, total from the click
	// until its outbox was empty, one entry per counted approval; nil when the binary has no
	// commit counter.
	toOutcome, total []int
}

// measureOverhead approves n requests one at a time on backend (dbURL "" is a fresh SQLite
// file), timing click to outcome reply, then counts the commits of `counted` more approvals.
// Before each click the bot is quiet: the card and its audit line are out and its outbox is
// empty, so every commit counted from the click on belongs to the approval.
//
// The count up to the outcome holds the fake's calls so the reading cannot race the bot: the
// audit post of the approval is held, then the card update that follows it, then the outcome
// post; with the outcome post held, nothing of the request can commit, and the counter then is
// exactly the commits before the outcome was sent. Holding slows those approvals down, so they
// are not timed.
func measureOverhead(bin, version, backend, dbURL string, n, counted int) overhead {
	res := overhead{version: version, backend: backend, n: n}
	f := newFakes("overhead-" + backend + "-" + version)
	defer f.close()
	users := addUsers(f.mb, "ovh", n+counted)
	emails := emailsOf(users)
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(f.tb.TempDir(), "bot.db")
	}
	addr := freeAddr()
	f.start(bin, f.botEnv(dbURL, "HTTP_ADDR="+addr))
	st := openStore(dbURL)
	defer st.Close()
	ctx, cancel := bounded(3 * time.Minute)
	defer cancel()
	_, err := commits(addr)
	counter := err == nil
	if !counter {
		log.Printf("%s binary: %v; its commits are not counted", version, err)
	}
	var bot []time.Duration
	for i := range n + counted {
		id, err := f.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel, Text: "disable " + emails[i] + " bench"})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := f.slack.WaitAck(ctx, id); err != nil {
			log.Fatal(err)
		}
		card, err := f.slack.WaitMessage(ctx, func(m slacktest.Message) bool { return isCard(m) && strings.Contains(m.Text, emails[i]) })
		if err != nil {
			log.Fatal(err)
		}
		// Let the card's audit line go out and be recorded first, so the timed path starts from a quiet bot.
		if _, err := f.slack.WaitMessage(ctx, func(m slacktest.Message) bool {
			return m.Channel == auditChannel && strings.Contains(m.Text, "*requested*") && strings.Contains(m.Text, emails[i])
		}); err != nil {
			log.Fatal(err)
		}
		drained(st, 10*time.Second)
		before, _ := settledCommits(addr)
		click := slacktest.Click{UserID: approver, ChannelID: opsChannel, MessageTS: card.TS, ActionID: "mb_approve"}
		isThisOutcome := func(m slacktest.Message) bool { return m.ThreadTS == card.TS && isOutcome(m) }
		if i < n {
			start := time.Now()
			if _, err := f.slack.Click(ctx, click); err != nil {
				log.Fatal(err)
			}
			if _, err := f.slack.WaitMessage(ctx, isThisOutcome); err != nil {
				log.Fatal(err)
			}
			bot = append(bot, time.Since(start))
		} else if counter {
			if c, ok := commitsToOutcome(ctx, f, addr, click); ok {
				res.toOutcome = append(res.toOutcome, c-before)
			}
			if _, err := f.slack.WaitMessage(ctx, isThisOutcome); err != nil {
				log.Fatal(err)
			}
		}
		if _, err := f.slack.WaitMessage(ctx, func(m slacktest.Message) bool {
			return m.Channel == auditChannel && strings.Contains(m.Text, "*executed*") && strings.Contains(m.Text, emails[i])
		}); err != nil {
			log.Fatal(err)
		}
		if counter && drained(st, 10*time.Second) {
			after, _ := settledCommits(addr)
			res.total = append(res.total, after-before)
		}
	}
	res.bot = summarize(bot)
	return res
}

// commitsToOutcome clicks and returns the bot's commit counter while the outcome reply is held
// in the fake, before Slack has taken it. The path posts the audit line, updates the card, then
// posts the outcome: each hold is set while the bot is parked on the call before, so none races.
func commitsToOutcome(ctx context.Context, f *fakes, addr string, click slacktest.Click) (int, bool) {
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	releasePost := f.slack.Hold("chat.postMessage")
	defer releasePost()
	if _, err := f.slack.Click(ctx, click); err != nil {
		log.Fatal(err)
	}
	if err := f.slack.WaitHeld(hctx, "chat.postMessage", 1); err != nil {
		log.Printf("commit count: the approval's audit post never came: %v", err)
		return 0, false
	}
	releaseUpdate := f.slack.Hold("chat.update")
	defer releaseUpdate()
	releasePost()
	if err := f.slack.WaitHeld(hctx, "chat.update", 1); err != nil {
		log.Printf("commit count: the final card update never came: %v", err)
		return 0, false
	}
	releaseOutcome := f.slack.Hold("chat.postMessage")
	defer releaseOutcome()
	releaseUpdate()
	if err := f.slack.WaitHeld(hctx, "chat.postMessage", 1); err != nil {
		log.Printf("commit count: the outcome post never came: %v", err)
		return 0, false
	}
	c, err := commits(addr)
	return c, err == nil
}

// measureBaseline makes, with a plain HTTP client on the same fakes, the calls the bot makes
// between the click and the outcome reply, in order: usergroups.users.list (is the clicker an
// approver), GET /api/user/:id, DELETE /api/user/:id, chat.update (card: approved),
// chat.postMessage (audit: approved), chat.update (card: done), chat.postMessage (thread outcome).
func measureBaseline(n int) dist {
	f := newFakes("baseline")
	defer f.close()
	users := addUsers(f.mb, "base", n)
	ctx, cancel := bounded(3 * time.Minute)
	defer cancel()
	hc := &http.Client{}
	api := slack.New("xoxb-test", slack.OptionAPIURL(f.slack.APIURL()))
	var base []time.Duration
	for _, u := range users {
		_, ts, err := api.PostMessageContext(ctx, opsChannel, slack.MsgOptionText("card", false))
		if err != nil {
			log.Fatal(err)
		}
		start := time.Now()
		slackCall(hc, f.slack.APIURL()+"usergroups.users.list", url.Values{"usergroup": {approverGroup}})
		mbCall(hc, "GET", f.mb.URL()+fmt.Sprintf("/api/user/%d", u.ID))
		mbCall(hc, "DELETE", f.mb.URL()+fmt.Sprintf("/api/user/%d", u.ID))
		slackCall(hc, f.slack.APIURL()+"chat.update", url.Values{"channel": {opsChannel}, "ts": {ts}, "text": {"approved"}})
		slackCall(hc, f.slack.APIURL()+"chat.postMessage", url.Values{"channel": {auditChannel}, "text": {"approved"}})
		slackCall(hc, f.slack.APIURL()+"chat.update", url.Values{"channel": {opsChannel}, "ts": {ts}, "text": {"done"}})
		slackCall(hc, f.slack.APIURL()+"chat.postMessage", url.Values{"channel": {opsChannel}, "thread_ts": {ts}, "text": {"done"}})
		base = append(base, time.Since(start))
	}
	return summarize(base)
}

func slackCall(hc *http.Client, endpoint string, form url.Values) {
	form.Set("token", "xoxb-test")
	resp, err := hc.PostForm(endpoint, form)
	if err != nil {
		log.Fatal(err)
	}
	drain(resp)
}

func mbCall(hc *http.Client, method, u string) {
	req, _ := http.NewRequest(method, u, nil)
	req.Header.Set("X-API-Key", metabasetest.AdminAPIKey)
	resp, err := hc.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		log.Fatalf("%s %s: %s", method, u, resp.Status)
	}
	drain(resp)
}

func drain(resp *http.Response) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	resp.Body.Close()
}
