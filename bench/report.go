package main

import (
	"fmt"
	"strings"
	"time"
)

type report struct {
	started   time.Time
	elapsed   time.Duration
	command   string
	resources resources
	acks      acks
	overhead  overhead
	loads     []load
	bulk      bulk
	notes     []string
}

func met(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Benchmarks")
	w("")
	w("Written by `%s` on %s (run took %s). Every figure sits beside a baseline measured in the same run on the",
		r.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), r.elapsed.Round(time.Second))
	w("same fakes (bot/slacktest, metabase/metabasetest, loopback only), because absolute times on a shared 2-core machine are noisy.")
	w("The bot runs as the released binary (`CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"`), `LOG_LEVEL=info`, SQLite unless noted;")
	w("the baseline client is `bench/bareclient`, a bare slack-go Socket Mode client that acks every envelope at once.")
	w("")
	w("## Machine")
	w("")
	b.WriteString(machine())
	w("")

	w("## Summary")
	w("")
	w("| Target | Measured | Baseline | Result |")
	w("|---|---|---|---|")
	a := r.acks
	worst := max(a.botCmd.p99, a.botClick.p99)
	w("| Ack p99 < 50 ms while Metabase takes 2 s | command %s, button %s | %s, %s | %s |", ms(a.botCmd.p99), ms(a.botClick.p99), ms(a.bareCmd.p99), ms(a.bareClick.p99), met(worst < 50*time.Millisecond))
	o := r.overhead
	over := o.bot.p50 - o.baseline.p50
	w("| Bot overhead on an approval < 5 ms at p50 | %s (click→outcome %s) | %s (same calls, plain HTTP) | %s |", ms(over), ms(o.bot.p50), ms(o.baseline.p50), met(over < 5*time.Millisecond))
	for _, l := range r.loads {
		ok := l.complete && l.cmdAcks == l.n && l.clickAcks == l.n && l.deletes == l.n && l.outcomes == l.n && l.dupOutcomes == 0 && l.audits == l.n
		w("| Load %s: %d requests, %d requesters: all acked, %d DELETEs, each outcome once | acks %d+%d, DELETEs %d, outcomes %d (dup %d), audits %d; %.0f approvals/s, click→outcome p99 %s | – | %s |",
			l.backend, l.n, l.requesters, l.n, l.cmdAcks, l.clickAcks, l.deletes, l.outcomes, l.dupOutcomes, l.audits,
			float64(l.outcomes)/l.approveDur.Seconds(), ms(l.toOK.p99), met(ok))
	}
	bk := r.bulk
	ratio := float64(bk.took) / float64(bk.bound)
	w("| Bulk %d users, %s per DELETE, BULK_CONCURRENCY=%d within 1.2× of %s | %s (%.2f×), %d DELETEs | %s bound | %s |",
		bk.n, bk.latency, bk.concurrency, bk.bound, bk.took.Round(time.Millisecond), ratio, bk.deletes, bk.bound, met(ratio <= 1.2 && bk.ok))
	rs := r.resources
	w("| Idle RSS of the connected bot < 30 MB | %.1f MB (peak %.1f MB) | bare client %.1f MB (peak %.1f MB) | %s |",
		float64(rs.botRSS)/1024, float64(rs.botPeak)/1024, float64(rs.bareRSS)/1024, float64(rs.barePeak)/1024, met(rs.botRSS > 0 && rs.botRSS < 30*1024))
	w("| Binary size (no target) | %.1f MB | bare client %.1f MB | – |", float64(rs.botSize)/(1<<20), float64(rs.bareSize)/(1<<20))
	w("| Start to Socket Mode connected (no target) | median %s of %d | bare client %s | – |", ms(summarize(rs.botStart).p50), len(rs.botStart), ms(summarize(rs.bareStart).p50))
	w("")

	w("## Ack latency")
	w("")
	w("%d slash commands, then %d clicks on Approve, from 20 concurrent senders; latency is from the fake writing the envelope to reading its ack (`slacktest.Ack.Latency`).", a.n, a.n)
	w("For the bot every Metabase user call (`GET /api/user`, `GET`/`DELETE /api/user/:id`) takes 2 s, so each command and each approval keeps a handler busy for 2–4 s after its ack.")
	w("")
	w("| Envelope | bot p50 | bot p99 | bot max | baseline p50 | baseline p99 | baseline max | n |")
	w("|---|---|---|---|---|---|---|---|")
	w("| slash command | %s | %s | %s | %s | %s | %s | %d |", ms(a.botCmd.p50), ms(a.botCmd.p99), ms(a.botCmd.max), ms(a.bareCmd.p50), ms(a.bareCmd.p99), ms(a.bareCmd.max), a.botCmd.n)
	w("| button click | %s | %s | %s | %s | %s | %s | %d |", ms(a.botClick.p50), ms(a.botClick.p99), ms(a.botClick.max), ms(a.bareClick.p50), ms(a.bareClick.p99), ms(a.bareClick.max), a.botClick.n)
	w("")

	w("## Approval overhead")
	w("")
	w("%d approvals one at a time, Metabase without added latency: from sending the click to the outcome reply in the thread.", o.n)
	w("The baseline makes, with a plain `net/http` client on the same fakes, the calls the bot has to make on that path: `usergroups.users.list`,")
	w("`GET /api/user/:id`, `DELETE /api/user/:id`, `chat.update`, `chat.postMessage` (audit), `chat.update`, `chat.postMessage` (thread).")
	w("The bot's figure also includes the Socket Mode delivery and ack of the click and its SQLite writes, all counted as overhead.")
	w("Most of it is the outbox: each of the four messages on the path is claimed and completed in its own SQLite write, one row per request per claim.")
	w("This figure is close to its target and moves by a few milliseconds between runs on this shared machine; compare runs, not single numbers.")
	w("")
	w("| | p50 | p99 | max |")
	w("|---|---|---|---|")
	w("| bot, click → outcome | %s | %s | %s |", ms(o.bot.p50), ms(o.bot.p99), ms(o.bot.max))
	w("| baseline, same calls | %s | %s | %s |", ms(o.baseline.p50), ms(o.baseline.p99), ms(o.baseline.max))
	w("| overhead (difference) | %s | %s | |", ms(over), ms(o.bot.p99-o.baseline.p99))
	w("")

	w("## Load")
	w("")
	w("Each requester sends its commands one after another (send, wait for the ack); approvers (as many as requesters) click each card as soon as it appears, so creation and approval overlap.")
	w("")
	w("| Backend | commands acked | clicks acked | cards | DELETEs | outcomes (duplicates) | audit `executed` | cards in | all outcomes in | command ack p50/p99 | click ack p50/p99 | command→card p50/p99 | click→outcome p50/p99 |")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, l := range r.loads {
		w("| %s | %d/%d | %d/%d | %d | %d | %d (%d) | %d | %s (%.0f/s) | %s (%.0f/s) | %s / %s | %s / %s | %s / %s | %s / %s |",
			l.backend, l.cmdAcks, l.n, l.clickAcks, l.n, l.cards, l.deletes, l.outcomes, l.dupOutcomes, l.audits,
			l.createDur.Round(time.Millisecond), float64(l.cards)/l.createDur.Seconds(),
			l.approveDur.Round(time.Millisecond), float64(l.outcomes)/l.approveDur.Seconds(),
			ms(l.cmdAck.p50), ms(l.cmdAck.p99), ms(l.clickAck.p50), ms(l.clickAck.p99),
			ms(l.toCard.p50), ms(l.toCard.p99), ms(l.toOK.p50), ms(l.toOK.p99))
	}
	w("")
	w("Baseline for the acks under load: the bare client's ack latency in the ack table above.")
	w("")

	w("## Bulk")
	w("")
	w("%d users in %s. Every `DELETE /api/user/:id` takes %s; the `GET /api/user/:id` before each has no added latency.", bk.n, bk.how, bk.latency)
	w("With BULK_CONCURRENCY=%d the floor is %d/%d × %s = %s. Measured from the Approve click to the summary reply in the thread.", bk.concurrency, bk.n, bk.concurrency, bk.latency, bk.bound)
	w("")
	w("| took | bound | ratio | DELETEs |")
	w("|---|---|---|---|")
	w("| %s | %s | %.2f× | %d |", bk.took.Round(time.Millisecond), bk.bound, ratio, bk.deletes)
	w("")

	w("## Resources")
	w("")
	w("| | binary | idle RSS (after 5 s connected) | peak RSS | start → connected (each start) |")
	w("|---|---|---|---|---|")
	w("| metabase-bot | %d bytes | %d kB | %d kB | %s |", rs.botSize, rs.botRSS, rs.botPeak, durs(rs.botStart))
	w("| bare client | %d bytes | %d kB | %d kB | %s |", rs.bareSize, rs.bareRSS, rs.barePeak, durs(rs.bareStart))
	w("")
	w("The bot's start includes opening SQLite and migrating it, `auth.test`, the Metabase admin check, reading the approver group and `conversations.info` on the audit channel.")
	if len(r.notes) > 0 {
		w("")
		w("## Notes")
		w("")
		for _, n := range r.notes {
			w("- %s", n)
		}
	}
	return b.String()
}

func durs(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return strings.Join(out, ", ")
}
