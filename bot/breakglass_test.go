package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// brokenGlass is a finished break-glass action by U1 on one user, its review open.
func brokenGlass(t *testing.T) approval.Request {
	t.Helper()
	r := request(1)
	if err := r.StartBreakGlass("me", r.CreatedAt, time.Minute, 24*time.Hour, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.Record("me", 0, approval.Result{Outcome: approval.Done, At: r.CreatedAt}, &approval.Before{}, r.CreatedAt, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish("me", r.CreatedAt); err != nil {
		t.Fatal(err)
	}
	return r
}

func cardJSON(t *testing.T, v *view, r approval.Request) string {
	t.Helper()
	blocks := v.renderCard(r)
	checkLimits(t, blocks)
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestBreakGlassCard: the card is marked in its header and notification text, mentions the
// approvers, offers Confirm and Reverse while the review is open and neither once it is over.
func TestBreakGlassCard(t *testing.T) {
	t.Parallel()
	v := testView(Config{ApproverGroup: "SAPP"})
	r := brokenGlass(t)
	card := cardJSON(t, v, r)
	for _, want := range []string{breakGlassMark + " · Metabase disable request MB-TEST", actionConfirm, actionReverse, "subteam^SAPP", "used break-glass"} {
		if !strings.Contains(card, want) {
			t.Errorf("open review card lacks %q:\n%s", want, card)
		}
	}
	if text := v.cardText(r); !strings.HasPrefix(text, breakGlassMark) || !strings.Contains(text, "<!subteam^SAPP>") {
		t.Errorf("notification text %q is not marked or does not mention the approvers", text)
	}
	if strings.Contains(card, actionApprove) {
		t.Error("a break-glass card offers Approve")
	}
	confirmed := r.Clone()
	if err := confirmed.Confirm("U2", r.CreatedAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	card = cardJSON(t, v, confirmed)
	if strings.Contains(card, actionConfirm) || strings.Contains(card, actionReverse) || !strings.Contains(card, "Reviewed: confirmed") {
		t.Errorf("confirmed card still offers a review or does not say it was confirmed:\n%s", card)
	}
	reversed := r.Clone()
	if _, err := reversed.VoteReverse("U2", r.CreatedAt.Add(time.Hour), 1); err != nil {
		t.Fatal(err)
	}
	if card = cardJSON(t, v, reversed); strings.Contains(card, actionConfirm) || !strings.Contains(card, "Reviewed: reversed") {
		t.Errorf("reversed card still offers Confirm or does not say it was reversed:\n%s", card)
	}
}

// TestBreakGlassAuditLines: every audit line of a break-glass action says so and who acted; the
// review lines read `reviewed: confirmed by @x`.
func TestBreakGlassAuditLines(t *testing.T) {
	t.Parallel()
	v := testView(Config{})
	r := brokenGlass(t)
	confirmed := r.Clone()
	_ = confirmed.Confirm("U2", r.CreatedAt)
	flagged := r.Clone()
	_ = flagged.FlagUnreviewed(r.CreatedAt.Add(25 * time.Hour))
	for _, tc := range []struct {
		e    access.Event
		want []string
	}{
		{access.Event{Type: access.BrokeGlass, Actor: "U1", Request: r}, []string{"*break-glass*", "by <@U1>", "reason: Left the company"}},
		{access.Event{Type: access.Finished, Actor: "U1", Request: r}, []string{"*executed*", "by <@U1>", breakGlassMark}},
		{access.Event{Type: access.ReviewConfirmed, Actor: "U2", Request: confirmed}, []string{"*reviewed: confirmed*", "by <@U2>", breakGlassMark}},
		{access.Event{Type: access.Unreviewed, Request: flagged}, []string{"*unreviewed*", breakGlassMark}},
	} {
		line := v.auditText(access.Notice{Kind: access.ToAudit, Event: &tc.e})
		for _, w := range tc.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s audit line %q lacks %q", tc.e.Type, line, w)
			}
		}
	}
}

// TestBreakGlassFellBackText: the limit's reply is the words the issue gives.
func TestBreakGlassFellBackText(t *testing.T) {
	t.Parallel()
	r := request(1)
	r.BreakGlass = &approval.BreakGlass{FellBack: access.FellBackLimit}
	if got, want := fellBackText(r, 5), "Break-glass limit reached (5 users per hour): posted for approval instead."; got != want {
		t.Fatalf("reply = %q, want %q", got, want)
	}
}

// TestBreakGlassHistory: `history` marks a break-glass action and says how it was reviewed.
func TestBreakGlassHistory(t *testing.T) {
	t.Parallel()
	r := brokenGlass(t)
	if line := historyLine(r, 10); !strings.Contains(line, breakGlassMark) || !strings.Contains(line, "review due") {
		t.Errorf("open review: %q", line)
	}
	_ = r.Confirm("U2", r.CreatedAt.Add(time.Hour))
	if line := historyLine(r, 10); !strings.Contains(line, "reviewed: confirmed by <@U2>") {
		t.Errorf("confirmed: %q", line)
	}
	if line := historyLine(request(1), 10); strings.Contains(line, breakGlassMark) {
		t.Errorf("an ordinary request is marked: %q", line)
	}
}
