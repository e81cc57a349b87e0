package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/store"
)

// auditUsage is printed for `metabase-bot audit --help` and after a usage error.
const auditUsage = `usage:
  metabase-bot audit verify [--checkpoint SEQ:HASH]... [--from SEQ:HASH]
      Walk the audit log and print its entry count and head, or the first broken
      entry and why (edited, missing, reordered). Exit 0 when intact, 1 when not.
  metabase-bot audit export --since DATE [--until DATE] [--format jsonl|csv]
      Write the entries appended from --since (inclusive) to --until to stdout.
      DATE is YYYY-MM-DD (UTC; as --until, that whole day is included) or RFC 3339.

Both read only DATABASE_URL (or DATABASE_URL_FILE). See docs/audit.md.
`

// exportTime is how entry times are written: RFC 3339 in UTC with exactly three fractional
// digits, the precision they are stored and hashed with.
const exportTime = "2006-01-02T15:04:05.000Z07:00"

// csvHeader is the first row of `audit export --format csv`, documented in docs/audit.md.
var csvHeader = []string{"seq", "time", "at_ms", "request_id", "action", "actor", "event", "prev_hash", "hash"}

// errUsage marks a mistake in the command line or the environment: exit status 2.
var errUsage = errors.New("usage")

// runAudit runs `metabase-bot audit SUBCOMMAND`. It needs no Slack or Metabase settings, so an
// auditor can run it with database access alone.
func runAudit(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "metabase-bot audit: a subcommand is required\n"+auditUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "verify":
		var intact bool
		intact, err = auditVerify(ctx, args[1:], environ, stdout, stderr)
		if err == nil && !intact {
			return 1
		}
	case "export":
		err = auditExport(ctx, args[1:], environ, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, auditUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "metabase-bot audit: unknown subcommand %q\n%s", args[0], auditUsage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "metabase-bot audit %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "metabase-bot audit %s: %v\n", args[0], err)
		return 1
	}
}

// auditFlags returns a flag set for subcommand that reports to stderr and prints help to stdout.
func auditFlags(name string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("metabase-bot audit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stdout, auditUsage+"\nflags of "+name+":\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	return fs
}

// parseAuditFlags parses args, turning every mistake into errUsage (the flag package has
// already printed it) and refusing stray arguments.
func parseAuditFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v (see --help)", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see --help)", errUsage, fs.Arg(0))
	}
	return nil
}

// auditVerify is `audit verify`; it reports whether the chain is intact.
func auditVerify(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) (bool, error) {
	var opts store.VerifyAuditOptions
	fs := auditFlags("verify", stdout, stderr)
	fs.Func("checkpoint", "a head copied from Slack, `SEQ:HASH` (8 to 64 hex digits); repeatable", func(s string) error {
		cp, err := store.ParseAuditCheckpoint(s)
		if err != nil {
			return err
		}
		opts.Checkpoints = append(opts.Checkpoints, cp)
		return nil
	})
	fs.Func("from", "start after an archived prefix: the last archived entry, `SEQ:HASH` with the full hash", func(s string) error {
		cp, err := store.ParseAuditCheckpoint(s)
		if err != nil {
			return err
		}
		if len(cp.Hash) != len(store.GenesisHash) {
			return fmt.Errorf("checkpoint %q: --from needs the full 64-digit hash", s)
		}
		opts.From = cp
		return nil
	})
	if err := parseAuditFlags(fs, args); err != nil {
		return false, err
	}
	for _, cp := range opts.Checkpoints {
		if opts.From.Seq > 0 && cp.Seq < opts.From.Seq {
			return false, fmt.Errorf("%w: --checkpoint %d:%s is in the archived prefix before --from %d: check it against the archive", errUsage, cp.Seq, cp.Hash, opts.From.Seq)
		}
	}
	st, err := openAuditStore(ctx, environ)
	if err != nil {
		return false, err
	}
	defer st.Close()
	v, err := st.VerifyAudit(ctx, opts)
	if err != nil {
		return false, err
	}
	scope := "entries"
	if v.Count == 1 {
		scope = "entry"
	}
	if opts.From.Seq > 0 {
		scope += fmt.Sprintf(" after the archived prefix ending at #%d", opts.From.Seq)
	}
	if v.Break != nil {
		fmt.Fprintf(stdout, "audit log BROKEN at #%d (%s): %s\n", v.Break.Seq, v.Break.Reason, v.Break.Detail)
		fmt.Fprintf(stdout, "%d %s intact before it, up to #%d %s\n", v.Count, scope, v.Head.Seq, v.Head.Hash)
		return false, nil
	}
	fmt.Fprintf(stdout, "audit log intact: %d %s, head #%d %s\n", v.Count, scope, v.Head.Seq, v.Head.Hash)
	for _, cp := range opts.Checkpoints {
		fmt.Fprintf(stdout, "checkpoint #%d %s matches\n", cp.Seq, cp.Hash)
	}
	return true, nil
}

