package main

import (
	"fmt"
	"log"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// ---- command to card (issue 23) ----

// The instance the card phase runs against: as many subscriptions as alerts, 5,000 items in all.
const (
	cardSubscriptions = 2500
	cardAlerts        = 2500
)

// cardRow is one latency and target count: the medians of runs requests, each beside the round
// trip measured on the same fake.
type cardRow struct {
	latency time.Duration // every Metabase call takes this
	targets int
	runs    int
	// rtt is one round trip: a bare GET /api/pulse of the instance's subscriptions (its largest
	// answer) from a plain HTTP client, median of five.
	rtt time.Duration
	// toCard is from the command's send to the card's post; toComplete to the moment the card
	// and its thread hold everything the approver must see (the item list in the thread).
	toCard, toComplete time.Duration
	// calls is the Metabase calls of one request (mean).
	calls float64
	ok    bool // every run's card named the targets' items
}

// cardBound is the bound in round trips: the card within two for one target and four
// for fifty; complete within four.
func (r cardRow) cardBound() time.Duration {
	if r.targets > 1 {
		return 4 * r.rtt
	}
	return 2 * r.rtt
}

func (r cardRow) completeBound() time.Duration { return 4 * r.rtt }

// within reports d ≤ 1.2·bound + 50 ms, the target.
func within(d, bound time.Duration) bool {
	return d <= bound*12/10+50*time.Millisecond
}

func (r cardRow) met() bool {
	return r.ok && within(r.toCard, r.cardBound()) && within(r.toComplete, r.completeBound())
}

// measureCards runs the bot against a Metabase answering every call in latency, on an instance of
// cardSubscriptions and cardAlerts, and times disables of 1 and of 50 users.
func measureCards(botBin string, latency time.Duration, runs int) []cardRow {
	f := newFakes("cards-" + latency.String())
	defer f.close()
	// The fake Metabase again, every call taking latency.
	f.mb = metabasetest.New(f.tb, metabasetest.WithLatencyProfile(metabasetest.LatencyProfile{
		Search: latency, Read: latency, Write: latency, Login: latency, Health: latency}))
	// Users enough for every run, the targets of each run creating items among the 5,000.
	need := 1 + runs*(1+50)
	users := addUsers(f.mb, "card", need)
	creators := make([]int, len(users))
	for i, u := range users {
		creators[i] = u.ID
	}
	f.mb.SeedSubscriptions(cardSubscriptions, creators)
	for i := range cardAlerts {
		f.mb.AddAlert(metabasetest.Alert{CreatorID: creators[i%len(creators)], SlackChannels: []string{"#ops"}})
	}
	rtt := measureRTT(f.mb)
	f.start(botBin, f.botEnv(""))
	next := 0
	take := func(n int) []string {
		out := emailsOf(users[next : next+n])
		next += n
		return out
	}
	// The first request after start-up is not timed: the bot learns the instance's facts at
	// start, and this waits until it has.
	cardRequest(f, take(1))
	var rows []cardRow
	for _, n := range []int{1, 50} {
		row := cardRow{latency: latency, targets: n, runs: runs, rtt: rtt, ok: true}
		var toCard, toComplete []time.Duration
		calls := 0
		for range runs {
			c, full, k, ok := cardRequest(f, take(n))
			toCard, toComplete = append(toCard, c), append(toComplete, full)
			calls += k
			row.ok = row.ok && ok
		}
		row.toCard, row.toComplete = median(toCard), median(toComplete)
		row.calls = float64(calls) / float64(runs)
		rows = append(rows, row)
	}
	return rows
}

// measureRTT times a bare GET /api/pulse, the instance's largest listing.
func measureRTT(mb *metabasetest.Server) time.Duration {
	hc := &http.Client{}
	var ds []time.Duration
	for range 5 {
		start := time.Now()
		mbCall(hc, "GET", mb.URL()+"/api/pulse?archived=false")
		ds = append(ds, time.Since(start))
	}
	return median(ds)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// cardRequest sends a disable of emails and returns the time to the card, to the card complete
// (its thread's item list posted), the Metabase calls made meanwhile, and whether the card holds
// the targets' items.
func cardRequest(f *fakes, emails []string) (toCard, toComplete time.Duration, calls int, ok bool) {
	ctx, cancel := bounded(2 * time.Minute)
	defer cancel()
	before := len(f.mb.Requests())
	seen := len(f.slack.Messages())
	start := time.Now()
	id, err := f.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: requester, ChannelID: opsChannel,
		Text: "disable " + strings.Join(emails, " ") + " bench"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.slack.WaitAck(ctx, id); err != nil {
		log.Fatal(err)
	}
	var card *slacktest.Message
	var listed bool
	done := watchFrom(f.slack, seen, 2*time.Minute, func(m slacktest.Message, at time.Time) {
		switch {
		case card == nil && isCard(m):
			card, toCard = &m, at.Sub(start)
		case card != nil && !listed && m.ThreadTS == card.TS && strings.Contains(m.AllText(), " created "):
			listed, toComplete = true, at.Sub(start)
		}
	}, func() bool { return listed })
	if !done {
		log.Printf("cards: a disable of %d users got no complete card within 2 minutes", len(emails))
		return toCard, toComplete, 0, false
	}
	calls = len(f.mb.Requests()) - before
	ok = strings.Contains(card.AllText(), "subscription")
	return toCard, toComplete, calls, ok
}

// watchFrom is watch starting at message index from, so earlier runs' messages are not seen.
func watchFrom(fs *slacktest.Server, from int, d time.Duration, seen func(m slacktest.Message, at time.Time), done func() bool) bool {
	return watch(fs, d, func(m slacktest.Message, at time.Time) {
		if from > 0 {
			from--
			return
		}
		seen(m, at)
	}, done)
}

// cardTable is the report's section for the card phase.
func cardTable(rows []cardRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Every Metabase call takes the latency shown (the fake's latency profile; `GET /api/user` adds nothing per row), on an instance of\n")
	fmt.Fprintf(&b, "%d subscriptions and %d alerts created by the targets and others. *Round trip* is a bare `GET /api/pulse` of those subscriptions (the\n", cardSubscriptions, cardAlerts)
	fmt.Fprintf(&b, "largest answer the request reads) from a plain HTTP client against the same fake, median of five. *Card* is from sending the command to\n")
	fmt.Fprintf(&b, "the card's post; *complete* to the post of the thread reply listing what the targets leave running, the last thing the approver must see.\n")
	fmt.Fprintf(&b, "Bounds: the card within 2 round trips for 1 target and 4 for 50, complete within 4; target: within 1.2× the bound + 50 ms. Medians of the runs shown.\n\n")
	b.WriteString("| Metabase per call | targets | round trip | card | card bound | complete | complete bound | Metabase calls per request | runs | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %.0f | %d | %s |\n", r.latency, r.targets, ms(r.rtt),
			ms(r.toCard), ms(r.cardBound()), ms(r.toComplete), ms(r.completeBound()), r.calls, r.runs, met(r.met()))
	}
	return b.String()
}

// cardSummary is the phase's line in the summary table.
func cardSummary(rows []cardRow) (measured string, ok bool) {
	ok = len(rows) > 0
	worst := 0.0
	for _, r := range rows {
		ok = ok && r.met()
		for _, x := range []float64{float64(r.toCard) / float64(r.cardBound()*12/10+50*time.Millisecond),
			float64(r.toComplete) / float64(r.completeBound()*12/10+50*time.Millisecond)} {
			worst = max(worst, x)
		}
	}
	return fmt.Sprintf("%d rows, worst at %.0f%% of its allowance", len(rows), worst*100), ok
}

// measureAllCards is the card phase at each latency; the slower latencies run fewer times to keep
// the phase under a minute.
func measureAllCards(botBin string) []cardRow {
	var rows []cardRow
	for _, l := range []struct {
		d    time.Duration
		runs int
	}{{50 * time.Millisecond, 3}, {200 * time.Millisecond, 2}, {time.Second, 2}} {
		log.Printf("cards at %s per call", l.d)
		rows = append(rows, measureCards(botBin, l.d, l.runs)...)
	}
	return rows
}
