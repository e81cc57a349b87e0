// Command bench measures metabase-bot against the project's fake Slack and fake Metabase, each
// figure beside a baseline measured in the same run, and writes docs/benchmarks.md.
//
//	go run ./bench                      # SQLite, plus PostgreSQL when TEST_DATABASE_URL is set
//	go run ./bench -pg 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// It builds the bot as released (CGO_ENABLED=0 -trimpath -ldflags "-s -w") and a bare slack-go
// Socket Mode client (bench/bareclient) as the baseline, runs both as child processes, and
// talks only to loopback. Every loop is bounded in count and time; the whole run takes a few
// minutes on 2 cores.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "docs/benchmarks.md", "where to write the results")
	pg := flag.String("pg", os.Getenv("TEST_DATABASE_URL"), "PostgreSQL URL for the load test (own schema; empty skips it)")
	n := flag.Int("n", 1000, "requests in the load test and users in the bulk test")
	flag.Parse()
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

	started := time.Now()
	r := &report{started: started}
	log.Print("resources")
	r.resources = measureResources(botBin, bareBin)
	log.Print("ack latency with Metabase at 2 s")
	r.acks = measureAcks(botBin, bareBin, 200)
	log.Print("approval overhead")
	r.overhead = measureOverhead(botBin, 100)
	log.Print("load on SQLite")
	r.loads = append(r.loads, measureLoad(botBin, "SQLite", "", *n, 50))
	if *pg != "" {
		log.Print("load on PostgreSQL")
		url, drop := pgSchema(*pg)
		r.loads = append(r.loads, measureLoad(botBin, "PostgreSQL", url, *n, 50))
		drop()
	} else {
		r.notes = append(r.notes, "PostgreSQL load skipped: no -pg flag and no TEST_DATABASE_URL.")
	}
	log.Print("bulk")
	r.bulk = measureBulk(botBin, *n, 4, 20*time.Millisecond)
	r.elapsed = time.Since(started)
	r.command = strings.TrimSpace("go run ./bench " + strings.Join(os.Args[1:], " "))
	if *pg != "" && os.Getenv("TEST_DATABASE_URL") == *pg {
		r.command = "TEST_DATABASE_URL=" + redactURL(*pg) + " " + r.command
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s in %s", *out, r.elapsed.Round(time.Second))
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

// redactURL hides a password in a database URL before it is written to the report.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "…"
	}
	return u.Redacted()
}
