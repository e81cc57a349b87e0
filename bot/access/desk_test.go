package access

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// deskIDs are the ids of items, in order, with the buttons each offers.
func deskIDs(items []DeskItem) []string {
	var out []string
	for _, it := range items {
		id := it.Request.ID
		if it.MayDecide {
			id += "+decide"
		}
		if it.MayCancel {
			id += "+cancel"
		}
		if it.MayRetry {
			id += "+retry"
		}
		if it.MayReview {
			id += "+review"
		}
		out = append(out, id)
	}
	return out
}

func TestDeskListsWhatWaitsForEachPerson(t *testing.T) {
	t.Parallel()
	s, st, _ := testCore(t, newUsersMetabase(), "A", nil)
	now := time.Now()
	put := func(r approval.Request) {
		t.Helper()
		if r.RequiredApprovals == 0 {
			r.RequiredApprovals = 1
		}
		r.Action, r.ChannelID, r.MessageTS = approval.Disable, "COPS", "1700000000.000001"
		r.Targets = []approval.Target{{UserID: len(r.ID), Email: r.ID + "@example.com"}}
		if r.ExpiresAt.IsZero() {
			r.ExpiresAt = now.Add(time.Hour)
		}
		if err := st.Create(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	// Created oldest first as listed; the store orders by creation.
	put(approval.Request{ID: "MB-P1", State: approval.Pending, Requester: "UREQ", CreatedAt: now.Add(-3 * time.Minute)})
	put(approval.Request{ID: "MB-P2", State: approval.Pending, Requester: "UAPP", CreatedAt: now.Add(-2 * time.Minute), RequiredApprovals: 2,
		Approvals: []approval.Vote{{UserID: "UAPP2", At: now}}})
	put(approval.Request{ID: "MB-X", State: approval.Executing, Requester: "UREQ", CreatedAt: now.Add(-time.Minute)})
	put(approval.Request{ID: "MB-F", State: approval.Failed, Requester: "UREQ", CreatedAt: now.Add(-time.Minute), FinishedAt: now.Add(-time.Minute)})
	put(approval.Request{ID: "MB-OLD", State: approval.Failed, Requester: "UREQ", CreatedAt: now.Add(-3 * time.Hour), FinishedAt: now.Add(-2 * time.Hour)})
	put(approval.Request{ID: "MB-D", State: approval.Denied, Requester: "UREQ", CreatedAt: now})
	put(approval.Request{ID: "MB-L0-R", ParentID: "MB-L0", State: approval.Partial, Requester: "UREQ", CreatedAt: now, FinishedAt: now})
	put(approval.Request{ID: "MB-L2-R", ParentID: "MB-L2", State: approval.Scheduled, Requester: "UREQ", CreatedAt: now, NotBefore: now.Add(48 * time.Hour)})
	put(approval.Request{ID: "MB-L1-R", ParentID: "MB-L1", State: approval.Scheduled, Requester: "UREQ", CreatedAt: now, NotBefore: now.Add(24 * time.Hour)})
	// Break-glass actions: one whose review is open, also past its window and by an approver
	// acting as responder, and one already confirmed.
	put(approval.Request{ID: "MB-BG1", State: approval.Succeeded, Requester: "UAPP", CreatedAt: now.Add(-2 * time.Hour), FinishedAt: now,
		BreakGlass: &approval.BreakGlass{ReviewBy: now.Add(-time.Hour), Flagged: true, ReverseRequired: 1}})
	put(approval.Request{ID: "MB-BG2", State: approval.Succeeded, Requester: "UREQ", CreatedAt: now, FinishedAt: now,
		BreakGlass: &approval.BreakGlass{ReviewBy: now.Add(time.Hour), Review: approval.ReviewConfirmed, ReviewedBy: "UAPP2"}})

	tests := []struct {
		person                                       string
		approver                                     bool
		waiting, retry, own, returnsWant, breakGlass []string
	}{
		// An approver sees every request waiting, with buttons except on their own; failed ones
		// (a leave's automatic return too) within the retry window.
		// Break-glass actions waiting for review too, reviewable by anyone but their responder.
		{"UAPP", true, []string{"MB-P1+decide", "MB-P2+cancel"}, []string{"MB-F+retry", "MB-L0-R+retry"}, nil, nil, []string{"MB-BG1"}},
		// One who approved already is offered no second approval.
		{"UAPP2", true, []string{"MB-P1+decide", "MB-P2"}, []string{"MB-F+retry", "MB-L0-R+retry"}, nil, nil, []string{"MB-BG1+review"}},
		// A requester sees only their own, and their returns soonest first.
		{"UREQ", false, nil, nil, []string{"MB-P1+cancel", "MB-X"}, []string{"MB-L1-R", "MB-L2-R"}, nil},
		{"UOUT", false, nil, nil, nil, nil, nil},
	}
	for _, tc := range tests {
		d, err := s.Desk(t.Context(), tc.person)
		if err != nil {
			t.Fatalf("%s: %v", tc.person, err)
		}
		if d.Approver != tc.approver || !slices.Equal(deskIDs(d.Waiting), tc.waiting) || !slices.Equal(deskIDs(d.Retryable), tc.retry) ||
			!slices.Equal(deskIDs(d.Own), tc.own) || !slices.Equal(deskIDs(d.Returns), tc.returnsWant) ||
			!slices.Equal(deskIDs(d.BreakGlass), tc.breakGlass) {
			t.Errorf("%s: approver %v waiting %v retry %v own %v returns %v break-glass %v\nwant %v %v %v %v %v %v", tc.person,
				d.Approver, deskIDs(d.Waiting), deskIDs(d.Retryable), deskIDs(d.Own), deskIDs(d.Returns), deskIDs(d.BreakGlass),
				tc.approver, tc.waiting, tc.retry, tc.own, tc.returnsWant, tc.breakGlass)
		}
	}
}

// refusingDirectory is stubDirectory refusing requests everywhere.
type refusingDirectory struct{ stubDirectory }

func (refusingDirectory) MayRequest(context.Context, string, string) error {
	return &Refusal{Code: ChannelNotAllowed}
}

func TestDeskInFollowsWhoMayRequestWhere(t *testing.T) {
	t.Parallel()
	_, st, n := testCore(t, newUsersMetabase(), "A", nil)
	s, err := New(Config{Policy: Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequestTTL: time.Hour, ReturnLocation: time.UTC, MaxReturnAhead: time.Hour},
		Execution: Execution{InstanceID: "A", BulkConcurrency: 1, ExecLease: time.Minute, OutboxLease: time.Minute, Tick: time.Second}},
		Deps{Store: st, Metabase: newUsersMetabase(), Notifier: n,
			Directory: refusingDirectory{stubDirectory{approvers: map[string]bool{"UAPP": true}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeskIn(t.Context(), "UAPP", "CANY"); err != nil {
		t.Errorf("an approver's pending was refused: %v", err)
	}
	var rf *Refusal
	if _, err := s.DeskIn(t.Context(), "UREQ", "CANY"); !errors.As(err, &rf) || rf.Code != ChannelNotAllowed {
		t.Errorf("pending where the person may not request: err %v, want the directory's refusal", err)
	}
}
