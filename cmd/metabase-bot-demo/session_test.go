package main

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// transcript is the output of one demo run, cut at each echoed input line.
type transcript struct {
	all   string
	steps []step
}

type step struct{ line, out string }

func cut(out string) transcript {
	tr := transcript{all: out}
	for _, l := range strings.SplitAfter(out, "\n") {
		if line, ok := strings.CutPrefix(l, "> "); ok {
			tr.steps = append(tr.steps, step{line: strings.TrimSpace(line)})
			continue
		}
		if n := len(tr.steps); n > 0 {
			tr.steps[n-1].out += l
		}
	}
	return tr
}

// step returns the output of the i-th input line (from 0), which must be line.
func (tr transcript) step(t *testing.T, i int, line string) string {
	t.Helper()
	if i >= len(tr.steps) || tr.steps[i].line != line {
		t.Fatalf("step %d is not %q; transcript:\n%s", i, line, tr.all)
	}
	return tr.steps[i].out
}

// runScript runs the demo on a script file and returns its exit code, output and standard error.
func runScript(t *testing.T, script string, flags ...string) (int, transcript, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.txt")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"-script", path}, flags...), strings.NewReader(""), &out, &errOut)
	return code, cut(out.String()), errOut.String()
}

func wantAll(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func TestScriptedSessionDisablesAndReenablesJane(t *testing.T) {
	t.Parallel()
	code, tr, stderr := runScript(t, `# Jane leaves, then comes back.
as alice: /metabase disable jane@example.com Left the company
as bob: approve
as alice: /metabase status jane@example.com
people
as alice: /metabase enable jane@example.com Back from leave
as bob: approve
as alice: /metabase status jane@example.com
quit
`)
	if code != 0 {
		t.Fatalf("exit code %d; transcript:\n%s\nstderr:\n%s", code, tr.all, stderr)
	}
	if stderr != "" {
		t.Errorf("the demo is not quiet by default; standard error:\n%s", stderr)
	}
	wantAll(t, "the transcript", tr.all, "\n# Jane leaves, then comes back.\n", "jane@example.com   Jane Doe", "bob    approver (in @metabase-approvers)")

	requested := tr.step(t, 0, "as alice: /metabase disable jane@example.com Left the company")
	id := regexp.MustCompile(`#ops, new card (MB-[0-9A-Z]+):`).FindStringSubmatch(requested)
	if id == nil {
		t.Fatalf("no new card:\n%s", requested)
	}
	disable := id[1]
	wantAll(t, "the new card", requested,
		"┃ METABASE DISABLE REQUEST "+disable,
		"┃ @alice asks to disable Metabase access for 1 user:",
		"┃ Name: Jane Doe", "Email: jane@example.com",
		"┃ Reason: Left the company",
		"needs 1 approval",
		"┃ ⏳ Waiting for approval from @metabase-approvers · 0 of 1 approvals",
		"┃ [Approve] [Deny] [Cancel request]",
		"notification text: Metabase disable request "+disable+" for jane@example.com by @alice: waiting for approval (0 of 1)",
		"#metabase-audit: 📝 requested · request "+disable+" · disable jane@example.com · requester @alice",
		"reason: Left the company")
	blocks := builderBlocks(t, requested)
	if !strings.Contains(string(blocks), `"action_id":"mb_approve"`) {
		t.Errorf("the Block Kit Builder link does not carry the card's Approve button: %s", blocks)
	}

	approved := tr.step(t, 1, "as bob: approve")
	wantAll(t, "the approval", approved,
		"→ bob clicks [Approve] on "+disable+" and confirms",
		"#ops, card updated "+disable+":",
		"┃ ✅ Approved by @bob at", "· jane@example.com disabled",
		"#ops, thread of "+disable+":", "jane@example.com: disabled", "✅ Done. disabled 1, skipped 0, failed 0.",
		"#metabase-audit: 📝 approved · request "+disable+" · disable jane@example.com · requester @alice · by @bob",
		"#metabase-audit: 📝 executed · request "+disable+" · disable jane@example.com · requester @alice · by @bob · result: disabled 1, skipped 0, failed 0")
	if strings.Contains(approved, "┃ [Approve]") {
		t.Errorf("the decided card still shows its buttons:\n%s", approved)
	}

	wantAll(t, "status after disabling", tr.step(t, 2, "as alice: /metabase status jane@example.com"),
		"only @alice sees, in #ops:", "Jane Doe · jane@example.com", "State: deactivated")
	wantAll(t, "people after disabling", tr.step(t, 3, "people"), "jane@example.com   Jane Doe (id 3): deactivated")

	reenable := tr.step(t, 4, "as alice: /metabase enable jane@example.com Back from leave")
	id = regexp.MustCompile(`#ops, new card (MB-[0-9A-Z]+):`).FindStringSubmatch(reenable)
	if id == nil || id[1] == disable {
		t.Fatalf("no second card:\n%s", reenable)
	}
	enable := id[1]
	wantAll(t, "the enable card", reenable,
		"┃ @alice asks to enable Metabase access for 1 user:", "┃ ⏳ Waiting for approval",
		"#metabase-audit: 📝 requested · request "+enable+" · enable jane@example.com")

	wantAll(t, "the second approval", tr.step(t, 5, "as bob: approve"),
		"→ bob clicks [Approve] on "+enable,
		"┃ ✅ Approved by @bob at", "· jane@example.com enabled",
		"#ops, thread of "+enable+":", "✅ Done. enabled 1, skipped 0, failed 0.",
		"#metabase-audit: 📝 executed · request "+enable+" · enable jane@example.com")
	wantAll(t, "status after re-enabling", tr.step(t, 6, "as alice: /metabase status jane@example.com"), "State: active")
}

// builderBlocks decodes the blocks from the first Block Kit Builder link in out.
func builderBlocks(t *testing.T, out string) json.RawMessage {
	t.Helper()
	link := regexp.MustCompile(`see it in Block Kit Builder: (\S+)`).FindStringSubmatch(out)
	if link == nil {
		t.Fatalf("no Block Kit Builder link:\n%s", out)
	}
	fragment, ok := strings.CutPrefix(link[1], builderURL)
	if !ok {
		t.Fatalf("link %q does not start with %s", link[1], builderURL)
	}
	payload, err := url.PathUnescape(fragment)
	if err != nil {
		t.Fatalf("link fragment does not decode: %v", err)
	}
	var p struct{ Blocks json.RawMessage }
	if err := json.Unmarshal([]byte(payload), &p); err != nil || len(p.Blocks) == 0 {
		t.Fatalf("link fragment is not {\"blocks\":[…]}: %v\n%s", err, payload)
	}
	return p.Blocks
}

func TestScriptedSessionDeniesCancelsAndRetries(t *testing.T) {
	t.Parallel()
	code, tr, stderr := runScript(t, `as alice: /metabase disable lee@example.com Moved teams
as dave: approve
as carol: deny Still needed for Q4 reports
as alice: /metabase disable sam@example.com Contract ended
as alice: cancel
metabase fail
as alice: /metabase disable jane@example.com Left the company
as bob: approve
metabase ok
as carol: retry
`)
	if code != 0 {
		t.Fatalf("exit code %d; transcript:\n%s\nstderr:\n%s", code, tr.all, stderr)
	}
	wantAll(t, "an outsider's click", tr.step(t, 1, "as dave: approve"),
		"only @dave sees, in #ops: Only approvers (@metabase-approvers) can decide Metabase requests.")
	wantAll(t, "the denial", tr.step(t, 2, "as carol: deny Still needed for Q4 reports"),
		`a form "Deny MB-`, "Reason for denying (optional): [text:",
		`→ carol writes "Still needed for Q4 reports" and presses Deny`,
		"┃ ⛔ Denied by @carol at", "reason: Still needed for Q4 reports",
		"Denied by @carol: Still needed for Q4 reports",
		"#metabase-audit: 📝 denied · request MB-")
	wantAll(t, "the SSO warning", tr.step(t, 3, "as alice: /metabase disable sam@example.com Contract ended"),
		"┃ ⚠️ sam@example.com signs in through SSO (saml)")
	wantAll(t, "the cancellation", tr.step(t, 4, "as alice: cancel"),
		"→ alice clicks [Cancel request] on MB-", "┃ ➖ Cancelled by @alice", "Cancelled by @alice.", "📝 cancelled")
	wantAll(t, "the failure", tr.step(t, 7, "as bob: approve"),
		"┃ ❌ Approved by @bob", "jane@example.com failed: Metabase answered 500",
		"❌ Failed. disabled 0, skipped 0, failed 1.", "[Retry failed]", "📝 failed")
	wantAll(t, "the retry", tr.step(t, 9, "as carol: retry"),
		"→ carol clicks [Retry failed] in the thread of MB-",
		"@carol is retrying the failed users.", "┃ ✅ Approved by @bob", "✅ Done. disabled 1, skipped 0, failed 0.",
		"📝 retry", "📝 executed")
}

func TestPipedInputIsReadAsAScript(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	code := run(t.Context(), nil, strings.NewReader("help\nas alice: /metabase status jane@example.com\n"), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d at end of input; output:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	tr := cut(out.String())
	wantAll(t, "help", tr.step(t, 0, "help"), "as NAME: approve", "metabase fail")
	wantAll(t, "status", tr.step(t, 1, "as alice: /metabase status jane@example.com"), "State: active")
}

func TestScriptStopsAtALineItCannotRun(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{"as zed: approve", `nobody called "zed" here; the people are alice, bob, carol, dave`},
		{"as bob: approve", "there is no pending card to approve"},
		{"as carol: retry", "there is no failed request to retry"},
		{"as alice: /other thing", "the bot answers /metabase only"},
		{"as bob approve", `write "as NAME: WHAT"`},
		{"as bob: wave", `"wave" is not an action`},
		{"dance", `"dance" is not something the demo knows`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			t.Parallel()
			code, tr, _ := runScript(t, tt.line+"\nas alice: /metabase help\n")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			wantAll(t, "the output", tr.all, "demo: "+tt.want)
			if len(tr.steps) != 1 {
				t.Errorf("the demo went on after a line it could not run:\n%s", tr.all)
			}
		})
	}
}

