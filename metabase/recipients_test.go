package metabase

import (
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestNotificationsCountOnlyActiveRecipients: between v0.54 and
// recipients-detail a deactivated user recipient is hydrated like anyone
// else; it is not counted in any era.
func TestNotificationsCountOnlyActiveRecipients(t *testing.T) {
	t.Parallel()
	for _, era := range []metabasetest.Era{metabasetest.EraNotificationAdmin, metabasetest.EraNotification, metabasetest.EraPulseAlerts} {
		t.Run(era.String(), func(t *testing.T) {
			t.Parallel()
			c, s := setupEra(t, era)
			a := s.AddAlert(metabasetest.Alert{CreatorID: annID, UserIDs: []int{annID, deeID, bobID}})
			inv, err := c.Notifications(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range inv.Alerts {
				if n.ID == a.ID && n.EmailUsers != 2 {
					t.Errorf("EmailUsers = %d, want 2 (dee is deactivated)", n.EmailUsers)
				}
			}
		})
	}
}
