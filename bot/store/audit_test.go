package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

func TestAuditSQLite(t *testing.T) {
	t.Parallel()
	runAuditContract(t, harness{newURL: func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "bot.db")
	}})
}

func TestAuditPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.EnvVar) == "" {
		t.Skip(storetest.EnvVar + " is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the Postgres audit tests")
	}
	runAuditContract(t, harness{newURL: func(t *testing.T) string { return storetest.PostgresURL(t, "store_audit_") }})
}

// runAuditContract is the audit log's behaviour on every backend.
func runAuditContract(t *testing.T, h harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h harness)
	}{
		{"FullFlow", testAuditFullFlow},
		{"RollbackLeavesNoGap", testAuditRollback},
		{"Tampering", testAuditTampering},
		{"Checkpoints", testAuditCheckpoints},
		{"ArchivedPrefix", testAuditArchivedPrefix},
		{"ConcurrentReplicas", testAuditConcurrent},
		{"ClaimCheckpoint", testAuditClaimCheckpoint},
		{"ExportRange", testAuditExportRange},
		{"EnormousSeq", testAuditEnormousSeq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// auditEvent is the canonical JSON of a small event. It is safe in goroutines: strings and
// small integers always canonicalise.
func auditEvent(requestID, action string, n int) json.RawMessage {
	ev, err := CanonicalJSON(map[string]any{"request_id": requestID, "action": action, "n": n})
	if err != nil {
		panic(err)
	}
	return ev
}

// auditEntries reads the whole chain through ExportAudit.
func auditEntries(t *testing.T, s *Store) []AuditEntry {
	t.Helper()
	var es []AuditEntry
	if err := s.ExportAudit(t.Context(), time.Time{}, time.Time{}, func(e AuditEntry) error {
		es = append(es, e)
		return nil
	}); err != nil {
		t.Fatalf("ExportAudit: %v", err)
	}
	return es
}

// verify runs VerifyAudit and fails the test on an error (not on a break).
func verify(t *testing.T, s *Store, opts VerifyAuditOptions) AuditVerification {
	t.Helper()
	v, err := s.VerifyAudit(t.Context(), opts)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	return v
}

// wantIntact asserts that the chain verifies with n entries ending at head.
func wantIntact(t *testing.T, v AuditVerification, n int64, head AuditHead) {
	t.Helper()
	if v.Break != nil {
		t.Fatalf("verify found a break in an intact chain: %s", v.Break)
	}
	if v.Count != n || v.Head != head {
		t.Fatalf("verify = %d entries, head %s; want %d, %s", v.Count, v.Head, n, head)
	}
}

// wantBreak asserts that verification stops at seq for reason.
func wantBreak(t *testing.T, v AuditVerification, seq int64, reason AuditBreakReason) {
	t.Helper()
	if v.Break == nil {
		t.Fatalf("verify accepted a tampered chain (%d entries, head %s); want a break at #%d (%s)", v.Count, v.Head, seq, reason)
	}
	if v.Break.Seq != seq || v.Break.Reason != reason {
		t.Fatalf("verify broke at %s; want #%d %s", v.Break, seq, reason)
	}
	if v.Count != seq-1 || v.Head.Seq != seq-1 {
		t.Errorf("verify counted %d intact entries up to %s; want %d up to #%d", v.Count, v.Head, seq-1, seq-1)
	}
}

func head(t *testing.T, s *Store) AuditHead {
	t.Helper()
	h, err := s.AuditHead(t.Context())
	if err != nil {
		t.Fatalf("AuditHead: %v", err)
	}
	return h
}

func testAuditFullFlow(t *testing.T, h harness) {
	s := h.fresh(t)
	if got := verify(t, s, VerifyAuditOptions{}); got.Break != nil || got.Count != 0 || got.Head != (AuditHead{0, GenesisHash}) {
		t.Fatalf("empty chain: %+v", got)
	}
	r := newRequest("R1", t0, 7)
	requested := auditEvent("R1", "requested", 0)
	mustCreate(t, s, r,
		Outbox{Kind: "post_card", Payload: []byte(`card`)},
		Outbox{Kind: "audit", Payload: []byte(`requested`), Audit: requested})
	approved := auditEvent("R1", "approved", 0)
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		return []Outbox{{Kind: "audit", Payload: []byte(`approved`), Audit: approved}}, approveErr(r.Approve("UAPP", t0, approval.Policy{}))
	}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	executed := auditEvent("R1", "executed", 0)
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		if err := r.Start("replica-1", t0, time.Minute); err != nil {
			return nil, err
		}
		if err := r.Record("replica-1", 0, approval.Result{Outcome: approval.Done, At: t0}, nil, t0, time.Minute); err != nil {
			return nil, err
		}
		// No audit channel configured: the entry is appended, no message is queued.
		return []Outbox{{Audit: executed}}, r.Finish("replica-1", t0)
	}); err != nil {
		t.Fatalf("execute: %v", err)
	}
	returned := auditEvent("R1", "returned", 0)
	returnedEntry, err := s.AppendAudit(t.Context(), returned)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}

	es := auditEntries(t, s)
	if len(es) != 4 {
		t.Fatalf("%d entries, want 4", len(es))
	}
	prev := GenesisHash
	for i, want := range []json.RawMessage{requested, approved, executed, returned} {
		e := es[i]
		if e.Seq != int64(i+1) || string(e.Event) != string(want) || e.PrevHash != prev || e.Hash != AuditHash(prev, e.Seq, e.At, e.Event) {
			t.Errorf("entry %d = %+v, want seq %d, event %s, chained to %s", i, e, i+1, want, prev)
		}
		prev = e.Hash
	}
	if diff := cmp.Diff(es[3], returnedEntry); diff != "" {
		t.Errorf("AppendAudit returned another entry than it stored (-stored +returned):\n%s", diff)
	}
	wantIntact(t, verify(t, s, VerifyAuditOptions{}), 4, AuditHead{4, es[3].Hash})
	if got := head(t, s); got != (AuditHead{4, es[3].Hash}) {
		t.Errorf("AuditHead = %s, want #4", got)
	}

	// The deliverer learns which entry each audit message announces; other rows carry none.
	type cited struct {
		seq  int64
		hash string
	}
	got := map[string]cited{}
	for range 3 { // one message of a request at a time, in order
		claimed, _ := claim(t, s, "d1", t0.Add(time.Hour), 10)
		if len(claimed) != 1 {
			t.Fatalf("claimed %d rows, want 1", len(claimed))
		}
		o := claimed[0]
		got[string(o.Payload)] = cited{o.AuditSeq, o.AuditHash}
		if err := s.CompleteOutbox(t.Context(), o.ID, "d1"); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]cited{"card": {0, ""}, "requested": {1, es[0].Hash}, "approved": {2, es[1].Hash}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(cited{})); diff != "" {
		t.Errorf("entries cited by the claimed rows (-want +got):\n%s", diff)
	}
	if rows := outboxRows(t, s); len(rows) != 3 {
		t.Errorf("%d outbox rows, want 3 (the audit-only row queues no message)", len(rows))
	}
}

