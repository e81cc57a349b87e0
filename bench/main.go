// Command bench measures metabase-bot against the project's fake Slack and fake Metabase, each
// figure beside a baseline measured in the same run, and writes a Markdown report to stdout, or
// to a file with -out (docs/benchmarks.md holds the recorded run).
//
//	go run ./bench                          # SQLite, plus PostgreSQL when TEST_DATABASE_URL is set
//	go run ./bench -out docs/benchmarks.md  # refresh the record
//	go run ./bench -pg 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run ./bench -before 819e55d          # also measure the bot as of that commit, for comparison
//
// It builds the bot as released (CGO_ENABLED=0 -trimpath -ldflags "-s -w") and a bare slack-go
// Socket Mode client (bench/bareclient) as the baseline, runs both as child processes, and
// talks only to loopback. Every loop is bounded in count and time; the whole run takes a few
// minutes on 2 cores.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// options are the command-line flags.
type options struct {
	out string // report file; empty writes the report to stdout
	pg  string // PostgreSQL URL for the load test; empty skips it
	n   int    // requests in the load test and users in the bulk test
	// before is a git commit to build and measure beside this tree (approvals and load); empty
	// measures this tree only.
	before string
	// cardsOnly runs the command-to-card phase alone and prints its table.
	cardsOnly bool
}

// parseFlags reads args (without the program name); testDB is TEST_DATABASE_URL.
func parseFlags(args []string, testDB string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "out", "", "write the report to this file instead of stdout (e.g. docs/benchmarks.md to refresh the record)")
	fs.StringVar(&o.pg, "pg", testDB, "PostgreSQL URL for the load test (own schema; empty skips it)")
	fs.IntVar(&o.n, "n", 1000, "requests in the load test and users in the bulk test")
	fs.StringVar(&o.before, "before", "", "git commit to build and measure beside this tree, for before/after figures (approvals one at a time, load)")
	fs.BoolVar(&o.cardsOnly, "cards-only", false, "run only the command-to-card phase and print its table (for quick checks; the record comes from a full run)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// writeReport writes the report to the file path, or to stdout when path is empty, so a run
// never overwrites the tracked docs/benchmarks.md unless asked to.
func writeReport(path string, stdout io.Writer, report string) error {
	if path == "" {
		_, err := io.WriteString(stdout, report)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(report), 0o644)
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Getenv("TEST_DATABASE_URL"), os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	log.SetFlags(log.Ltime)

	dir, err := os.MkdirTemp("", "metabase-bot-bench-bin-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	botBin := filepath.Join(dir, "metabase-bot")
	bareBin := filepath.Join(dir, "bareclient")
	for bin, pkg := range map[string]string{botBin: "./cmd/metabase-bot", bareBin: "./bench/bareclient"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			log.Fatalf("build %s: %v", pkg, err)
		}
	}

	if o.cardsOnly {
		b := strings.Builder{}
		fmt.Fprintf(&b, "## Command to card\n\nWritten by `go run ./bench -cards-only` on %s, measuring %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), treeCommit())
		b.WriteString(cardTable(measureAllCards(botBin)))
		if err := writeReport(o.out, os.Stdout, b.String()); err != nil {
			log.Fatal(err)
		}
		return
	}
	versions := []struct{ name, bin string }{{"after", botBin}}
	r := &report{afterCommit: treeCommit()}
	if o.before != "" {
		beforeBin := filepath.Join(dir, "metabase-bot-before")
		log.Printf("building the bot as of %s", o.before)
		r.beforeCommit = buildAt(o.before, beforeBin)
		versions = append(versions, struct{ name, bin string }{"before", beforeBin})
	}
	backends := []string{"SQLite"}
	if o.pg != "" {
		backends = append(backends, "PostgreSQL")
	} else {
		r.notes = append(r.notes, "PostgreSQL skipped: no -pg flag and no TEST_DATABASE_URL.")
	}
	// dbURL returns a fresh database of backend ("" is a SQLite file the phase creates) and its drop.
	dbURL := func(backend string) (string, func()) {
		if backend == "SQLite" {
			return "", func() {}
		}
		return pgSchema(o.pg)
	}

	started := time.Now()
	r.started = started
	log.Print("resources")
	r.resources = measureResources(botBin, bareBin)
	log.Print("ack latency with Metabase at 2 s")
	r.acks = measureAcks(botBin, bareBin, 200)
	log.Print("approval overhead: baseline")
	r.baseline = measureBaseline(100)
	for _, backend := range backends {
		log.Printf("one commit on %s", backend)
		r.commitTimes = append(r.commitTimes, commitCost{backend: backend, d: commitTime(backend, o.pg, 200)})
		for _, v := range versions {
			log.Printf("approval overhead on %s, %s", backend, v.name)
			url, drop := dbURL(backend)
			r.overheads = append(r.overheads, measureOverhead(v.bin, v.name, backend, url, 100, 20))
			drop()
		}
	}
	for _, backend := range backends {
		for _, v := range versions {
			log.Printf("load on %s, %s", backend, v.name)
			url, drop := dbURL(backend)
			r.loads = append(r.loads, measureLoad(v.bin, v.name, backend, url, o.n, 50))
			drop()
		}
	}
	log.Print("bulk")
	r.bulk = measureBulk(botBin, o.n, 4, 20*time.Millisecond)
	if len(versions) > 1 {
		log.Print("bulk, before")
		b := measureBulk(versions[1].bin, o.n, 4, 20*time.Millisecond)
		r.bulkBefore = &b
	}
	log.Print("under Slack's rate limits: 50 requests, 5 approvers")
	lt := measureLimited(botBin, 50, 5)
	r.limited = &lt
	log.Print("command to card at 50 ms, 200 ms and 1 s per Metabase call")
	r.cards = measureAllCards(botBin)
	r.elapsed = time.Since(started)
	r.command = strings.TrimSpace("go run ./bench " + strings.Join(os.Args[1:], " "))
	if o.pg != "" && os.Getenv("TEST_DATABASE_URL") == o.pg {
		r.command = "TEST_DATABASE_URL=" + redactURL(o.pg) + " " + r.command
	}
	if err := writeReport(o.out, os.Stdout, r.markdown()); err != nil {
		log.Fatal(err)
	}
	if o.out != "" {
		log.Printf("wrote %s in %s", o.out, r.elapsed.Round(time.Second))
	} else {
		log.Printf("done in %s", r.elapsed.Round(time.Second))
	}
}

// bounded is a context for one phase: every wait in the driver ends by itself.
func bounded(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// machine describes where the numbers were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := exec.Command("free", "-h").Output(); err == nil {
		mem = string(b)
	}
	nproc := ""
	if b, err := exec.Command("nproc").Output(); err == nil {
		nproc = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("- CPU: %s, nproc %s (GOMAXPROCS %d)\n- %s %s/%s\n- `free -h`:\n\n```\n%s```\n",
		model, nproc, runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, mem)
}

// treeCommit names the tree being measured: its commit, marked when it has uncommitted changes.
func treeCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=7").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// redactURL hides a password in a database URL before it is written to the report.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "…"
	}
	return u.Redacted()
}
