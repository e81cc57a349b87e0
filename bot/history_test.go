package bot

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

func TestHistoryText(t *testing.T) {
	t.Parallel()
	jane := metabase.User{ID: 5, Email: "jane@example.com", FirstName: "Jane", LastName: "Doe"}
	at := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	ran := at.Add(time.Hour)
	executed := approval.Request{ID: "MB-NEW", Action: approval.Disable, State: approval.Partial, Requester: "UREQ", CreatedAt: at,
		Approvals: []approval.Vote{{UserID: "UAPP"}, {UserID: "UAPP2"}},
		Targets: []approval.Target{
			{UserID: 9, Email: "other@example.com", Result: approval.Result{Outcome: approval.TargetFailed, Message: "boom", At: ran}},
			{UserID: 5, Email: "jane@example.com", Result: approval.Result{Outcome: approval.Done, At: ran}},
		}}
	denied := approval.Request{ID: "MB-OLD", Action: approval.Disable, State: approval.Denied, Requester: "UREQ", CreatedAt: at.Add(-time.Hour),
		DecidedBy: "UAPP", DenyReason: "still needed <!channel>", Targets: []approval.Target{{UserID: 5, Email: "jane@example.com"}}}
	pending := approval.Request{ID: "MB-OPEN", Action: approval.Enable, State: approval.Pending, Requester: "UREQ", CreatedAt: at, RequiredApprovals: 2,
		Approvals: []approval.Vote{{UserID: "UAPP"}}, Targets: []approval.Target{{UserID: 5, Email: "jane@example.com"}}}

	got := historyText(access.History{User: jane, Requests: []approval.Request{pending, executed, denied}})
	lines := strings.Split(got, "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "*History of Jane Doe* · jane@example.com · Metabase id 5 · now deactivated") ||
		lines[1] != "3 requests named this user, newest first:" {
		t.Fatalf("history header:\n%s", got)
	}
	wants := [][]string{
		{"`MB-OPEN`", "*enable*", "waiting for approval (1 of 2)", "asked by <@UREQ>", "approved by <@UAPP>"},
		{"`MB-NEW`", "*disable*", "partly done", "approved by <@UAPP>, <@UAPP2>", "ran " + slackDate(ran), "result: disabled"},
		{"`MB-OLD`", "denied", "denied by <@UAPP>: still needed &lt;!channel&gt;", "not run"},
	}
	for i, want := range wants {
		for _, w := range want {
			if !strings.Contains(lines[i+2], w) {
				t.Errorf("line %d lacks %q:\n%s", i, w, lines[i+2])
			}
		}
	}
	if strings.Contains(lines[2], "result") || strings.Contains(lines[2], "ran ") || strings.Contains(lines[3], "boom") {
		t.Errorf("a line shows a result that is not the user's own:\n%s", got)
	}

	if got := historyText(access.History{User: jane}); !strings.HasSuffix(got, "\nNo request has named this user.") {
		t.Errorf("history without requests:\n%s", got)
	}
}

// TestHistoryTextIsBounded: many requests, or long ones, list whole lines up to the bounds and
// say exactly how many were left out.
func TestHistoryTextIsBounded(t *testing.T) {
	t.Parallel()
	jane := metabase.User{ID: 5, Email: "jane@example.com", IsActive: true}
	at := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	many := func(n int, reason string, approvers int) []approval.Request {
		rs := make([]approval.Request, n)
		for i := range rs {
			rs[i] = approval.Request{ID: fmt.Sprintf("MB-%08d", i), Action: approval.Disable, State: approval.Denied, Requester: "UREQ",
				CreatedAt: at, DecidedBy: "UAPP", DenyReason: reason, Targets: []approval.Target{{UserID: 5}}}
			for v := range approvers {
				rs[i].Approvals = append(rs[i].Approvals, approval.Vote{UserID: fmt.Sprintf("UAPPROVER%02d", v)})
			}
		}
		return rs
	}
	for _, tt := range []struct {
		name   string
		rs     []approval.Request
		listed int
	}{
		{"many", many(60, "no", 1), maxHistoryLines},
		{"long lines", many(60, strings.Repeat("é", 600), 30), 0}, // bounded by length before the count
		{"exactly the cap", many(maxHistoryLines, "no", 1), maxHistoryLines},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := historyText(access.History{User: jane, Requests: tt.rs})
			if n := utf8.RuneCountInString(got); n > 3900 {
				t.Fatalf("%d characters, over the ephemeral limit", n)
			}
			listed := strings.Count(got, "\n• ")
			if tt.listed > 0 && listed != tt.listed {
				t.Errorf("listed %d requests, want %d", listed, tt.listed)
			}
			if listed == 0 || listed > maxHistoryLines {
				t.Errorf("listed %d requests", listed)
			}
			if rest := len(tt.rs) - listed; rest > 0 {
				if want := fmt.Sprintf("…and %d older requests not shown.", rest); !strings.Contains(got, want) {
					t.Errorf("does not say %q:\n%s", want, got)
				}
			} else if strings.Contains(got, "not shown") {
				t.Errorf("says requests were left out when none were:\n%s", got)
			}
			if n := len(tt.rs[0].Approvals); n > maxHistoryApprovers &&
				(strings.Contains(got, "UAPPROVER05") || !strings.Contains(got, fmt.Sprintf("<@UAPPROVER04>, %d more", n-maxHistoryApprovers))) {
				t.Errorf("approvers not bounded to %d:\n%s", maxHistoryApprovers, got)
			}
		})
	}
}