func testAuditRollback(t *testing.T, h harness) {
	s := h.fresh(t)
	first := auditEvent("R1", "requested", 0)
	mustCreate(t, s, newRequest("R1", t0, 1), Outbox{Kind: "audit", Audit: first})

	// A transition that fails after choosing its audit row writes neither.
	boom := errors.New("boom")
	if _, err := s.Update(t.Context(), "R1", func(r *approval.Request) ([]Outbox, error) {
		return []Outbox{{Kind: "audit", Audit: auditEvent("R1", "approved", 0)}}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	// A redelivered Create rolls back after its request insert fails.
	if err := s.Create(t.Context(), newRequest("R1", t0, 1), Outbox{Kind: "audit", Audit: first}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate Create = %v, want ErrExists", err)
	}
	// A non-canonical event is refused with the whole transaction: the request is not created.
	err := s.Create(t.Context(), newRequest("R2", t0, 2), Outbox{Kind: "audit", Audit: json.RawMessage(`{"b":1, "a":2}`)})
	if err == nil || !strings.Contains(err.Error(), "not canonical") {
		t.Fatalf("Create with a non-canonical event = %v", err)
	}
	if _, err := s.Get(t.Context(), "R2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the request of a refused event was stored: %v", err)
	}
	if _, err := s.AppendAudit(t.Context(), json.RawMessage(`{"n":1.5}`)); err == nil {
		t.Error("AppendAudit accepted a fraction")
	}
	if err := s.Create(t.Context(), newRequest("R3", t0, 3), Outbox{}); err == nil {
		t.Error("an outbox row with neither kind nor audit event was accepted")
	}
	if err := s.Create(t.Context(), newRequest("R4", t0, 4), Outbox{Payload: []byte("text"), Audit: first}); err == nil {
		t.Error("a message without a kind was accepted (it would be dropped) because it had an audit event")
	}

	next, err := s.AppendAudit(t.Context(), auditEvent("R1", "cancelled", 0))
	if err != nil {
		t.Fatal(err)
	}
	if next.Seq != 2 {
		t.Fatalf("the append after the rollbacks got seq %d, want 2: a rolled-back append left a gap", next.Seq)
	}
	wantIntact(t, verify(t, s, VerifyAuditOptions{}), 2, AuditHead{2, next.Hash})
}

// chain appends n entries, one second apart, and returns them.
func chain(t *testing.T, s *Store, n int) []AuditEntry {
	t.Helper()
	clock := t0
	s.now = func() time.Time { return clock }
	for i := range n {
		if _, err := s.AppendAudit(t.Context(), auditEvent(fmt.Sprintf("R%d", i%3), "approved", i)); err != nil {
			t.Fatalf("AppendAudit %d: %v", i, err)
		}
		clock = clock.Add(time.Second)
	}
	s.now = time.Now
	return auditEntries(t, s)
}

// tamper runs SQL on the store's database, as an attacker with write access would.
func tamper(t *testing.T, s *Store, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := s.db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// rehashFrom recomputes every hash from seq on, and the head, as an attacker who knows the
// hash definition would after editing entry seq.
func rehashFrom(t *testing.T, s *Store, seq int64) AuditHead {
	t.Helper()
	es := auditEntries(t, s)
	prev := GenesisHash
	for _, e := range es {
		if e.Seq >= seq {
			e.PrevHash = prev
			e.Hash = AuditHash(prev, e.Seq, e.At, e.Event)
			tamper(t, s, fmt.Sprintf(`UPDATE audit_log SET prev_hash = '%s', hash = '%s' WHERE seq = %d`, e.PrevHash, e.Hash, e.Seq))
		}
		prev = e.Hash
	}
	tamper(t, s, fmt.Sprintf(`UPDATE audit_head SET hash = '%s' WHERE id = 1`, prev))
	return AuditHead{es[len(es)-1].Seq, prev}
}

func testAuditTampering(t *testing.T, h harness) {
	const n = 20
	tests := []struct {
		name       string
		tamper     func(t *testing.T, s *Store, es []AuditEntry)
		wantSeq    int64
		wantReason AuditBreakReason
	}{
		{"edit one entry's JSON", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s, `UPDATE audit_log SET event = '{"action":"denied","n":6,"request_id":"R0"}' WHERE seq = 7`)
		}, 7, AuditEdited},
		{"edit one entry's time", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s, `UPDATE audit_log SET at = at + 1 WHERE seq = 7`)
		}, 7, AuditEdited},
		{"edit one entry and re-hash it", func(t *testing.T, s *Store, es []AuditEntry) {
			e := es[6]
			e.Event = json.RawMessage(`{"action":"denied","n":6,"request_id":"R0"}`)
			tamper(t, s, fmt.Sprintf(`UPDATE audit_log SET event = '%s', hash = '%s' WHERE seq = 7`, e.Event, AuditHash(e.PrevHash, 7, e.At, e.Event)))
		}, 7, AuditEdited},
		{"delete one entry", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s, `DELETE FROM audit_log WHERE seq = 7`)
		}, 7, AuditMissing},
		{"delete one entry and renumber the rest", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s, `DELETE FROM audit_log WHERE seq = 7`,
				`UPDATE audit_log SET seq = -seq WHERE seq > 7`,
				`UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0`,
				`UPDATE audit_head SET seq = seq - 1 WHERE id = 1`)
		}, 7, AuditMissing},
		{"delete the newest entry", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s, fmt.Sprintf(`DELETE FROM audit_log WHERE seq = %d`, n))
		}, n, AuditMissing},
		{"swap two entries", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s, `UPDATE audit_log SET seq = -1 WHERE seq = 7`,
				`UPDATE audit_log SET seq = 7 WHERE seq = 8`,
				`UPDATE audit_log SET seq = 8 WHERE seq = -1`)
		}, 7, AuditReordered},
		{"swap two entries' contents", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s,
				fmt.Sprintf(`UPDATE audit_log SET event = '%s', at = %d WHERE seq = 7`, es[7].Event, millis(es[7].At)),
				fmt.Sprintf(`UPDATE audit_log SET event = '%s', at = %d WHERE seq = 8`, es[6].Event, millis(es[6].At)))
		}, 7, AuditEdited},
		{"move the head back", func(t *testing.T, s *Store, es []AuditEntry) {
			tamper(t, s, fmt.Sprintf(`UPDATE audit_head SET hash = '%s' WHERE id = 1`, GenesisHash))
		}, n, AuditEdited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := h.fresh(t)
			es := chain(t, s, n)
			wantIntact(t, verify(t, s, VerifyAuditOptions{}), n, AuditHead{n, es[n-1].Hash})
			tt.tamper(t, s, es)
			v := verify(t, s, VerifyAuditOptions{})
			wantBreak(t, v, tt.wantSeq, tt.wantReason)
			if tt.wantSeq > 1 && v.Head.Hash != es[tt.wantSeq-2].Hash {
				t.Errorf("last intact head = %s, want #%d:%s", v.Head, tt.wantSeq-1, es[tt.wantSeq-2].Hash)
			}
		})
	}
}

