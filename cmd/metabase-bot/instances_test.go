package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// multiHarness is a harness whose bot manages two Metabase instances: prod (h.mb) and eu.
type multiHarness struct {
	*harness
	eu *metabasetest.Server
}

func newMultiHarness(t *testing.T, overrides map[string]string) *multiHarness {
	t.Helper()
	h := newHarness(t, overrides)
	eu := metabasetest.New(t)
	delete(h.env, "METABASE_URL")
	delete(h.env, "METABASE_API_KEY")
	h.env["METABASE_INSTANCES"] = "prod,eu"
	h.env["METABASE_PROD_URL"] = h.mb.URL()
	h.env["METABASE_PROD_API_KEY"] = metabasetest.AdminAPIKey
	h.env["METABASE_EU_URL"] = eu.URL()
	h.env["METABASE_EU_API_KEY"] = metabasetest.AdminAPIKey
	// The per-instance keys are secrets too: runs after every bot process of the test stopped.
	t.Cleanup(func() {
		if strings.Contains(h.logs.String(), metabasetest.AdminAPIKey) {
			t.Error("an instance's API key appears in the bot's logs")
		}
	})
	return &multiHarness{harness: h, eu: eu}
}

func addJaneTo(s *metabasetest.Server) metabasetest.User {
	return s.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", LastName: "Doe", Active: true})
}

// downEU makes eu answer every user call with 503, as a Metabase that is down behind its proxy.
func (h *multiHarness) downEU() {
	for _, p := range []string{"/api/user", "/api/user/:id", "/api/user/current"} {
		h.eu.FailNext("", p, -1, 503, "Service Unavailable")
	}
}

// TestInstancesDisableInBoth: a user present in both instances is shown once per instance and
// disabled in both by one approval, with a result per instance.
func TestInstancesDisableInBoth(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, nil)
	pj, ej := h.addJane(), addJaneTo(h.eu)
	h.start()

	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	for _, want := range []string{"prod: id ", "eu: id ", "Left the company"} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("card lacks %q:\n%s", want, card.AllText())
		}
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "prod: jane@example.com: disabled")
	h.thread(card, "eu: jane@example.com: disabled")
	if u, _ := h.mb.UserByID(pj.ID); u.Active {
		t.Error("jane is still active in prod")
	}
	if u, _ := h.eu.UserByID(ej.ID); u.Active {
		t.Error("jane is still active in eu")
	}
	h.audit("executed", "jane@example.com")
}

// TestInstancesPresentInOne: the card says where the user is not, and only the instance where
// they are is written to.
func TestInstancesPresentInOne(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, nil)
	ej := addJaneTo(h.eu)
	h.start()

	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	for _, want := range []string{"prod: not found", "eu: id "} {
		if !strings.Contains(card.AllText(), want) {
			t.Errorf("card lacks %q:\n%s", want, card.AllText())
		}
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "eu: jane@example.com: disabled")
	if u, _ := h.eu.UserByID(ej.ID); u.Active {
		t.Error("jane is still active in eu")
	}
	if n := h.mb.Count("DELETE", "/api/user/"); n != 0 {
		t.Errorf("prod got %d DELETE calls, want none", n)
	}

	// A bare id is ambiguous with two instances; NAME:N is not.
	h.command(requester, "disable 5 bye")
	h.ephemeral(requester, "write `NAME:5`, where NAME is one of prod, eu")
	h.command(requester, "disable nobody:5 bye")
	h.ephemeral(requester, "no Metabase instance named `nobody`")
}

