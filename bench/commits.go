package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// commitsMetric is the bot's count of committed write transactions (store.Store.Commits).
const commitsMetric = "metabase_bot_store_commits_total"

// errNoCounter: the binary measured predates the commit counter.
var errNoCounter = errors.New(commitsMetric + " is not exported by this binary")

// freeAddr returns a loopback address with a free port, for the bot's HTTP_ADDR, so the bench
// knows where its /metrics is.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// commits reads the bot's commit counter from its /metrics at addr.
func commits(addr string) (int, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), commitsMetric+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return 0, errNoCounter
}

// settledCommits returns the bot's commit counter once it has stopped moving: the database can
// show a transaction committed (drained sees the outbox empty) a moment before the bot counts
// it, and a count taken in that moment would charge the commit to whatever comes next.
func settledCommits(addr string) (int, error) {
	last, err := commits(addr)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		c, err := commits(addr)
		if err != nil {
			return 0, err
		}
		if c == last {
			return c, nil
		}
		last = c
	}
	return last, nil
}

// drained waits (bounded) until the bot's outbox has nothing undelivered: every message it
// sent has been recorded, so the next commit it makes belongs to the next thing it is asked.
func drained(st *store.Store, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		n, err := st.PendingOutbox(ctx)
		if err == nil && n == 0 {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	log.Printf("the outbox did not drain within %s", d)
	return false
}

// openStore opens the bot's database from the bench's side, to read how much of its outbox is
// still pending. Open applies no migration the bot has not applied already.
func openStore(url string) *store.Store {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, url)
	if err != nil {
		log.Fatalf("open the bot's database: %v", err)
	}
	return st
}

// commitTime measures what one durable write costs on a backend: n compare-and-set updates of
// one request, one after another, each a transaction of its own (read, write, commit), on a fresh
// database of the kind the bot uses (a file in the temporary directory, or a PostgreSQL schema).
func commitTime(backend, pgBase string, n int) dist {
	var url string
	switch backend {
	case "SQLite":
		dir, err := os.MkdirTemp("", "metabase-bot-bench-commit-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		url = "sqlite:" + filepath.Join(dir, "commit.db")
	default:
		u, drop := pgSchema(pgBase)
		defer drop()
		url = u
	}
	st := openStore(url)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now()
	r := approval.Request{ID: "MB-COMMIT", Action: approval.Disable, State: approval.Pending, Requester: "UREQ",
		ChannelID: opsChannel, RequiredApprovals: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Targets: []approval.Target{{UserID: 1, Email: "commit@example.com"}}}
	if err := st.Create(ctx, r); err != nil {
		log.Fatalf("commit time: %v", err)
	}
	var ds []time.Duration
	for i := range n {
		t0 := time.Now()
		if _, err := st.Update(ctx, r.ID, func(r *approval.Request) ([]store.Outbox, error) {
			r.Reason = fmt.Sprintf("write %d", i)
			return nil, nil
		}); err != nil {
			log.Fatalf("commit time: %v", err)
		}
		ds = append(ds, time.Since(t0))
	}
	return summarize(ds)
}

// buildAt builds the bot as released from git ref, exported clean into a temporary directory, so
// the figures before a change are measured in the same run, on the same machine, as after it.
// It returns the abbreviated commit it built.
func buildAt(ref, bin string) string {
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		log.Fatalf("-before needs a git checkout: %v", err)
	}
	dir := strings.TrimSpace(string(root))
	hash, err := exec.Command("git", "-C", dir, "rev-parse", "--short", ref+"^{commit}").Output()
	if err != nil {
		log.Fatalf("-before %s: not a commit of this repository", ref)
	}
	src, err := os.MkdirTemp("", "metabase-bot-bench-before-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(src)
	export := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", dir, ref, src)
	export.Stderr = os.Stderr
	if err := export.Run(); err != nil {
		log.Fatalf("export %s: %v", ref, err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/metabase-bot")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		log.Fatalf("build %s: %v", ref, err)
	}
	return strings.TrimSpace(string(hash))
}
