package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/bot/store/storetest"
)

// auditBackends are the databases the audit commands are tested on; Postgres only when
// TEST_DATABASE_URL is set.
func auditBackends(t *testing.T) map[string]func(t *testing.T) string {
	backends := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "bot.db") },
	}
	if os.Getenv(storetest.EnvVar) != "" {
		backends["postgres"] = func(t *testing.T) string { return storetest.PostgresURL(t, "cmd_audit_") }
	} else {
		t.Log(storetest.EnvVar + " is not set: the audit commands are tested on SQLite only")
	}
	return backends
}

// runCLI runs the real program with args and only DATABASE_URL in its environment.
func runCLI(t *testing.T, dbURL string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, map[string]string{"DATABASE_URL": dbURL}, &out, &errOut)
	return code, out.String(), errOut.String()
}

// openStore opens the database at url through the store, closed when the test ends.
func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// rawDB opens url with database/sql directly, as an attacker or a seeding script would, and
// returns a function that rewrites '?' placeholders for it.
func rawDB(t *testing.T, url string) (*sql.DB, func(string) string) {
	t.Helper()
	driver, dsn, bind := "pgx", url, func(q string) string {
		n := 0
		var b strings.Builder
		for _, c := range q {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		driver, dsn, bind = "sqlite", path, func(q string) string { return q }
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, bind
}

// docHash is the entry hash exactly as docs/audit.md defines it, written from the document
// rather than from the store, so a test through it shows the two agree.
func docHash(prev string, seq, atMillis int64, event string) string {
	sum := sha256.Sum256([]byte(prev + "\n" + strconv.FormatInt(seq, 10) + "\n" + strconv.FormatInt(atMillis, 10) + "\n" + event))
	return hex.EncodeToString(sum[:])
}

// seedAudit writes n entries straight into the database at url (its schema created by
// store.Open), one every step from start, hashed by docHash, and moves the head. It is fast
// enough for 100,000 entries because it batches the inserts in one transaction.
func seedAudit(t *testing.T, url string, n int, start time.Time, step time.Duration) []string {
	t.Helper()
	openStore(t, url).Close()
	db, bind := rawDB(t, url)
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const batch = 500
	hashes := make([]string, 0, n)
	prev := store.GenesisHash
	var at int64
	for first := 1; first <= n; first += batch {
		last := min(first+batch-1, n)
		var args []any
		for seq := first; seq <= last; seq++ {
			at = start.Add(time.Duration(seq-1) * step).UnixMilli()
			ev := fmt.Sprintf(`{"action":"disable","actor":"UAPP","n":%d,"request_id":"R%06d"}`, seq, seq)
			h := docHash(prev, int64(seq), at, ev)
			args = append(args, seq, at, ev, prev, h)
			hashes = append(hashes, h)
			prev = h
		}
		q := `INSERT INTO audit_log (seq, at, event, prev_hash, hash) VALUES (?, ?, ?, ?, ?)` +
			strings.Repeat(`, (?, ?, ?, ?, ?)`, last-first)
		if _, err := tx.ExecContext(t.Context(), bind(q), args...); err != nil {
			t.Fatalf("seed entries %d-%d: %v", first, last, err)
		}
	}
	if _, err := tx.ExecContext(t.Context(), bind(`UPDATE audit_head SET seq = ?, hash = ?, at = ? WHERE id = 1`), n, prev, at); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return hashes
}

func TestAuditVerifyCommand(t *testing.T) {
	for name, newURL := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			st := openStore(t, url)
			r := approval.Request{ID: "R1", Action: approval.Disable, State: approval.Pending, Requester: "UREQ",
				ChannelID: "C1", RequiredApprovals: 1, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			ev := func(action string) json.RawMessage {
				e, err := store.CanonicalJSON(map[string]any{"request_id": "R1", "action": action, "actor": "UAPP"})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			if err := st.Create(t.Context(), r, store.Outbox{Kind: "audit", Audit: ev("requested")}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.AppendAudit(t.Context(), ev("approved")); err != nil {
				t.Fatal(err)
			}
			last, err := st.AppendAudit(t.Context(), ev("executed"))
			if err != nil {
				t.Fatal(err)
			}
			st.Close()

			code, out, errOut := runCLI(t, url, "audit", "verify")
			if want := fmt.Sprintf("audit log intact: 3 entries, head #3 %s\n", last.Hash); code != 0 || out != want {
				t.Fatalf("verify = %d, %q (stderr %q); want 0, %q", code, out, errOut, want)
			}
			code, out, _ = runCLI(t, url, "audit", "verify", "--checkpoint", "3:"+last.Hash[:8], "--checkpoint", "#2:"+strings.ToUpper(last.PrevHash))
			if code != 0 || !strings.Contains(out, "checkpoint #3 "+last.Hash[:8]+" matches") || !strings.Contains(out, "checkpoint #2 "+last.PrevHash+" matches") {
				t.Fatalf("verify with checkpoints = %d, %q", code, out)
			}
			code, out, _ = runCLI(t, url, "audit", "verify", "--checkpoint", "3:00000000")
			if code != 1 || !strings.HasPrefix(out, "audit log BROKEN at #3 (edited): ") {
				t.Fatalf("verify against a wrong checkpoint = %d, %q", code, out)
			}

			db, _ := rawDB(t, url)
			if _, err := db.ExecContext(t.Context(), `UPDATE audit_log SET event = '{"action":"denied","actor":"UAPP","request_id":"R1"}' WHERE seq = 2`); err != nil {
				t.Fatal(err)
			}
			code, out, _ = runCLI(t, url, "audit", "verify")
			if !strings.HasPrefix(out, "audit log BROKEN at #2 (edited): ") || !strings.Contains(out, "1 entry intact before it, up to #1 ") || code != 1 {
				t.Fatalf("verify after an edit = %d, %q; want exit 1 naming #2", code, out)
			}
		})
	}
}

// TestAuditVerifyCommandEnormousSeq: `audit verify` answers, and reports a break, when someone
// with write access stored a row at a sequence number no append reaches, alone or next to an
// edited entry (whose search for where it was written once ran up to that number).
func TestAuditVerifyCommandEnormousSeq(t *testing.T) {
	for name, newURL := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := newURL(t)
			hashes := seedAudit(t, url, 20, time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC), time.Second)
			db, bind := rawDB(t, url)
			const far = int64(1) << 62
			if _, err := db.ExecContext(t.Context(), bind(`INSERT INTO audit_log (seq, at, event, prev_hash, hash)
				SELECT ?, at, event, prev_hash, hash FROM audit_log WHERE seq = 5`), far); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, url, "audit", "verify")
			if want := fmt.Sprintf("audit log BROKEN at #%d (edited): ", far); code != 1 || !strings.HasPrefix(out, want) {
				t.Fatalf("verify with a row at #%d = %d, %q (stderr %q); want exit 1, %q...", far, code, out, errOut, want)
			}
			if _, err := db.ExecContext(t.Context(), `UPDATE audit_log SET event = '{"action":"denied"}' WHERE seq = 7`); err != nil {
				t.Fatal(err)
			}
			type result struct {
				code int
				out  string
			}
			done := make(chan result, 1)
			go func() {
				code, out, _ := runCLI(t, url, "audit", "verify")
				done <- result{code, out}
			}()
			select {
			case r := <-done:
				if r.code != 1 || !strings.HasPrefix(r.out, "audit log BROKEN at #7 (edited): ") || !strings.Contains(r.out, hashes[5]) {
					t.Fatalf("verify with an edited entry and a row at #%d = %d, %q; want exit 1 naming #7 after #6 %s", far, r.code, r.out, hashes[5])
				}
			case <-time.After(20 * time.Second):
				t.Fatal("verify with an edited entry and a row far beyond the head did not answer within 20s")
			}
		})
	}
}

