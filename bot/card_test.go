package bot

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

func testView(cfg Config) *view {
	if cfg.ApproverGroup == "" && len(cfg.ApproverUsers) == 0 {
		cfg.ApproverGroup = "S1"
	}
	if cfg.SlashCommand == "" {
		cfg.SlashCommand = "/metabase"
	}
	if cfg.Policy.RequiredApprovals == 0 {
		cfg.Policy = testPolicy()
	}
	return &view{cfg: cfg}
}

func request(targets int) approval.Request {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := approval.Request{ID: "MB-TEST", Action: approval.Disable, State: approval.Pending, Requester: "U1",
		Reason: "Left the company", ChannelID: "C1", RequiredApprovals: 1, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	for i := range targets {
		r.Targets = append(r.Targets, approval.Target{UserID: i + 10, Email: fmt.Sprintf("user%03d@example.com", i), Name: "User Name"})
	}
	return r
}

// checkLimits asserts the blocks stay within the Slack limits the fake Slack also enforces.
func checkLimits(t *testing.T, blocks []slack.Block) {
	t.Helper()
	if len(blocks) > maxBlocks {
		t.Fatalf("%d blocks, limit %d", len(blocks), maxBlocks)
	}
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var decoded slack.Blocks
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatalf("blocks do not decode strictly: %v", err)
	}
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil && utf8.RuneCountInString(b.Text.Text) > maxSectionText {
				t.Errorf("section text of %d runes", utf8.RuneCountInString(b.Text.Text))
			}
			if len(b.Fields) > 10 {
				t.Errorf("%d fields", len(b.Fields))
			}
		case *slack.ActionBlock:
			if b.BlockID == "" {
				t.Error("actions block without block_id: slack-go would decode clicks as attachment actions")
			}
			for _, el := range b.Elements.ElementSet {
				if btn, ok := el.(*slack.ButtonBlockElement); ok && (utf8.RuneCountInString(btn.Text.Text) > 75 || len(btn.Value) > 2000) {
					t.Errorf("button %q over limits", btn.Text.Text)
				}
			}
		}
	}
}

func TestCardEscapesUserText(t *testing.T) {
	t.Parallel()
	b := testView(Config{})
	r := request(1)
	r.Reason = "<!channel> pay me & <@U999|boss> <https://evil.example|click>"
	r.Targets[0].Name = "<!here> Mallory"
	raw, _ := json.Marshal(b.renderCard(r))
	for _, bad := range []string{"<!channel>", "<!here>", "<@U999", "<https://evil"} {
		if strings.Contains(string(raw), strings.ReplaceAll(bad, "<", `\u003c`)) || strings.Contains(string(raw), bad) {
			t.Errorf("card carries %q unescaped", bad)
		}
	}
	if !strings.Contains(string(raw), "\\u0026lt;!channel\\u0026gt; pay me \\u0026amp;") {
		t.Errorf("reason not escaped as Slack documents: %s", raw)
	}
	if got := escape("a<b>&c"); got != "a&lt;b&gt;&amp;c" {
		t.Errorf("escape = %q", got)
	}
}

func TestCardWithinSlackLimits(t *testing.T) {
	t.Parallel()
	b := testView(Config{})
	for _, n := range []int{1, 15, 16, 100, 1000} {
		r := request(n)
		r.Reason = strings.Repeat("é", maxReasonLen)
		blocks := b.renderCard(r)
		checkLimits(t, blocks)
		text := blockText(blocks)
		if n > maxCardTargets && !strings.Contains(text, fmt.Sprintf("and %d more", n-maxCardTargets)) {
			t.Errorf("%d targets: no \"and N more\" line", n)
		}
		for _, s := range []State{approval.Succeeded, approval.Partial, approval.Denied, approval.Expired} {
			r.State = s
			checkLimits(t, b.renderCard(r))
		}
	}
}

type State = approval.State

func blockText(blocks []slack.Block) string {
	raw, _ := json.Marshal(blocks)
	return string(raw)
}

func TestCardShowsDecisionAndDryRun(t *testing.T) {
	t.Parallel()
	b := testView(Config{})
	r := request(1)
	r.DryRun = true
	pending := blockText(b.renderCard(r))
	if !strings.Contains(pending, "DRY RUN") || !strings.Contains(pending, actionApprove) {
		t.Errorf("dry-run pending card lacks the label or the buttons: %s", pending)
	}
	if !strings.Contains(b.cardText(r), "DRY RUN") {
		t.Errorf("card text lacks the dry-run label: %s", b.cardText(r))
	}
	r.DryRun = false
	_, _ = r.Approve("U2", r.CreatedAt, approval.Policy{})
	_ = r.Start("me", r.CreatedAt, time.Minute)
	_ = r.Record("me", 0, approval.Result{Outcome: approval.Done}, nil, r.CreatedAt, time.Minute)
	_ = r.Finish("me", r.CreatedAt)
	done := blockText(b.renderCard(r))
	if strings.Contains(done, actionApprove) || !strings.Contains(done, "Approved") || !strings.Contains(done, "user000@example.com disabled") {
		t.Errorf("finished card wrong: %s", done)
	}
}

func TestConfirmDialogNamesTheTarget(t *testing.T) {
	t.Parallel()
	b := testView(Config{})
	btns := b.decisionButtons(request(1)).(*slack.ActionBlock)
	approve := btns.Elements.ElementSet[0].(*slack.ButtonBlockElement)
	if approve.Confirm == nil || !strings.Contains(approve.Confirm.Text.Text, "user000@example.com") {
		t.Fatalf("approve has no confirm dialog naming the target: %+v", approve.Confirm)
	}
	if approve.Style != slack.StylePrimary || btns.Elements.ElementSet[1].(*slack.ButtonBlockElement).Style != slack.StyleDanger {
		t.Error("approve must be primary and deny danger")
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	p := testPolicy()
	p.AdminRequiredApprovals = 2
	b := testView(Config{Policy: p})
	r := request(2)
	r.Targets[0].Superuser = true
	r.Targets[1].SSOSource = "saml"
	r.RequiredApprovals = 2
	w := strings.Join(b.warnings(r), "\n")
	for _, want := range []string{"user000@example.com is a *Metabase admin*", "SSO (saml)", "identity provider", "needs 2 approvals"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
}

func TestChunkLines(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprintf("• user%03d@example.com: disabled", i))
	}
	chunks := chunkLines(lines, maxSectionText)
	total := 0
	for _, c := range chunks {
		if utf8.RuneCountInString(c) > maxSectionText {
			t.Fatalf("chunk of %d runes", utf8.RuneCountInString(c))
		}
		total += strings.Count(c, "\n") + 1
	}
	if total != len(lines) {
		t.Fatalf("chunks hold %d lines, want %d: a line was lost", total, len(lines))
	}
}