// auditExport is `audit export`.
func auditExport(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) error {
	var sinceText, untilText, format string
	fs := auditFlags("export", stdout, stderr)
	fs.StringVar(&sinceText, "since", "", "first `DATE` to export (required): YYYY-MM-DD (UTC) or RFC 3339")
	fs.StringVar(&untilText, "until", "", "end `DATE`: YYYY-MM-DD includes that day; an RFC 3339 time is exclusive")
	fs.StringVar(&format, "format", "jsonl", "output `format`: jsonl (one entry per line) or csv (with a header row)")
	if err := parseAuditFlags(fs, args); err != nil {
		return err
	}
	if sinceText == "" {
		return fmt.Errorf("%w: --since DATE is required (see --help)", errUsage)
	}
	since, err := parseAuditDate("--since", sinceText, false)
	if err != nil {
		return err
	}
	var until time.Time
	if untilText != "" {
		if until, err = parseAuditDate("--until", untilText, true); err != nil {
			return err
		}
		if !until.After(since) {
			return fmt.Errorf("%w: --until %s is not after --since %s", errUsage, untilText, sinceText)
		}
	}
	var write func(w *bufio.Writer, e store.AuditEntry) error
	var cw *csv.Writer
	out := bufio.NewWriterSize(stdout, 64<<10)
	switch format {
	case "jsonl":
		write = writeJSONLine
	case "csv":
		cw = csv.NewWriter(out)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		write = func(_ *bufio.Writer, e store.AuditEntry) error { return writeCSVRow(cw, e) }
	default:
		return fmt.Errorf("%w: --format %q: want jsonl or csv", errUsage, format)
	}
	st, err := openAuditStore(ctx, environ)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.ExportAudit(ctx, since, until, func(e store.AuditEntry) error { return write(out, e) }); err != nil {
		return err
	}
	if cw != nil {
		if cw.Flush(); cw.Error() != nil {
			return fmt.Errorf("write: %w", cw.Error())
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// parseAuditDate reads YYYY-MM-DD (midnight UTC; the next midnight when endOfDay, so an --until
// date includes its day) or an RFC 3339 time.
func parseAuditDate(name, s string, endOfDay bool) (time.Time, error) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if endOfDay {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q: want YYYY-MM-DD (UTC) or RFC 3339 like 2025-03-01T09:00:00Z", errUsage, name, s)
	}
	return t, nil
}

// writeJSONLine writes e as one JSON object on one line, the event embedded as stored: its bytes
// between "event": and ,"prev_hash" are exactly the bytes that were hashed.
func writeJSONLine(w *bufio.Writer, e store.AuditEntry) error {
	w.WriteString(`{"seq":`)
	w.WriteString(strconv.FormatInt(e.Seq, 10))
	w.WriteString(`,"time":"`)
	w.WriteString(e.At.UTC().Format(exportTime))
	w.WriteString(`","at_ms":`)
	w.WriteString(strconv.FormatInt(e.At.UnixMilli(), 10))
	w.WriteString(`,"event":`)
	if json.Valid(e.Event) {
		w.Write(e.Event)
	} else {
		// Only a tampered row holds invalid JSON; quote it so the line still parses and
		// verify points at it.
		q, _ := json.Marshal(string(e.Event))
		w.Write(q)
	}
	w.WriteString(`,"prev_hash":`)
	q, _ := json.Marshal(e.PrevHash)
	w.Write(q)
	w.WriteString(`,"hash":`)
	q, _ = json.Marshal(e.Hash)
	w.Write(q)
	_, err := w.WriteString("}\n")
	return err
}

// eventSummary is what the CSV lifts out of an event into columns of their own, for filtering
// in a spreadsheet; the event column stays the authoritative record.
type eventSummary struct {
	RequestID any `json:"request_id"`
	Action    any `json:"action"`
	Actor     any `json:"actor"`
}

// writeCSVRow writes e under csvHeader.
func writeCSVRow(w *csv.Writer, e store.AuditEntry) error {
	var sum eventSummary
	_ = json.Unmarshal(e.Event, &sum) // a tampered event still gets its row, with empty summaries
	return w.Write([]string{
		strconv.FormatInt(e.Seq, 10),
		e.At.UTC().Format(exportTime),
		strconv.FormatInt(e.At.UnixMilli(), 10),
		csvCell(sum.RequestID), csvCell(sum.Action), csvCell(sum.Actor),
		string(e.Event), e.PrevHash, e.Hash,
	})
}

// csvCell formats a summary value: strings as they are, anything else empty. A leading = + - @
// gets a ' so a spreadsheet shows the text instead of running it as a formula (OWASP "CSV
// Injection").
func csvCell(v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// openAuditStore opens DATABASE_URL read the way the bot reads it (DATABASE_URL_FILE, the same
// default), without looking at any other variable and without migrating the schema. It refuses a
// SQLite file that does not exist: opening would create an empty database.
func openAuditStore(ctx context.Context, environ map[string]string) (*store.Store, error) {
	var problems problems
	only := map[string]string{}
	for _, name := range []string{"DATABASE_URL", "DATABASE_URL_FILE"} {
		if v, ok := environ[name]; ok {
			only[name] = v
		}
	}
	resolved := resolveSecretFiles(only, &problems)
	if len(problems.list) > 0 {
		return nil, fmt.Errorf("%w: %s", errUsage, strings.Join(problems.list, "; "))
	}
	url := resolved["DATABASE_URL"]
	if url == "" {
		url = defaultDatabaseURL()
	}
	if scheme, rest, ok := strings.Cut(url, ":"); ok && (scheme == "sqlite" || scheme == "file") {
		path := strings.TrimPrefix(rest, "//")
		if path == ":memory:" {
			return nil, fmt.Errorf("%w: DATABASE_URL is an in-memory database, which holds no audit log", errUsage)
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w: DATABASE_URL names the SQLite file %s, which cannot be opened (%v): point DATABASE_URL at the bot's database", errUsage, path, errors.Unwrap(err))
		}
	}
	// No migrations: an auditor's account may only SELECT, and verifying must not change the
	// database it verifies.
	st, err := store.OpenExisting(ctx, url)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// defaultDatabaseURL is the bot's DATABASE_URL default, read from its config tag so the two
// cannot drift apart.
func defaultDatabaseURL() string {
	f, _ := reflect.TypeFor[config]().FieldByName("DatabaseURL")
	return f.Tag.Get("envDefault")
}