func TestAuditVerifyFromArchive(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "bot.db")
	hashes := seedAudit(t, url, 30, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Minute)
	db, _ := rawDB(t, url)
	if _, err := db.ExecContext(t.Context(), `DELETE FROM audit_log WHERE seq <= 10`); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI(t, url, "audit", "verify"); code != 1 || !strings.HasPrefix(out, "audit log BROKEN at #1 (missing)") {
		t.Fatalf("verify of an archived log without --from = %d, %q", code, out)
	}
	code, out, errOut := runCLI(t, url, "audit", "verify", "--from", "10:"+hashes[9], "--checkpoint", "30:"+hashes[29])
	if want := fmt.Sprintf("audit log intact: 20 entries after the archived prefix ending at #10, head #30 %s\n", hashes[29]); code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("verify --from = %d, %q (stderr %q); want %q", code, out, errOut, want)
	}
}

func TestAuditExportCommand(t *testing.T) {
	for name, newURL := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
			hashes := seedAudit(t, url, 72, start, time.Hour) // three days, one entry an hour

			code, out, errOut := runCLI(t, url, "audit", "export", "--since", "2025-03-02", "--until", "2025-03-02")
			if code != 0 {
				t.Fatalf("export = %d, stderr %q", code, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 24 {
				t.Fatalf("export of one day wrote %d lines, want 24", len(lines))
			}
			for i, line := range lines {
				var e struct {
					Seq      int64           `json:"seq"`
					Time     string          `json:"time"`
					AtMs     int64           `json:"at_ms"`
					Event    json.RawMessage `json:"event"`
					PrevHash string          `json:"prev_hash"`
					Hash     string          `json:"hash"`
				}
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
				}
				seq := int64(25 + i)
				at := start.Add(time.Duration(seq-1) * time.Hour)
				if e.Seq != seq || e.Time != at.Format("2006-01-02T15:04:05.000Z") || e.AtMs != at.UnixMilli() || e.Hash != hashes[seq-1] {
					t.Fatalf("line %d = %s; want entry #%d at %s", i, line, seq, at)
				}
				// The line carries everything needed to recompute the hash by the document.
				if docHash(e.PrevHash, e.Seq, e.AtMs, string(e.Event)) != e.Hash {
					t.Fatalf("line %d does not recompute to its hash: %s", i, line)
				}
			}

			code, out, errOut = runCLI(t, url, "audit", "export", "--since", "2025-03-03T22:00:00Z", "--format", "csv")
			if code != 0 {
				t.Fatalf("csv export = %d, stderr %q", code, errOut)
			}
			header, _, _ := strings.Cut(out, "\n")
			if header != documentedCSVHeader(t) {
				t.Fatalf("csv header %q differs from docs/audit.md's %q", header, documentedCSVHeader(t))
			}
			records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatalf("csv does not parse: %v", err)
			}
			if len(records) != 3 {
				t.Fatalf("csv has %d records, want the header and entries 71 and 72", len(records))
			}
			row := records[2]
			if want := []string{"72", "2025-03-03T23:00:00.000Z", strconv.FormatInt(start.Add(71*time.Hour).UnixMilli(), 10), "R000072", "disable", "UAPP",
				`{"action":"disable","actor":"UAPP","n":72,"request_id":"R000072"}`, hashes[70], hashes[71]}; strings.Join(row, "|") != strings.Join(want, "|") {
				t.Fatalf("csv row = %q, want %q", row, want)
			}
		})
	}
}

