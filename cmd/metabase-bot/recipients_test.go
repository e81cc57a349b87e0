package main

import (
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestCardCountsOnlyActiveRecipients: a deactivated user receives nothing, so the card does not
// count one among an alert's recipients in any era, although the notification versions before
// recipients-detail hydrate such a user like anyone else (docs/metabase-notifications.md §5).
func TestCardCountsOnlyActiveRecipients(t *testing.T) {
	t.Parallel()
	for _, era := range []metabasetest.Era{metabasetest.EraNotificationAdmin, metabasetest.EraNotification, metabasetest.EraPulseAlerts} {
		t.Run(era.String(), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil, metabasetest.WithEra(era))
			jane := h.addJane()
			gone := h.mb.AddUser(metabasetest.User{Email: "gone@example.com", FirstName: "Gone"})
			h.mb.AddAlert(metabasetest.Alert{CardID: 12, CardName: "Revenue drop", CreatorID: jane.ID,
				UserIDs: []int{gone.ID}, Emails: []string{"cfo@example.org"}})
			h.start()
			h.command(requester, "disable jane@example.com Left the company")
			card := h.card("jane@example.com")
			if want := "Revenue drop> · 1 recipient"; !strings.Contains(card.AllText(), want) {
				t.Errorf("the card lacks %q (the deactivated user counted?):\n%s", want, card.AllText())
			}
		})
	}
}
