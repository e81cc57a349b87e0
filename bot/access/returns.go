package access

import (
	"context"
	"errors"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// errNoChange ends a compare-and-set that has nothing to write.
var errNoChange = errors.New("nothing to change")

// scheduleReturn creates the scheduled re-enable of a finished leave, for the targets the leave
// actually disabled; when a retry of the leave disabled more of them, they join the existing
// return.
func (s deliverer) scheduleReturn(ctx context.Context, leave approval.Request) error {
	r, ok := approval.ReturnOf(leave, s.now())
	if !ok {
		return nil
	}
	err := s.st.Create(ctx, r, s.tell(Event{Type: ReturnScheduled, Actor: leave.DecidedBy, At: r.CreatedAt, Request: r}, ToThread, ToAudit)...)
	if errors.Is(err, store.ErrExists) {
		return s.extendReturn(ctx, r)
	}
	return err
}

// extendReturn adds to an existing scheduled return the targets of want it lacks. A return that
// already ran or was cancelled is left alone.
func (s deliverer) extendReturn(ctx context.Context, want approval.Request) error {
	_, err := s.st.Update(ctx, want.ID, func(r *approval.Request) ([]store.Outbox, error) {
		added, err := r.Extend(want.Targets)
		if err != nil || len(added) == 0 {
			return nil, errNoChange
		}
		return s.tell(Event{Type: ReturnExtended, Actor: want.DecidedBy, At: s.now(), Added: added, Request: *r}, ToThread, ToAudit), nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}
