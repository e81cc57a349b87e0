package main

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Store fault tests (docs/faults.md): the bot's own database fails while people use it. The
// faults are made for real inside the tests: another connection holding SQLite's write lock,
// and a TCP proxy in front of PostgreSQL that the test cuts.

// unavailableRequest and unavailableApproval are what people are told while the store cannot
// record anything.
const (
	unavailableRequest  = "could not record the request: the database is unavailable; nothing was changed, try again"
	unavailableApproval = "could not record your approval: the database is unavailable; nothing was changed, try again"
)

// replyBudget is how soon a person must be told: Slack shows an error to a user whose command
// or click is not answered within 3 s (docs/slack.md).
const replyBudget = 3 * time.Second

// lockSQLite makes the bot's SQLite file unwritable the way another process holding its write
// lock does (a backup, a second bot on the same file), and returns the function that releases it.
// File permissions would not do: the tests run as root.
func lockSQLite(t *testing.T, databaseURL string) (release func()) {
	t.Helper()
	path := strings.TrimPrefix(databaseURL, "sqlite:")
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		db.Close()
		t.Fatalf("take the write lock: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// unwritableScenario runs a command and a click while the store cannot record anything (made
// so by fault, undone by heal) and checks what people are told and that Metabase saw no write;
// then the store comes back and the same click carries out the approval, once.
func unwritableScenario(t *testing.T, h *harness, fault func() (heal func())) {
	h.addJane()
	h.mb.AddUser(metabaseUser("joe@example.com"))
	h.start()
	base := "http://" + h.httpAddr(h.ctx())
	waitStatus(h.ctx(), t, base+"/readyz", 200)
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	st := h.openStore()
	h.drained(st) // the card is delivered and recorded before the fault
	writesBefore := h.mb.Count("DELETE", "/api/user/") + h.mb.Count("PUT", "/api/user/")

	heal := fault()
	began := time.Now()
	h.command(requester, "disable joe@example.com Contract ended")
	h.ephemeral(requester, unavailableRequest)
	failedAt := time.Now()
	if took := time.Since(began); took > replyBudget {
		t.Errorf("the requester was told after %s, want within %s", took, replyBudget)
	}
	began = time.Now()
	h.click(approver, card, "mb_approve")
	h.ephemeral(approver, unavailableApproval)
	if took := time.Since(began); took > replyBudget {
		t.Errorf("the approver was told after %s, want within %s", took, replyBudget)
	}
	if n := h.mb.Count("DELETE", "/api/user/") + h.mb.Count("PUT", "/api/user/"); n != writesBefore {
		t.Fatalf("Metabase saw %d writes while the store could record nothing", n-writesBefore)
	}
	// Not ready within 5 s of the first failed call (the command's), whatever the poll's phase.
	rctx, cancel := context.WithDeadline(h.ctx(), failedAt.Add(5*time.Second))
	defer cancel()
	body := waitStatus(rctx, t, base+"/readyz", 503)
	if !strings.Contains(body, "store") {
		t.Errorf("/readyz = %q, want it to name the store", body)
	}
	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d %q while the store fails, want 200 (a restart would not help)", code, body)
	}
	if _, metrics := get(t, base+"/metrics"); !storeErrorCounted.MatchString(metrics) {
		t.Errorf("the metric does not count the failed calls:\n%s", grepLines(metrics, "metabase_bot_store_errors_total"))
	}

	heal()
	waitStatus(h.ctx(), t, base+"/readyz", 200)
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	h.cardState(card, "Approved")
	h.drained(st)
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
	if n := h.cards("joe@example.com"); n != 0 {
		t.Errorf("%d cards for the request that could not be recorded, want none", n)
	}
	if n := h.cards("jane@example.com"); n != 1 {
		t.Errorf("%d cards for jane, want 1", n)
	}
	if n := h.audits("executed"); n != 1 {
		t.Errorf("%d executed audit lines, want 1", n)
	}
	if err := st.IntegrityCheck(h.ctx()); err != nil {
		t.Errorf("after the fault: %v", err)
	}
	if !strings.Contains(h.logs.String(), "The database failed") {
		t.Error("the first failure was not logged with its cause")
	}
}

// productionReplyTimeout is the default STORE_REPLY_TIMEOUT, which the tests of the reply budget use
// (the harness gives healthy databases more under -race).
var productionReplyTimeout = map[string]string{"STORE_REPLY_TIMEOUT": "1s"}

// The two tests of the reply budget run alone, not in parallel: they prove that a person hears
// within Slack's window with the default 1 s budget, and a healthy create must fit in that
// second before the fault, which the package's other end-to-end tests (eight at once, under
// -race) can push past it on a 2-core machine.
func TestSQLiteUnwritableTellsPeopleAndRecovers(t *testing.T) {
	h := newHarness(t, productionReplyTimeout)
	unwritableScenario(t, h, func() func() { return lockSQLite(t, h.env["DATABASE_URL"]) })
}

func TestPostgresCutTellsPeopleAndRecovers(t *testing.T) {
	u := postgresDatabaseURL(t)
	p := newPGProxy(t, u)
	h := newHarness(t, map[string]string{"DATABASE_URL": p.url, "STORE_REPLY_TIMEOUT": productionReplyTimeout["STORE_REPLY_TIMEOUT"]})
	unwritableScenario(t, h, func() func() {
		p.cut()
		return p.restore
	})
}

// pgProxy is a TCP proxy in front of PostgreSQL that a test can cut: every connection through
// it is closed, and new ones are closed as soon as they arrive, until restore. To the bot that
// is a server restarting or failing over.
type pgProxy struct {
	url string // the DATABASE_URL through the proxy

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newPGProxy(t *testing.T, databaseURL string) *pgProxy {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	p := &pgProxy{url: u.String(), conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target)
		}
	}()
	return p
}