func testAuditCheckpoints(t *testing.T, h harness) {
	const n = 20
	s := h.fresh(t)
	es := chain(t, s, n)
	full := func(seq int64) AuditCheckpoint { return AuditCheckpoint{Seq: seq, Hash: es[seq-1].Hash} }
	short := func(seq int64) AuditCheckpoint { return AuditCheckpoint{Seq: seq, Hash: es[seq-1].Hash[:8]} }
	wantIntact(t, verify(t, s, VerifyAuditOptions{Checkpoints: []AuditCheckpoint{full(n), short(5), full(12)}}), n, AuditHead{n, es[n-1].Hash})

	wrong := short(5)
	wrong.Hash = strings.Repeat("0", 8)
	wantBreak(t, verify(t, s, VerifyAuditOptions{Checkpoints: []AuditCheckpoint{wrong}}), 5, AuditEdited)
	if _, err := s.VerifyAudit(t.Context(), VerifyAuditOptions{From: AuditCheckpoint{Seq: 3, Hash: "abc"}}); err == nil {
		t.Error("a starting checkpoint without a full hash was accepted")
	}

	t.Run("rewritten chain", func(t *testing.T) {
		// An attacker who edits entry 7 and recomputes every later hash and the head leaves a
		// chain that is consistent in itself: only anchors kept outside the database show it.
		tamper(t, s, `UPDATE audit_log SET event = '{"action":"denied","n":6,"request_id":"R0"}' WHERE seq = 7`)
		forged := rehashFrom(t, s, 7)
		wantIntact(t, verify(t, s, VerifyAuditOptions{}), n, forged)
		wantBreak(t, verify(t, s, VerifyAuditOptions{Checkpoints: []AuditCheckpoint{full(n)}}), n, AuditEdited)
		wantBreak(t, verify(t, s, VerifyAuditOptions{Checkpoints: []AuditCheckpoint{short(9), full(n)}}), 9, AuditEdited)
		wantIntact(t, verify(t, s, VerifyAuditOptions{Checkpoints: []AuditCheckpoint{full(6)}}), n, forged)
	})
	t.Run("truncated chain and head", func(t *testing.T) {
		s := h.fresh(t)
		es := chain(t, s, n)
		tamper(t, s, `DELETE FROM audit_log WHERE seq > 15`,
			fmt.Sprintf(`UPDATE audit_head SET seq = 15, hash = '%s' WHERE id = 1`, es[14].Hash))
		wantIntact(t, verify(t, s, VerifyAuditOptions{}), 15, AuditHead{15, es[14].Hash})
		wantBreak(t, verify(t, s, VerifyAuditOptions{Checkpoints: []AuditCheckpoint{{Seq: n, Hash: es[n-1].Hash}}}), 16, AuditMissing)
	})
}

