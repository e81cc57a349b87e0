package access

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// requesterGroupDirectory lets only members request, as a REQUESTER_GROUP does.
type requesterGroupDirectory struct {
	stubDirectory
	members map[string]bool
}

func (d requesterGroupDirectory) MayRequest(_ context.Context, user, _ string) error {
	if !d.members[user] {
		return &Refusal{Code: NotInRequesterGroup, Subject: "SREQ"}
	}
	return nil
}

// TestHistory: history lists every request naming the user, whatever its state, newest first,
// and none naming only others; someone who may not request gets a refusal and no requests.
func TestHistory(t *testing.T) {
	s, st, _ := testCore(t, newUsersMetabase(activeUsers(5, 6)...), "A", nil)
	base := time.Now().Add(-time.Hour)
	for i, r := range []struct {
		id    string
		state approval.State
		users []int
	}{{"MB-OLD", approval.Denied, []int{5}}, {"MB-OTHER", approval.Succeeded, []int{6}}, {"MB-BULK", approval.Succeeded, []int{6, 5}}, {"MB-NEW", approval.Pending, []int{5}}} {
		req := approval.Request{ID: r.id, Action: approval.Disable, State: r.state, Requester: "UREQ", ChannelID: "COPS",
			RequiredApprovals: 1, CreatedAt: base.Add(time.Duration(i) * time.Minute), ExpiresAt: base.Add(2 * time.Hour)}
		for _, uid := range r.users {
			req.Targets = append(req.Targets, approval.Target{UserID: uid, Email: "x@example.com"})
		}
		if err := st.Create(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History(t.Context(), "UREQ", "COPS", TargetRef{Kind: ByEmail, Email: "u5@example.com", Raw: "u5@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range h.Requests {
		ids = append(ids, r.ID)
	}
	if want := []string{"MB-NEW", "MB-BULK", "MB-OLD"}; h.User.ID != 5 || !slices.Equal(ids, want) {
		t.Fatalf("history of user %d = %v, want %v", h.User.ID, ids, want)
	}

	_, err = s.History(t.Context(), "UREQ", "COPS", TargetRef{Kind: ByEmail, Email: "nobody@example.com", Raw: "nobody@example.com"})
	if rf := (*Refusal)(nil); !errors.As(err, &rf) || rf.Code != UnknownEmail {
		t.Fatalf("history of an unknown email: %v, want an UnknownEmail refusal", err)
	}

	guarded, err := New(Config{Policy: s.policy, Execution: s.exec}, Deps{Store: st, Instances: s.in.list, Notifier: s.notifier,
		Directory: requesterGroupDirectory{members: map[string]bool{"UREQ": true}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err = guarded.History(t.Context(), "UOUT", "COPS", TargetRef{Kind: ByID, ID: 5, Raw: "5"})
	if rf := (*Refusal)(nil); !errors.As(err, &rf) || rf.Code != NotInRequesterGroup || len(h.Requests) != 0 {
		t.Fatalf("history for an outsider: %+v, %v; want a NotInRequesterGroup refusal and nothing else", h, err)
	}
	if h, err := guarded.History(t.Context(), "UREQ", "COPS", TargetRef{Kind: ByID, ID: 5, Raw: "5"}); err != nil || len(h.Requests) != 3 {
		t.Fatalf("history for a member: %d requests, %v; want 3", len(h.Requests), err)
	}
}