// documentedCSVHeader is the header line docs/audit.md promises, so the test fails when the two
// part ways.
func documentedCSVHeader(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "audit.md"))
	if err != nil {
		t.Fatalf("read docs/audit.md: %v", err)
	}
	for line := range strings.SplitSeq(string(doc), "\n") {
		if strings.HasPrefix(line, "seq,") {
			return line
		}
	}
	t.Fatal("docs/audit.md has no line starting with the CSV header seq,")
	return ""
}

func TestAuditCommandUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "bot.db")
	seedAudit(t, url, 1, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Hour)
	urlFile := filepath.Join(dir, "url")
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.db")
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		wantOut string // on stdout
		wantErr string // on stderr
	}{
		{name: "no subcommand", args: []string{"audit"}, code: 2, wantErr: "a subcommand is required"},
		{name: "unknown subcommand", args: []string{"audit", "shred"}, code: 2, wantErr: `unknown subcommand "shred"`},
		{name: "help", args: []string{"audit", "--help"}, code: 0, wantOut: "metabase-bot audit export --since DATE"},
		{name: "verify help", args: []string{"audit", "verify", "-h"}, code: 0, wantOut: "-checkpoint SEQ:HASH"},
		{name: "unknown flag", args: []string{"audit", "verify", "--fix"}, code: 2, wantErr: "flag provided but not defined: -fix"},
		{name: "bad checkpoint", args: []string{"audit", "verify", "--checkpoint", "42"}, code: 2, wantErr: "want SEQ:HASH"},
		{name: "short hash for --from", args: []string{"audit", "verify", "--from", "4:3f9a1c2e"}, code: 2, wantErr: "full 64-digit hash"},
		{name: "checkpoint before --from", args: []string{"audit", "verify", "--from", "4:" + strings.Repeat("a", 64), "--checkpoint", "3:3f9a1c2e"}, code: 2, wantErr: "in the archived prefix"},
		{name: "stray argument", args: []string{"audit", "verify", "now"}, code: 2, wantErr: `unexpected argument "now"`},
		{name: "since required", args: []string{"audit", "export"}, code: 2, wantErr: "--since DATE is required"},
		{name: "bad date", args: []string{"audit", "export", "--since", "01/03/2025"}, code: 2, wantErr: `--since "01/03/2025": want YYYY-MM-DD (UTC) or RFC 3339`},
		{name: "until before since", args: []string{"audit", "export", "--since", "2025-03-02", "--until", "2025-03-01T00:00:00Z"}, code: 2, wantErr: "is not after --since"},
		{name: "bad format", args: []string{"audit", "export", "--since", "2025-03-01", "--format", "xml"}, code: 2, wantErr: `--format "xml": want jsonl or csv`},
		{name: "missing sqlite file", env: map[string]string{"DATABASE_URL": "sqlite:" + missing}, args: []string{"audit", "verify"}, code: 2, wantErr: "point DATABASE_URL at the bot's database"},
		{name: "not the bot's database", env: map[string]string{"DATABASE_URL": "sqlite:" + empty}, args: []string{"audit", "verify"}, code: 1, wantErr: "no metabase-bot schema"},
		{name: "memory database", env: map[string]string{"DATABASE_URL": "sqlite::memory:"}, args: []string{"audit", "verify"}, code: 2, wantErr: "in-memory database"},
		{name: "url file", env: map[string]string{"DATABASE_URL_FILE": urlFile, "SLACK_BOT_TOKEN_FILE": filepath.Join(dir, "nope")}, args: []string{"audit", "verify"}, code: 0, wantOut: "audit log intact: 1 entry,"},
		{name: "unreadable url file", env: map[string]string{"DATABASE_URL_FILE": filepath.Join(dir, "nope")}, args: []string{"audit", "verify"}, code: 2, wantErr: "DATABASE_URL_FILE: cannot read"},
		{name: "url and file", env: map[string]string{"DATABASE_URL": url, "DATABASE_URL_FILE": urlFile}, args: []string{"audit", "verify"}, code: 2, wantErr: "DATABASE_URL and DATABASE_URL_FILE are both set"},
		{name: "unreachable postgres", env: map[string]string{"DATABASE_URL": "postgres://bot:hunter2@127.0.0.1:1/bot?connect_timeout=2"}, args: []string{"audit", "verify"}, code: 1, wantErr: "connect to postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = map[string]string{"DATABASE_URL": url}
			}
			var out, errOut bytes.Buffer
			code := run(t.Context(), tt.args, env, &out, &errOut)
			if code != tt.code || !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Fatalf("run(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout containing %q, stderr containing %q",
					tt.args, code, out.String(), errOut.String(), tt.code, tt.wantOut, tt.wantErr)
			}
			if strings.Contains(out.String()+errOut.String(), "hunter2") {
				t.Errorf("the output leaks the database password")
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("verify created the missing SQLite file %s (err %v)", missing, err)
	}
}