// TestInstancesOneDownThenRetry: an instance that does not answer is marked on the card, the
// approval acts where it can, and Retry finishes the rest once the instance is back.
func TestInstancesOneDownThenRetry(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
	pj, ej := h.addJane(), addJaneTo(h.eu)
	h.start()
	h.downEU()

	h.command(requester, "disable jane@example.com Left the company")
	card := h.card("jane@example.com")
	if !strings.Contains(card.AllText(), "eu: unreachable (will retry)") {
		t.Errorf("card does not mark eu unreachable:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "eu: jane@example.com: failed")
	h.thread(card, "prod: jane@example.com: disabled")
	reply := h.thread(card, "disabled 1, skipped 0, failed 1")
	if !reply.HasAction("mb_retry") {
		t.Fatalf("the partial result has no Retry button: %s", reply.AllText())
	}
	if u, _ := h.mb.UserByID(pj.ID); u.Active {
		t.Error("jane is still active in prod")
	}

	h.eu.ClearFailures()
	h.click(approver2, reply, "mb_retry")
	h.thread(card, "eu: jane@example.com: disabled")
	if u, _ := h.eu.UserByID(ej.ID); u.Active {
		t.Error("jane is still active in eu after the retry")
	}
}

// TestInstancesLeaveReturnsInBoth: an `until` return re-enables the user in every instance the
// leave disabled them in.
func TestInstancesLeaveReturnsInBoth(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, nil)
	pj, ej := h.addJane(), addJaneTo(h.eu)
	h.start()
	until, _ := returnTime(4 * time.Second)
	h.command(requester, "disable jane@example.com until "+until+" Parental leave")
	card := h.card("jane@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "eu: jane@example.com: disabled")
	h.thread(card, "will be re-enabled automatically")
	h.thread(card, "prod: jane@example.com: enabled")
	h.thread(card, "eu: jane@example.com: enabled")
	if u, _ := h.mb.UserByID(pj.ID); !u.Active {
		t.Error("jane is not active again in prod")
	}
	if u, _ := h.eu.UserByID(ej.ID); !u.Active {
		t.Error("jane is not active again in eu")
	}
}

// TestInstancesStatusAndInactive: status shows the user in each instance; the inactive report
// names each user's instance and its bulk request disables each in their own.
func TestInstancesStatusAndInactive(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, nil)
	old := time.Now().AddDate(0, 0, -200)
	h.addJane()
	addJaneTo(h.eu)
	stale := h.eu.AddUser(metabasetest.User{Email: "stale@example.com", FirstName: "Stale", Active: true, DateJoined: old})
	h.start()

	st := h.reply(requester, "status jane@example.com", "prod:")
	for _, want := range []string{"*prod:*", "*eu:*", "State: *active*"} {
		if !strings.Contains(st.AllText(), want) {
			t.Errorf("status lacks %q:\n%s", want, st.AllText())
		}
	}
	h.reply(requester, "status stale@example.com", "*prod*: not found")

	report := h.reply(requester, "inactive 90", "active Metabase users")
	if !strings.Contains(report.AllText(), "eu: Stale") {
		t.Errorf("the report does not name stale's instance:\n%s", report.AllText())
	}
	if u, _ := h.eu.UserByID(stale.ID); !u.Active {
		t.Fatal("the report changed someone")
	}
}

// TestInstancesReadiness: with one instance down the bot starts without waiting for it, names it
// in the logs, and /readyz is 200 listing each instance's state.
func TestInstancesReadiness(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
	h.downEU()
	h.eu.SetHealth(503, `{"status":"down"}`)
	h.start()
	addr := h.httpAddr(h.ctx())
	// Readiness follows the Socket Mode connection's events, which land a moment after the fake
	// counts the connection: wait for it as the other readiness tests do.
	body := waitStatus(h.ctx(), t, "http://"+addr+"/readyz", http.StatusOK)
	if !strings.Contains(body, "prod: ok") || !strings.Contains(body, "eu: unreachable") {
		t.Errorf("/readyz = %q, want it to name prod ok and eu unreachable", body)
	}
	if !strings.Contains(h.logs.String(), "Metabase instance eu is not reachable") {
		t.Error("the logs do not name the instance that is down")
	}
	if !strings.Contains(h.logs.String(), `instance=\"eu\"`) && !strings.Contains(h.logs.String(), `"instance":"eu"`) {
		t.Error("the log lines do not carry the instance")
	}
}

// TestInstancesRefuseUnboundRequests: a database whose open requests belong to the single
// instance ("default") does not start under a configuration without it, and says which.
func TestInstancesRefuseUnboundRequests(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, nil)
	st, err := store.Open(context.Background(), h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.Create(t.Context(), approval.Request{ID: "MB-OLD00001", Action: approval.Disable, State: approval.Pending,
		Requester: requester, Targets: []approval.Target{{UserID: 7, Email: "jane@example.com"}}, ChannelID: opsChannel,
		RequiredApprovals: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code := run(t.Context(), nil, h.env, h.logs, h.logs)
	if code == 0 {
		t.Fatal("the bot started with an open request bound to an instance that is not configured")
	}
	if !strings.Contains(h.logs.String(), `instance \"default\" (requests MB-OLD00001)`) {
		t.Errorf("the refusal does not name the instance and the request:\n%s", h.logs.String())
	}
}

// TestInstancesConfigBothForms: METABASE_URL with METABASE_INSTANCES is refused, naming both.
func TestInstancesConfigBothForms(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, nil)
	h.env["METABASE_URL"] = "https://metabase.example.com"
	var out strings.Builder
	if code := run(t.Context(), nil, h.env, &out, &out); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(out.String(), "METABASE_URL and METABASE_INSTANCES are both set") {
		t.Errorf("the error does not name both forms:\n%s", out.String())
	}
}

// TestUpgradeBindsRequestsToTheConfiguredInstance: the requests of a database written by the
// previous version (one Metabase, no instance in its rows) belong to the one configured instance
// after the upgrade: its open request is found by user, so a second request about the same
// person is refused and status shows it, and approving it disables the user there.
func TestUpgradeBindsRequestsToTheConfiguredInstance(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addJane()
	path := filepath.Join(t.TempDir(), "v1.db")
	h.env["DATABASE_URL"] = "sqlite:" + path
	writeV1Database(t, path, jane.ID)
	h.start()

	card := h.card("MB-OLD00001")
	h.reply(requester, "status jane@example.com", "Open request: MB-OLD00001")
	h.command(requester, "disable jane@example.com Left again")
	h.ephemeral(requester, "already has an open request, MB-OLD00001")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active after the old request was approved")
	}
}

// TestUpgradeToSeveralInstancesKeepsDefault: switching a database of the previous version to
// several instances works when one of them is named default: the old requests are its.
func TestUpgradeToSeveralInstancesKeepsDefault(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, nil)
	h.env["METABASE_INSTANCES"] = "default,eu"
	h.env["METABASE_DEFAULT_URL"], h.env["METABASE_DEFAULT_API_KEY"] = h.env["METABASE_PROD_URL"], h.env["METABASE_PROD_API_KEY"]
	delete(h.env, "METABASE_PROD_URL")
	delete(h.env, "METABASE_PROD_API_KEY")
	jane := h.addJane()
	addJaneTo(h.eu)
	path := filepath.Join(t.TempDir(), "v1.db")
	h.env["DATABASE_URL"] = "sqlite:" + path
	writeV1Database(t, path, jane.ID)
	h.start()

	st := h.reply(requester, "status jane@example.com", "*default:*")
	if !strings.Contains(st.AllText(), "Open request: MB-OLD00001") {
		t.Errorf("status does not show the old request under default:\n%s", st.AllText())
	}
	card := h.card("MB-OLD00001")
	h.click(approver, card, "mb_approve")
	h.thread(card, "jane@example.com: disabled")
	if u, _ := h.mb.UserByID(jane.ID); u.Active {
		t.Error("jane is still active in default")
	}
	if n := h.eu.Count("DELETE", "/api/user/"); n != 0 {
		t.Errorf("the old request wrote to eu (%d DELETE calls)", n)
	}
}