func (p *pgProxy) serve(c net.Conn, target string) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	s, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[s] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(pair[0], pair[1]) // ends when either side closes, or the test cuts
			pair[0].Close()
			pair[1].Close()
		}()
	}
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// restore lets connections through again.
func (p *pgProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// storeErrorCounted matches a store error counted for some operation.
var storeErrorCounted = regexp.MustCompile(`(?m)^metabase_bot_store_errors_total\{operation="[a-z_]+"\} [1-9]`)

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPostgresCutBetweenApprovalAndOutcome: PostgreSQL goes away after the bot asked Metabase to
// disable a user and before it recorded that Metabase did. Once the database is back, the
// execution's lease runs out and the bot finishes the request from Metabase's state: the user
// is disabled once, and every message is delivered once.
func TestPostgresCutBetweenApprovalAndOutcome(t *testing.T) {
	t.Parallel()
	u := postgresDatabaseURL(t)
	p := newPGProxy(t, u)
	h := newHarness(t, map[string]string{"DATABASE_URL": p.url, "EXECUTION_LEASE": "5s"})
	jane := h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	st := h.openStore()
	h.drained(st)

	release := h.mb.HoldReply("DELETE", "/api/user/:id")
	h.click(approver, card, "mb_approve")
	if err := h.mb.WaitForRequests(h.ctx(), "DELETE", "/api/user/", 1); err != nil {
		t.Fatalf("the DELETE never reached Metabase: %v", err)
	}
	p.cut()
	release()
	h.waitLog(h.ctx(), "Could not record the outcome")
	p.restore()

	h.thread(card, "jane@example.com: disabled")
	h.cardState(card, "Approved")
	h.drained(st)
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active")
	}
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1: the recovery re-reads Metabase instead of acting again", n)
	}
	if n := h.inThread(card, "jane@example.com: disabled"); n != 1 {
		t.Errorf("%d outcome replies, want 1", n)
	}
	if n := h.audits("executed"); n != 1 {
		t.Errorf("%d executed audit lines, want 1", n)
	}
	if n := h.cards("jane@example.com"); n != 1 {
		t.Errorf("%d cards, want 1", n)
	}
}