func testAuditArchivedPrefix(t *testing.T, h harness) {
	const n = 20
	s := h.fresh(t)
	es := chain(t, s, n)
	// Archiving (docs/audit.md): export entries up to 10, keep the export, delete them.
	tamper(t, s, `DELETE FROM audit_log WHERE seq <= 10`)
	wantBreak(t, verify(t, s, VerifyAuditOptions{}), 1, AuditMissing)
	from := AuditCheckpoint{Seq: 10, Hash: es[9].Hash}
	v := verify(t, s, VerifyAuditOptions{From: from, Checkpoints: []AuditCheckpoint{{Seq: 10, Hash: es[9].Hash[:8]}, {Seq: 15, Hash: es[14].Hash}}})
	if v.Break != nil || v.Count != 10 || v.Head != (AuditHead{n, es[n-1].Hash}) {
		t.Fatalf("verify from #10 = %+v, want 10 intact entries up to #%d", v, n)
	}
	// Appends continue after an archive.
	next, err := s.AppendAudit(t.Context(), auditEvent("R1", "approved", 99))
	if err != nil || next.Seq != n+1 || next.PrevHash != es[n-1].Hash {
		t.Fatalf("append after archiving = %+v, %v", next, err)
	}
	wrongFrom := AuditCheckpoint{Seq: 10, Hash: es[8].Hash}
	v = verify(t, s, VerifyAuditOptions{From: wrongFrom})
	if v.Break == nil || v.Break.Seq != 11 || v.Break.Reason != AuditEdited || v.Count != 0 {
		t.Fatalf("verify from a wrong hash = %+v, want a break at #11", v)
	}
	if _, err := s.VerifyAudit(t.Context(), VerifyAuditOptions{From: from, Checkpoints: []AuditCheckpoint{{Seq: 5, Hash: es[4].Hash}}}); err == nil {
		t.Error("a checkpoint inside the archived prefix was accepted")
	}
	v = verify(t, s, VerifyAuditOptions{From: AuditCheckpoint{Seq: 30, Hash: es[0].Hash}})
	if v.Break == nil || v.Break.Reason != AuditMissing || v.Break.Seq != n+2 {
		t.Fatalf("verify from beyond the head = %+v, want missing at #%d", v, n+2)
	}
}

