package main

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// checkpointRe reads a checkpoint message: whether it was posted at shutdown, and the head it
// publishes as the SEQ:HASH an auditor passes to `audit verify --checkpoint`.
var checkpointRe = regexp.MustCompile("^:lock: \\*audit checkpoint\\* \\((periodic|bot stopping)\\) · chain head #(\\d+) as of <!date\\^\\d+\\^[^>]+> · " +
	"check the database against it: `metabase-bot audit verify --checkpoint (\\d+):([0-9a-f]{64})`$")

// postedCheckpoint is one checkpoint message in the audit channel.
type postedCheckpoint struct {
	shutdown bool
	head     string // SEQ:HASH
	seq      int64
	posted   time.Time
	ts       string
}

// checkpoints lists the checkpoint messages posted anywhere, in order, failing the test on a
// malformed one.
func (h *harness) checkpoints() []postedCheckpoint {
	h.t.Helper()
	var out []postedCheckpoint
	for _, m := range h.slack.Messages() {
		if !strings.Contains(m.Text, "audit checkpoint") {
			continue
		}
		c, ok := parseCheckpoint(m)
		if !ok || m.Channel != auditChannel {
			h.t.Fatalf("malformed or misplaced checkpoint message in %s: %q", m.Channel, m.Text)
		}
		out = append(out, c)
	}
	return out
}

func parseCheckpoint(m slacktest.Message) (postedCheckpoint, bool) {
	c := checkpointRe.FindStringSubmatch(m.Text)
	if c == nil || c[2] != c[3] {
		return postedCheckpoint{}, false
	}
	seq, _ := strconv.ParseInt(c[3], 10, 64)
	return postedCheckpoint{shutdown: c[1] == "bot stopping", head: c[3] + ":" + c[4], seq: seq, posted: m.Posted, ts: m.TS}, true
}

// isCheckpoint reports whether m is a checkpoint message.
func isCheckpoint(m slacktest.Message) bool {
	_, ok := parseCheckpoint(m)
	return ok
}

// rewriteAuditChain edits entry seq's event and re-hashes it and every entry after it, moving
// the head along, as someone with write access to the database would to hide an edit: the chain
// stays consistent in itself, and only a copy held outside the database can tell.
func rewriteAuditChain(t *testing.T, url string, seq int64, event string) {
	t.Helper()
	db, bind := rawDB(t, url)
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	type entry struct {
		seq, at     int64
		event, prev string
	}
	rows, err := tx.QueryContext(t.Context(), bind(`SELECT seq, at, event, prev_hash FROM audit_log WHERE seq >= ? ORDER BY seq`), seq)
	if err != nil {
		t.Fatal(err)
	}
	var entries []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.seq, &e.at, &e.event, &e.prev); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	rows.Close()
	if len(entries) == 0 {
		t.Fatalf("no audit entry #%d to rewrite", seq)
	}
	entries[0].event = event
	prev := entries[0].prev
	for _, e := range entries {
		h := docHash(prev, e.seq, e.at, e.event)
		if _, err := tx.ExecContext(t.Context(), bind(`UPDATE audit_log SET event = ?, prev_hash = ?, hash = ? WHERE seq = ?`), e.event, prev, h, e.seq); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	if _, err := tx.ExecContext(t.Context(), bind(`UPDATE audit_head SET hash = ? WHERE id = 1`), prev); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointAtShutdownAnchorsTheChain: a process that stops with an empty chain posts
// nothing; one that stops after a flow posts the head, after the audit messages it covers; `audit
// verify --checkpoint` accepts that head, and refuses it once an entry is edited in the database,
// even when the edit is re-hashed so the chain alone still verifies.
func TestCheckpointAtShutdownAnchorsTheChain(t *testing.T) {
	t.Parallel()
	for name, newURL := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := newURL(t)
			h := newHarness(t, map[string]string{"DATABASE_URL": url})
			h.addJane()
			h.start().stop(t)
			if cps := h.checkpoints(); len(cps) != 0 {
				t.Fatalf("a bot that stopped with an empty audit log posted checkpoints %+v", cps)
			}

			in := h.start()
			h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
			h.audit("executed", "jane@example.com")
			in.stop(t)

			cps := h.checkpoints()
			if len(cps) == 0 || !cps[len(cps)-1].shutdown {
				t.Fatalf("no checkpoint at shutdown; checkpoints %+v\naudit: %v", cps, texts(h.slack.Messages()))
			}
			last := cps[len(cps)-1]
			head, err := openStore(t, url).AuditHead(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if last.head != head.String() || head.Seq != 3 {
				t.Fatalf("shutdown checkpoint %s, want the head %s (requested, approved, executed)", last.head, head)
			}
			var audit []slacktest.Message
			for _, m := range h.slack.Messages() {
				if m.Channel == auditChannel {
					audit = append(audit, m)
				}
			}
			if audit[len(audit)-1].TS != last.ts {
				t.Errorf("the shutdown checkpoint is not the audit channel's last message: %v", texts(audit))
			}

			if code, out, errOut := runCLI(t, url, "audit", "verify", "--checkpoint", last.head); code != 0 || !strings.Contains(out, "matches") {
				t.Fatalf("verify against the posted checkpoint = %d, %q (stderr %q); want 0", code, out, errOut)
			}
			forged := `{"action":"denied","actor":"UAPP","request_id":"MB-FORGED00"}`
			rewriteAuditChain(t, url, 2, forged)
			if code, out, errOut := runCLI(t, url, "audit", "verify"); code != 0 {
				t.Fatalf("the re-hashed chain should verify on its own (the checkpoint is what catches it): %d, %q %q", code, out, errOut)
			}
			code, out, _ := runCLI(t, url, "audit", "verify", "--checkpoint", last.head)
			if code != 1 || !strings.HasPrefix(out, "audit log BROKEN at #") || !strings.Contains(out, "(edited)") {
				t.Fatalf("verify of an edited, re-hashed chain against the posted checkpoint = %d, %q; want 1 and BROKEN (edited)", code, out)
			}
		})
	}
}