// TestPostgresCutDuringOutboxDelivery: PostgreSQL goes away while the bot is posting the
// outcome of an approval to Slack, so the delivery cannot be recorded. Once the database is
// back, every message the approval owes is delivered, each once.
func TestPostgresCutDuringOutboxDelivery(t *testing.T) {
	t.Parallel()
	u := postgresDatabaseURL(t)
	p := newPGProxy(t, u)
	h := newHarness(t, map[string]string{"DATABASE_URL": p.url, "EXECUTION_LEASE": "5s"})
	h.addJane()
	h.start()
	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	st := h.openStore()
	h.drained(st)

	release := h.slack.Hold("chat.postMessage")
	h.click(approver, card, "mb_approve")
	if err := h.slack.WaitHeld(h.ctx(), "chat.postMessage", 1); err != nil {
		t.Fatalf("no outcome message was being posted: %v", err)
	}
	p.cut()
	release()
	h.waitLog(h.ctx(), "The database failed")
	p.restore()

	h.thread(card, "jane@example.com: disabled")
	h.cardState(card, "Approved")
	h.audit("executed", "jane@example.com")
	h.drained(st)
	if n := h.mb.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("DELETE calls = %d, want 1", n)
	}
	if n := h.inThread(card, "jane@example.com: disabled"); n != 1 {
		t.Errorf("%d outcome replies, want 1", n)
	}
	for _, event := range []string{"requested", "approved", "executed"} {
		if n := h.audits(event); n != 1 {
			t.Errorf("%d %s audit lines, want 1", n, event)
		}
	}
	if n := h.cards("jane@example.com"); n != 1 {
		t.Errorf("%d cards, want 1", n)
	}
}

// TestPostgresCutWhileAReturnFallsDue: PostgreSQL is away when a scheduled return falls due, so
// the timer cannot even find it. Once the database is back the return runs, once.
func TestPostgresCutWhileAReturnFallsDue(t *testing.T) {
	t.Parallel()
	u := postgresDatabaseURL(t)
	p := newPGProxy(t, u)
	h := newHarness(t, map[string]string{"DATABASE_URL": p.url, "EXECUTION_LEASE": "5s"})
	jane := h.addAdminJane()
	h.start()
	// h.leave without its race: the approval waits until the card's ts is recorded, which the
	// return copies when it is created (approval.go, Return), else its replies are dropped.
	// Far enough out that the request, its approval and its outbox are done before the cut on a
	// loaded machine under -race (at 4 s the return once ran before the cut).
	until, at := returnTime(10 * time.Second)
	h.command(requester, "disable jane@example.com until "+until+" Parental leave")
	card := h.card("jane@example.com")
	st := h.openStore()
	h.drained(st)
	h.click(approver, card, "mb_approve")
	h.thread(card, "will be re-enabled automatically")
	h.drained(st)

	p.cut()
	const missed = "Could not look for due requests"
	var before int
	h.eventually("the return to fall due while the store is away", func() bool {
		if time.Now().Before(at) {
			before = strings.Count(h.logs.String(), missed)
			return false
		}
		// A timer tick after the return fell due failed too.
		return strings.Count(h.logs.String(), missed) > before
	})
	if n := h.exactCount("PUT", "/api/user/"+strconv.Itoa(jane.ID)+"/reactivate"); n != 0 {
		t.Fatalf("the return ran while the store was away (%d reactivate calls)", n)
	}
	p.restore()

	h.thread(card, "jane@example.com: enabled")
	h.audit("executed", "enable jane@example.com")
	h.drained(st)
	h.checkRestored(jane.ID)
	if n := h.exactCount("PUT", "/api/user/"+strconv.Itoa(jane.ID)+"/reactivate"); n != 1 {
		t.Errorf("reactivate calls = %d, want exactly 1", n)
	}
	if n := h.inThread(card, "jane@example.com: enabled"); n != 1 {
		t.Errorf("%d return replies, want 1", n)
	}
}
