package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// TestUpgradeDeliversOutboxOfPreviousVersion: a database written by the previous release (its
// schema, and outbox rows holding text it had already rendered) is upgraded by this version,
// which delivers every pending row: the legacy texts exactly as written, the card rendered
// afresh, and a leave's pending "schedule the return" row turned into the scheduled return.
func TestUpgradeDeliversOutboxOfPreviousVersion(t *testing.T) {
	h := newHarness(t, nil)
	jane := h.addJane()
	path := filepath.Join(t.TempDir(), "v1.db")
	h.env["DATABASE_URL"] = "sqlite:" + path
	writeV1Database(t, path, jane.ID)

	in := h.start()
	card := h.card("MB-OLD00001")
	h.thread(card, "Written by the previous version")
	h.audit("legacy audit line of MB-OLD00001")
	h.audit("return scheduled", "MB-OLD00002-R")
	in.stop(t)

	st, err := store.Open(context.Background(), h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ret, err := st.Get(t.Context(), "MB-OLD00002-R")
	if err != nil || ret.State != approval.Scheduled || ret.ParentID != "MB-OLD00002" || len(ret.Targets) != 1 || ret.Targets[0].UserID != jane.ID {
		t.Fatalf("the leave's return = %+v (err %v), want it scheduled for jane", ret, err)
	}
	if n, err := st.PendingOutbox(t.Context()); err != nil || n != 0 {
		t.Fatalf("%d outbox rows left undelivered (err %v), want 0", n, err)
	}
}

// writeV1Database creates path with the first release's schema and rows as it wrote them: a
// pending request whose card, thread reply and audit line were still queued (texts rendered at
// enqueue time), and a finished leave whose return was still to be scheduled at delivery.
func writeV1Database(t *testing.T, path string, janeID int) {
	t.Helper()
	schema, err := os.ReadFile("testdata/schema-v1-sqlite.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	ms := now.UnixMilli()
	rfc := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339Nano) }
	pending := fmt.Sprintf(`{"id":"MB-OLD00001","source_key":"cmd:old","action":"disable","state":"pending","requester":%q,`+
		`"targets":[{"user_id":%d,"email":"jane@example.com","name":"Jane Doe"}],"reason":"Left the company","channel_id":%q,`+
		`"required_approvals":1,"created_at":%q,"expires_at":%q,"final_reminder":3600000000000,"version":1}`,
		requester, janeID, opsChannel, rfc(0), rfc(24*time.Hour))
	leave := fmt.Sprintf(`{"id":"MB-OLD00002","source_key":"cmd:old2","action":"disable","state":"succeeded","requester":%q,`+
		`"targets":[{"user_id":%d,"email":"jane@example.com","name":"Jane Doe","result":{"outcome":"done","at":%q}}],`+
		`"reason":"sabbatical","return_at":%q,"channel_id":%q,"message_ts":"1600000000.000001","required_approvals":1,`+
		`"approvals":[{"user_id":%q,"at":%q}],"decided_by":%q,"created_at":%q,"expires_at":%q,"decided_at":%q,"finished_at":%q,"version":4}`,
		requester, janeID, rfc(-time.Hour), rfc(30*24*time.Hour), opsChannel, approver, rfc(-time.Hour), approver,
		rfc(-2*time.Hour), rfc(22*time.Hour), rfc(-time.Hour), rfc(-time.Hour))
	stmts := []string{
		string(schema),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
		fmt.Sprintf(`INSERT INTO schema_migrations VALUES (1, %d)`, ms),
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("v1 schema: %v", err)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", strings.Fields(q)[0], err)
		}
	}
	exec(`INSERT INTO requests (id, source_key, state, action, requester, data, version, next_due_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
		"MB-OLD00001", "cmd:old", "pending", "disable", requester, pending, now.Add(12*time.Hour).UnixMilli(), ms, ms)
	exec(`INSERT INTO requests (id, source_key, state, action, requester, data, version, next_due_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 4, NULL, ?, ?)`,
		"MB-OLD00002", "cmd:old2", "succeeded", "disable", requester, leave, ms, ms)
	for _, id := range []string{"MB-OLD00001", "MB-OLD00002"} {
		exec(`INSERT INTO request_targets (request_id, metabase_user_id) VALUES (?, ?)`, id, janeID)
	}
	for _, row := range [][3]string{
		{"MB-OLD00001", "card", `{}`},
		{"MB-OLD00001", "thread", `{"text":"Written by the previous version: all users of request MB-OLD00001"}`},
		{"MB-OLD00001", "audit", `{"text":":memo: *requested* · legacy audit line of MB-OLD00001","event":"requested"}`},
		{"MB-OLD00002", "schedule_return", `{}`},
	} {
		exec(`INSERT INTO outbox (request_id, kind, payload, created_at) VALUES (?, ?, ?, ?)`, row[0], row[1], row[2], ms)
	}
}
