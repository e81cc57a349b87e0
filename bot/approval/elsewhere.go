package approval

import (
	"fmt"
	"slices"
	"time"
)

// Elsewhere is a target of a pending disable found deactivated in Metabase by someone else
// while the request waited (the reactivation watch's listing no longer shows them active).
type Elsewhere struct {
	Instance string    `json:"instance"`
	UserID   int       `json:"user_id"`
	At       time.Time `json:"at"`
}

// Key is the user found deactivated.
func (e Elsewhere) Key() UserKey { return UserKey{Instance: e.Instance, ID: e.UserID} }

// NoteDisabledElsewhere records, on a pending disable, that users among its targets were found
// deactivated in Metabase by someone else, so its card can say so; it returns the users it had
// not noted before. Nothing else changes: execution still finds them `skipped: already inactive`.
func (r *Request) NoteDisabledElsewhere(users []UserKey, now time.Time) ([]UserKey, error) {
	if r.State != Pending {
		return nil, fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	if r.Action != Disable {
		return nil, fmt.Errorf("%w: only a disable's targets can be found disabled elsewhere", ErrInvalidTransition)
	}
	var added []UserKey
	for _, u := range users {
		noted := slices.ContainsFunc(r.DisabledElsewhere, func(e Elsewhere) bool { return e.Key() == u })
		target := slices.ContainsFunc(r.Targets, func(t Target) bool { return t.Key() == u && !t.Unresolved })
		if noted || !target {
			continue
		}
		r.DisabledElsewhere = append(r.DisabledElsewhere, Elsewhere{Instance: u.Instance, UserID: u.ID, At: now})
		added = append(added, u)
	}
	return added, nil
}