// memProbe is a writer that records the peak of the Go heap in use while output flows through
// it: the export's working set, sampled at every buffered write.
type memProbe struct {
	w     io.Writer
	bytes int64
	peak  uint64
}

func (p *memProbe) Write(b []byte) (int, error) {
	p.sample()
	p.bytes += int64(len(b))
	return p.w.Write(b)
}

func (p *memProbe) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.peak = max(p.peak, ms.HeapInuse)
}

// exportMemory runs `audit export` and returns how far the heap in use rose above its level
// before the run, the allocations made, and the bytes written.
func exportMemory(t *testing.T, url string, args ...string) (growth, allocated uint64, written int64) {
	t.Helper()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	probe := &memProbe{w: io.Discard}
	var errOut bytes.Buffer
	if code := run(t.Context(), append([]string{"audit", "export"}, args...), map[string]string{"DATABASE_URL": url}, probe, &errOut); code != 0 {
		t.Fatalf("export %q = %d: %s", args, code, errOut.String())
	}
	probe.sample()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if probe.peak > before.HeapInuse {
		growth = probe.peak - before.HeapInuse
	}
	return growth, after.TotalAlloc - before.TotalAlloc, probe.bytes
}

// TestAuditExportConstantMemory exports 1,000 and then 100,000 entries from one database and
// compares the heap in use: a streaming export holds one entry at a time, so a hundred times the
// entries must not take anywhere near a hundred times the memory.
func TestAuditExportConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 entries")
	}
	// 30,000 entries against 1,000: an export that buffers grows by about half a KiB an entry
	// (15 MiB here, 54 MiB for 100,000 when it was tried), well past the bound below, while a
	// streaming one grows by GC pacing only. More entries prove no more and, under -race, cost
	// a minute of CI for a test that must run alone (it reads the whole process's heap).
	const n = 30_000
	for name, newURL := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			url := newURL(t)
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			seedAudit(t, url, n, start, time.Second)
			firstThousand := start.Add(1000 * time.Second).Format(time.RFC3339)
			for _, format := range []string{"jsonl", "csv"} {
				smallGrowth, smallAlloc, smallBytes := exportMemory(t, url, "--since", "2025-01-01", "--until", firstThousand, "--format", format)
				bigGrowth, bigAlloc, bigBytes := exportMemory(t, url, "--since", "2025-01-01", "--format", format)
				t.Logf("%s: 1,000 entries: %d bytes out, heap +%d KiB, %d KiB allocated; %d entries: %d bytes out, heap +%d KiB, %d KiB allocated",
					format, smallBytes, smallGrowth>>10, smallAlloc>>10, n, bigBytes, bigGrowth>>10, bigAlloc>>10)
				if bigBytes < (n/1000-3)*smallBytes {
					t.Fatalf("%s: the big export wrote %d bytes, the small one %d: not %d times the entries", format, bigBytes, smallBytes, n/1000)
				}
				// n/1000 times the entries; the heap may grow by GC pacing, not with the count.
				if limit := 4*smallGrowth + 4<<20; bigGrowth > limit {
					t.Errorf("%s: exporting %d entries grew the heap by %d KiB, over 4× the 1,000-entry export's %d KiB + 4 MiB: the export is not streaming",
						format, n, bigGrowth>>10, smallGrowth>>10)
				}
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			code, out, errOut := runCLI(t, url, "audit", "verify")
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("audit log intact: %d entries,", n)) {
				t.Fatalf("verify of the seeded chain = %d, %q, %q", code, out, errOut)
			}
			t.Logf("verify of %d entries: heap in use %d KiB before, %d KiB after", n, before.HeapInuse>>10, after.HeapInuse>>10)
		})
	}
}

func TestAuditParseDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		endOfDay bool
		want     time.Time
	}{
		{"2025-03-01", false, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2025-03-01", true, time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"2025-03-01T09:30:00+02:00", true, time.Date(2025, 3, 1, 7, 30, 0, 0, time.UTC)},
		{"2025-03-01T09:30:00.250Z", false, time.Date(2025, 3, 1, 9, 30, 0, 250e6, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseAuditDate("--since", tt.in, tt.endOfDay)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseAuditDate(%q, %v) = %s, %v; want %s", tt.in, tt.endOfDay, got, err, tt.want)
		}
	}
	for _, bad := range []string{"2025-02-30", "2025-3-1", "yesterday", "2025-03-01 09:00"} {
		if _, err := parseAuditDate("--since", bad, false); err == nil {
			t.Errorf("parseAuditDate(%q) accepted it", bad)
		}
	}
}

// TestAuditDefaultDatabaseURL keeps the audit commands on the bot's own default.
func TestAuditDefaultDatabaseURL(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(validEnv())
	if err != nil {
		t.Fatal(err)
	}
	if got := defaultDatabaseURL(); got != cfg.DatabaseURL || got == "" {
		t.Fatalf("defaultDatabaseURL() = %q, the bot defaults to %q", got, cfg.DatabaseURL)
	}
}
