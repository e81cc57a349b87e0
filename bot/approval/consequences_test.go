package approval

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A request stored before consequences and hand-overs existed still decodes, with none of them;
// and a request without them encodes exactly as before, so older versions read it back.
func TestConsequencesJSONIsBackwardsCompatible(t *testing.T) {
	old := `{"id":"MB-OLD","action":"disable","state":"pending","requester":"U1",` +
		`"targets":[{"user_id":5,"email":"jane@example.com","result":{"outcome":"done"}}],` +
		`"reason":"Left","channel_id":"C1","required_approvals":1,"created_at":"2026-01-02T00:00:00Z",` +
		`"expires_at":"2026-01-03T00:00:00Z","version":3}`
	var r Request
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	if r.Handover != nil || r.Lookup != nil || r.Targets[0].Consequences != nil || r.Targets[0].HandedOver != nil {
		t.Fatalf("an old request decoded with hand-over values: %+v", r)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"handover", "lookup", "consequences", "handed_over"} {
		if strings.Contains(string(raw), `"`+key+`"`) {
			t.Errorf("a request without %s encodes the key: %s", key, raw)
		}
	}
}

func TestConsequencesRoundTripAndClone(t *testing.T) {
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	r := Request{ID: "MB-NEW", Action: Disable, State: Pending,
		Handover: &Handover{SuccessorID: 9, SuccessorEmail: "bob@example.com", Archive: true},
		Lookup:   &Lookup{At: at, Version: "v0.61.0", RunStatus: true, MoveAlerts: true, ArchiveAlerts: true},
		Targets: []Target{{UserID: 5, Email: "jane@example.com",
			Consequences: &Consequences{Subscriptions: 1, Alerts: 1, Failing: 1, CollectionItems: 3, Items: []Item{
				{Kind: Subscription, ID: 1, Name: "Weekly", DashboardID: 7, Recipients: 2, SlackChannels: []string{"#sales"}},
				{Kind: Alert, ID: 4, Name: "Revenue", CardID: 12, Failing: true, FailedWith: "boom"},
			}},
			HandedOver: &HandoverResult{UserDone: true, At: at, Items: []ItemResult{
				{Item: Item{Kind: Alert, ID: 4, SlackChannels: []string{"#ops"}}, Outcome: ItemMoved},
			}},
		}},
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Request
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Fatalf("round trip changed the request (-want +got):\n%s", diff)
	}

	c := r.Clone()
	c.Handover.Archive = false
	c.Lookup.Error = "changed"
	c.Targets[0].Consequences.Items[0].SlackChannels[0] = "#changed"
	c.Targets[0].Consequences.Alerts = 7
	c.Targets[0].HandedOver.Items[0].Outcome = ItemFailed
	c.Targets[0].HandedOver.Items[0].SlackChannels[0] = "#changed"
	if diff := cmp.Diff(back, r); diff != "" {
		t.Fatalf("changing a clone changed the original (-want +got):\n%s", diff)
	}
}

func TestHandoverCounts(t *testing.T) {
	r := Request{Targets: []Target{
		{HandedOver: &HandoverResult{Unhandled: 2, Items: []ItemResult{{Outcome: ItemMoved}, {Outcome: ItemArchived}, {Outcome: ItemLeft}}}},
		{},
		{HandedOver: &HandoverResult{Items: []ItemResult{{Outcome: ItemMoved}, {Outcome: ItemGone}, {Outcome: ItemFailed}}}},
	}}
	got := r.HandoverCounts()
	want := HandoverCounts{Moved: 2, Archived: 1, Left: 3, Gone: 1, Failed: 1}
	if got != want || got.Total() != 8 {
		t.Fatalf("counts %+v (total %d), want %+v (total 8)", got, got.Total(), want)
	}
}

func TestRecordHandoverCopies(t *testing.T) {
	r := Request{Targets: []Target{{UserID: 1}}}
	h := &HandoverResult{Items: []ItemResult{{Item: Item{Kind: Alert, ID: 3}, Outcome: ItemMoved}}}
	r.RecordHandover(0, h, nil)
	r.RecordHandover(5, h, nil) // out of range: ignored
	h.Items[0].Outcome = ItemFailed
	if got := r.Targets[0].HandedOver.Items[0].Outcome; got != ItemMoved {
		t.Fatalf("the recorded result follows later changes of the caller's value: %s", got)
	}
}