// TestCheckpointsAcrossReplicas: two replicas on PostgreSQL post one periodic checkpoint per
// period, not one each, every one naming a head `audit verify` accepts; each posts the final head
// as it stops.
func TestCheckpointsAcrossReplicas(t *testing.T) {
	t.Parallel()
	const every = 3 * time.Second
	h := newHarness(t, map[string]string{"DATABASE_URL": postgresDatabaseURL(t), "AUDIT_CHECKPOINT_EVERY": every.String()})
	h.addJane()
	h.startReplicas(2)
	h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
	h.audit("executed", "jane@example.com")

	// Wait for three periodic checkpoints: the first follows the first entry, the next two come a
	// period apart, while both replicas poll ten times a period.
	seen := map[string]bool{}
	for range 3 {
		m, err := h.slack.WaitMessage(h.ctx(), func(m slacktest.Message) bool {
			c, ok := parseCheckpoint(m)
			return ok && !c.shutdown && !seen[m.TS]
		})
		if err != nil {
			t.Fatalf("only %d periodic checkpoints: %v\naudit: %v", len(seen), err, texts(h.slack.Messages()))
		}
		seen[m.TS] = true
	}
	h.mu.Lock()
	running := slices.Clone(h.running)
	h.mu.Unlock()
	for _, in := range running {
		in.stop(t)
	}

	st := h.openStore()
	head, err := st.AuditHead(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	var periodic, shutdown []postedCheckpoint
	for _, c := range h.checkpoints() {
		if c.shutdown {
			shutdown = append(shutdown, c)
		} else {
			periodic = append(periodic, c)
		}
	}
	// Claims are a period apart; a post follows its claim within milliseconds. Two replicas that
	// both posted a period would do so within one poll (every/10) of each other.
	for i := 1; i < len(periodic); i++ {
		if gap := periodic[i].posted.Sub(periodic[i-1].posted); gap < every/3 {
			t.Errorf("periodic checkpoints %d and %d were posted %s apart, within one period of %s: two replicas posted the same period", i-1, i, gap, every)
		}
	}
	if len(shutdown) != 2 {
		t.Errorf("%d shutdown checkpoints, want one per replica: %+v", len(shutdown), shutdown)
	}
	for _, c := range shutdown {
		if c.head != head.String() {
			t.Errorf("a shutdown checkpoint names %s, want the final head %s", c.head, head)
		}
	}
	heads := map[string]bool{}
	for _, c := range append(periodic, shutdown...) {
		if c.seq < 1 || c.seq > head.Seq {
			t.Errorf("checkpoint %s is not a head the chain had", c.head)
		}
		heads[c.head] = true
	}
	for hd := range heads {
		if code, out, errOut := runCLI(t, h.env["DATABASE_URL"], "audit", "verify", "--checkpoint", hd); code != 0 {
			t.Errorf("verify --checkpoint %s = %d, %q %q", hd, code, out, errOut)
		}
	}
}

// TestNoCheckpointsWithoutAuditChannel: without AUDIT_CHANNEL the chain is kept, but no checkpoint
// is posted anywhere, periodic or at shutdown.
func TestNoCheckpointsWithoutAuditChannel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"AUDIT_CHANNEL": "", "AUDIT_CHECKPOINT_EVERY": "1s"})
	h.addJane()
	in := h.start()
	h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
	in.stop(t)
	head, err := openStore(t, h.env["DATABASE_URL"]).AuditHead(t.Context())
	if err != nil || head.Seq != 3 {
		t.Fatalf("audit head %s (%v), want 3 entries kept without an audit channel", head, err)
	}
	for _, m := range h.slack.Messages() {
		if strings.Contains(m.Text, "checkpoint") {
			t.Errorf("a checkpoint was posted without AUDIT_CHANNEL: %s: %q", m.Channel, m.Text)
		}
	}
}
