package access

import (
	"context"
	"errors"
	"slices"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// notePendingDisabledElsewhere edits the card of each pending disable whose target of instance
// the listing no longer shows active: someone deactivated them in Metabase while it waited.
func (s watcher) notePendingDisabledElsewhere(ctx context.Context, reqs []approval.Request, instance string, active []metabase.User) {
	isActive := make(map[int]bool, len(active))
	for _, u := range active {
		isActive[u.ID] = true
	}
	for _, r := range reqs {
		if r.State != approval.Pending || r.Action != approval.Disable {
			continue
		}
		var gone []approval.UserKey
		for _, t := range r.Targets {
			noted := slices.ContainsFunc(r.DisabledElsewhere, func(e approval.Elsewhere) bool { return e.Key() == t.Key() })
			if t.InstanceName() == instance && !t.Unresolved && t.UserID != 0 && !isActive[t.UserID] && !noted {
				gone = append(gone, t.Key())
			}
		}
		if len(gone) == 0 {
			continue
		}
		_, err := s.st.Update(ctx, r.ID, func(r *approval.Request) ([]store.Outbox, error) {
			added, err := r.NoteDisabledElsewhere(gone, s.now())
			if err != nil {
				return nil, err
			}
			if len(added) == 0 {
				return nil, errNothingNew
			}
			return []store.Outbox{notice(ToCardUpdate, Event{Type: Requested, At: s.now(), Request: *r})}, nil
		})
		switch {
		case err == nil:
			s.kick()
		case errors.Is(err, errNothingNew), errors.Is(err, approval.ErrNotPending):
		default:
			s.log.WithError(err).WithField("request_id", r.ID).Error("Could not note a target deactivated by someone else on a pending card")
		}
	}
}

// errNothingNew leaves a request unchanged: what the watch found was noted already.
var errNothingNew = errors.New("nothing new")
