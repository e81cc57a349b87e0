package access

import (
	"context"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// scheduleLegacyReturn honours a "schedule the return" outbox row written by a version that
// created a leave's return at delivery time: the return is created (or extended) exactly as this
// version does it in the leave's outcome transaction.
func (s deliverer) scheduleLegacyReturn(ctx context.Context, leaveID string) error {
	_, err := s.st.UpdateAlso(ctx, leaveID, func(r *approval.Request) ([]store.Outbox, []store.Also, error) {
		return nil, s.x.returnOf(*r, s.now()), nil
	})
	return err
}