// TestInstancesInactiveWithOneDown: an instance that is down does not block the others: the
// inactive report lists the instances that answered and names the one that did not.
func TestInstancesInactiveWithOneDown(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, map[string]string{"METABASE_TIMEOUT": "1s"})
	old := time.Now().AddDate(0, 0, -200)
	h.mb.AddUser(metabasetest.User{Email: "stale@example.com", FirstName: "Stale", Active: true, DateJoined: old})
	h.start()
	h.downEU()
	report := h.reply(requester, "inactive 90", "active Metabase users")
	for _, want := range []string{"prod: Stale", "Not included: eu did not answer"} {
		if !strings.Contains(report.AllText(), want) {
			t.Errorf("the report lacks %q:\n%s", want, report.AllText())
		}
	}
}

// TestInstancesUnresolvedTargetsGetTheChecks: a user first found at execution (their instance did
// not answer when the request was made) gets the checks every target gets when a request is made:
// a protected account is not disabled, and a user whose leave has a scheduled return is left to
// a new request, whose approval supersedes that return.
func TestInstancesUnresolvedTargetsGetTheChecks(t *testing.T) {
	t.Parallel()
	h := newMultiHarness(t, map[string]string{"METABASE_TIMEOUT": "1s", "PROTECTED_USERS": "boss@example.com"})
	boss := h.eu.AddUser(metabasetest.User{Email: "boss@example.com", FirstName: "Boss", Active: true})
	h.start()
	h.downEU()
	h.command(requester, "disable boss@example.com Reorganisation")
	card := h.card("boss@example.com")
	h.eu.ClearFailures()
	h.click(approver, card, "mb_approve")
	h.thread(card, "eu: boss@example.com: failed: protected")
	if u, _ := h.eu.UserByID(boss.ID); !u.Active {
		t.Fatal("a protected account was disabled because its instance was down when the request was made")
	}
}