func testAuditConcurrent(t *testing.T, h harness) {
	a, b := h.pair(t)
	const (
		workers  = 8
		requests = 6 // per worker
	)
	var (
		mu       sync.Mutex
		appended int64
		seqs     = map[int64]bool{}
	)
	record := func(seq int64) error {
		mu.Lock()
		defer mu.Unlock()
		if seqs[seq] {
			return fmt.Errorf("seq %d handed out twice", seq)
		}
		seqs[seq] = true
		appended++
		return nil
	}
	// Every worker shares one hot request too, so compare-and-set retries race the appends.
	mustCreate(t, a, newRequest("HOT", t0, 1), Outbox{Kind: "audit", Audit: auditEvent("HOT", "requested", 0)})
	appended, seqs[1] = 1, true
	start := make(chan struct{})
	g, ctx := errgroup.WithContext(t.Context())
	for w := range workers {
		s := []*Store{a, b}[w%2]
		g.Go(func() error {
			<-start
			for i := range requests {
				id := fmt.Sprintf("W%dR%d", w, i)
				if err := s.Create(ctx, newRequest(id, t0, w*100+i), Outbox{Kind: "audit", Audit: auditEvent(id, "requested", i)}); err != nil {
					return err
				}
				if _, err := s.Update(ctx, id, func(r *approval.Request) ([]Outbox, error) {
					return []Outbox{{Kind: "audit", Audit: auditEvent(id, "approved", i)}}, approveErr(r.Approve("UAPP", t0, approval.Policy{}))
				}); err != nil {
					return err
				}
				if _, err := s.Update(ctx, "HOT", func(r *approval.Request) ([]Outbox, error) {
					r.Reason = id
					return []Outbox{{Audit: auditEvent("HOT", "touched", w*100+i)}}, nil
				}); err != nil {
					return err
				}
				// A failing transition between successful ones must not leave a hole.
				if _, err := s.Update(ctx, id, func(r *approval.Request) ([]Outbox, error) {
					return []Outbox{{Audit: auditEvent(id, "never", i)}}, errors.New("refused")
				}); err == nil {
					return errors.New("a refused update succeeded")
				}
				e, err := s.AppendAudit(ctx, auditEvent(id, "noted", i))
				if err != nil {
					return err
				}
				if err := record(e.Seq); err != nil {
					return err
				}
				mu.Lock()
				appended += 3 // requested, approved, touched
				mu.Unlock()
			}
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatalf("concurrent writers: %v", err)
	}
	want := int64(1 + workers*requests*4)
	if appended != want {
		t.Fatalf("test bookkeeping: %d appends, want %d", appended, want)
	}
	es := auditEntries(t, b)
	v := verify(t, a, VerifyAuditOptions{})
	wantIntact(t, v, want, AuditHead{want, es[len(es)-1].Hash})
	if int64(len(es)) != want {
		t.Fatalf("%d entries stored, want %d", len(es), want)
	}
	for i, e := range es {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d: a gap or a duplicate", i, e.Seq)
		}
		if strings.Contains(string(e.Event), `"never"`) {
			t.Fatalf("a rolled-back event was stored: %s", e.Event)
		}
		if i > 0 && e.At.Before(es[i-1].At) {
			t.Fatalf("entry %d is dated before entry %d", e.Seq, e.Seq-1)
		}
	}
	// The outbox rows cite distinct entries, each the one holding their event.
	rows, err := a.db.QueryContext(t.Context(), `SELECT audit_seq, audit_hash FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cited := map[int64]bool{}
	for rows.Next() {
		var (
			seq  int64
			hash string
		)
		if err := rows.Scan(&seq, &hash); err != nil {
			t.Fatal(err)
		}
		if cited[seq] || seq < 1 || seq > want || es[seq-1].Hash != hash {
			t.Fatalf("outbox row cites #%d %s, which is a duplicate or not that entry", seq, hash)
		}
		cited[seq] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cited) != 1+workers*requests*2 {
		t.Errorf("%d outbox rows cite an entry, want %d", len(cited), 1+workers*requests*2)
	}
}

func testAuditClaimCheckpoint(t *testing.T, h harness) {
	a, b := h.pair(t)
	chain(t, a, 3)
	want := head(t, a)
	const day = 24 * time.Hour
	claimAt := func(s *Store, now time.Time) (AuditHead, bool) {
		t.Helper()
		got, ok, err := s.ClaimCheckpoint(t.Context(), now, day)
		if err != nil {
			t.Fatalf("ClaimCheckpoint: %v", err)
		}
		return got, ok
	}
	if got, ok := claimAt(a, t0); !ok || got != want {
		t.Fatalf("first claim = %s, %v; want %s, true", got, ok, want)
	}
	if _, ok := claimAt(b, t0.Add(23*time.Hour)); ok {
		t.Fatal("a second claim within the day succeeded")
	}
	// Replicas racing for the next day's checkpoint: exactly one wins.
	next := t0.Add(day)
	var wins sync.Map
	var g errgroup.Group
	for i := range 8 {
		g.Go(func() error {
			got, ok, err := []*Store{a, b}[i%2].ClaimCheckpoint(t.Context(), next, day)
			if ok {
				wins.Store(i, got)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	n := 0
	wins.Range(func(_, v any) bool {
		n++
		if v.(AuditHead) != want {
			t.Errorf("the winner got head %s, want %s", v, want)
		}
		return true
	})
	if n != 1 {
		t.Fatalf("%d replicas claimed the same checkpoint, want 1", n)
	}
	if _, _, err := a.ClaimCheckpoint(t.Context(), next, 0); err == nil {
		t.Error("a zero period was accepted")
	}
}

func testAuditExportRange(t *testing.T, h harness) {
	s := h.fresh(t)
	clock := t0
	s.now = func() time.Time { return clock }
	for i := range 6 {
		if _, err := s.AppendAudit(t.Context(), auditEvent("R", "tick", i)); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Hour)
	}
	// A replica whose clock lags appends at its predecessor's time, never before it.
	clock = t0
	lagging, err := s.AppendAudit(t.Context(), auditEvent("R", "lagging", 6))
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(5 * time.Hour); !lagging.At.Equal(want) {
		t.Errorf("an append from a lagging clock is dated %s, want its predecessor's %s", lagging.At, want)
	}
	seqs := func(since, until time.Time) []int64 {
		t.Helper()
		var got []int64
		if err := s.ExportAudit(t.Context(), since, until, func(e AuditEntry) error {
			got = append(got, e.Seq)
			return nil
		}); err != nil {
			t.Fatalf("ExportAudit: %v", err)
		}
		return got
	}
	tests := []struct {
		name         string
		since, until time.Time
		want         []int64
	}{
		{"everything", time.Time{}, time.Time{}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"since inclusive, until exclusive", t0.Add(time.Hour), t0.Add(3 * time.Hour), []int64{2, 3}},
		{"open end", t0.Add(4 * time.Hour), time.Time{}, []int64{5, 6, 7}},
		{"after the last", t0.Add(6 * time.Hour), time.Time{}, nil},
		{"before the first", t0.Add(-time.Hour), t0, nil},
	}
	for _, tt := range tests {
		if got := seqs(tt.since, tt.until); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: exported %v, want %v", tt.name, got, tt.want)
		}
	}
	if err := s.ExportAudit(t.Context(), t0, t0, func(AuditEntry) error { return nil }); err == nil {
		t.Error("an empty range was accepted")
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.ExportAudit(t.Context(), time.Time{}, time.Time{}, func(AuditEntry) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ExportAudit with a failing fn = %v after %d calls, want stop after 1", err, calls)
	}
}

func TestAuditOpenExisting(t *testing.T) {
	t.Parallel()
	url := "sqlite:" + filepath.Join(t.TempDir(), "bot.db")
	if s, err := OpenExisting(t.Context(), url); err == nil || !strings.Contains(err.Error(), "no metabase-bot schema") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("OpenExisting on an empty database = %v, want a no-schema error", err)
	}
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := s.AppendAudit(t.Context(), auditEvent("R1", "requested", 0))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := OpenExisting(t.Context(), url)
	if err != nil {
		t.Fatalf("OpenExisting on a migrated database: %v", err)
	}
	wantIntact(t, verify(t, ro, VerifyAuditOptions{}), 1, AuditHead{1, e.Hash})
	ro.Close()

	// A database the upgraded bot has not started on yet is refused, not upgraded.
	tamper(t, s, `DELETE FROM schema_migrations WHERE version = 2`)
	if ro, err := OpenExisting(t.Context(), url); err == nil || !strings.Contains(err.Error(), "lacks migration 0002_audit_log.sql") {
		if ro != nil {
			ro.Close()
		}
		t.Fatalf("OpenExisting on an old schema = %v, want a lacking-migration error", err)
	}
	if got := schemaVersions(t, s); slices.Contains(got, 2) {
		t.Errorf("OpenExisting changed schema_migrations to %v", got)
	}
}

// farSeq is a sequence number no append reaches: a row written there by hand, by someone with
// write access to the table.
const farSeq = int64(1) << 62

// verifyWithin runs VerifyAudit and fails the test when it does not answer in time, instead of
// waiting for ever on a verification that does not end.
func verifyWithin(t *testing.T, s *Store, opts VerifyAuditOptions) AuditVerification {
	t.Helper()
	type result struct {
		v   AuditVerification
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := s.VerifyAudit(t.Context(), opts)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("VerifyAudit: %v", r.err)
		}
		return r.v
	case <-time.After(20 * time.Second):
		t.Fatal("VerifyAudit did not answer within 20s")
		return AuditVerification{}
	}
}

// testAuditEnormousSeq: a row stored at a sequence number far beyond the head neither hides
// from verification nor keeps it from answering when it looks for where an edited entry was
// written.
func testAuditEnormousSeq(t *testing.T, h harness) {
	const n = 20
	t.Run("alone", func(t *testing.T) {
		s := h.fresh(t)
		es := chain(t, s, n)
		e := es[4]
		tamper(t, s, fmt.Sprintf(`INSERT INTO audit_log (seq, at, event, prev_hash, hash) VALUES (%d, %d, '%s', '%s', '%s')`,
			farSeq, millis(e.At), e.Event, e.PrevHash, e.Hash))
		v := verifyWithin(t, s, VerifyAuditOptions{})
		if v.Break == nil || v.Break.Seq != farSeq {
			t.Fatalf("verify = %+v; want a break at the row stored as #%d, beyond the head #%d", v, farSeq, n)
		}
		if v.Count != n || v.Head != (AuditHead{n, es[n-1].Hash}) {
			t.Errorf("verify counted %d intact entries up to %s; want %d up to #%d", v.Count, v.Head, n, n)
		}
	})
	t.Run("with an edited entry", func(t *testing.T) {
		s := h.fresh(t)
		es := chain(t, s, n)
		e := es[4]
		tamper(t, s, fmt.Sprintf(`INSERT INTO audit_log (seq, at, event, prev_hash, hash) VALUES (%d, %d, '%s', '%s', '%s')`,
			farSeq, millis(e.At), e.Event, e.PrevHash, e.Hash),
			`UPDATE audit_log SET event = '{"action":"denied","n":6,"request_id":"R0"}' WHERE seq = 7`)
		wantBreak(t, verifyWithin(t, s, VerifyAuditOptions{}), 7, AuditEdited)
	})
}

// TestAuditWrittenSeqCancelled: the search for where an entry was written stops when its
// context ends, however far it still has to go.
func TestAuditWrittenSeqCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e := AuditEntry{Seq: 7, At: t0, Event: auditEvent("R0", "approved", 6), PrevHash: GenesisHash, Hash: strings.Repeat("0", 64)}
	done := make(chan error, 1)
	go func() {
		_, _, err := writtenSeq(ctx, e, farSeq)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("writtenSeq on a cancelled context = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writtenSeq ignored its cancelled context")
	}
}