func TestVerboseShowsTheBotsLogs(t *testing.T) {
	t.Parallel()
	code, tr, stderr := runScript(t, "as alice: /metabase status jane@example.com\n", "-v")
	if code != 0 {
		t.Fatalf("exit code %d; transcript:\n%s", code, tr.all)
	}
	wantAll(t, "standard error with -v", stderr, "Connected to Slack")
	for _, secret := range []string{botToken, appToken} {
		if strings.Contains(stderr, secret) {
			t.Errorf("a token (%s…) appears in the logs", secret[:5])
		}
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"-h"}, 0, "Usage: go run ./cmd/metabase-bot-demo"},
		{[]string{"-approvals", "0"}, 2, "-approvals must be at least 1"},
		{[]string{"-timeout", "0s"}, 2, "-timeout must be positive"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-script", filepath.Join(t.TempDir(), "missing.txt")}, 2, "missing.txt"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), tt.args, strings.NewReader(""), &out, &errOut); code != tt.code {
			t.Errorf("%v: exit code %d, want %d", tt.args, code, tt.code)
		}
		if !strings.Contains(errOut.String(), tt.inStderr) {
			t.Errorf("%v: standard error lacks %q:\n%s", tt.args, tt.inStderr, errOut.String())
		}
	}
}

// The README runs this tour; every line of it must still run.
func TestTourRuns(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-script", filepath.Join("testdata", "tour.txt")}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("exit code %d; output:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	wantAll(t, "the tour", out.String(), "Lee still owns the finance dashboards", "@carol is retrying the failed users.")
}

func TestScriptedSessionShowsTheHomeTab(t *testing.T) {
	t.Parallel()
	code, tr, stderr := runScript(t, `as alice: /metabase disable jane@example.com Left the company
as bob: home
as alice: home
quit
`)
	if code != 0 {
		t.Fatalf("exit code %d; transcript:\n%s\nstderr:\n%s", code, tr.all, stderr)
	}
	id := regexp.MustCompile(`MB-[0-9A-Z]+`).FindString(tr.step(t, 0, "as alice: /metabase disable jane@example.com Left the company"))
	bob := tr.step(t, 1, "as bob: home")
	wantAll(t, "bob's Home", bob, "bob's Home tab:", "WAITING FOR A DECISION", id, "[Approve] [Deny]")
	alice := tr.step(t, 2, "as alice: home")
	wantAll(t, "alice's Home", alice, "alice's Home tab:", "YOUR OPEN REQUESTS", id, "[Cancel request]")
	if strings.Contains(alice, "[Approve]") {
		t.Errorf("the requester's Home offers Approve:\n%s", alice)
	}
}
