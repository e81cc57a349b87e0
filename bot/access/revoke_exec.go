package access

import (
	"context"
	"errors"
	"slices"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// `revoke-keys`: an approved disable also deletes the API keys its card showed, in the same
// exactly-once execution as the DELETE of the user. Deleting is idempotent (a key already gone
// is a 404), and the keys are re-read before each attempt, so an execution repeated after a
// crash finishes what the first began and deletes nothing twice: a key shown on the card that is
// gone counts as revoked.

// RevokeKeysUnavailable: this bot cannot list or delete API keys in the targets' instance.
const RevokeKeysUnavailable Code = "revoke_keys_unavailable"

// keyRevoker lists and deletes API keys (package metabase: *Client).
type keyRevoker interface {
	ListAPIKeys(ctx context.Context) ([]metabase.APIKey, error)
	IsOwnAPIKey(k metabase.APIKey) bool
	KeyDeleter
}

// revokeOptions checks `revoke-keys`: only with a disable, and only where the instance's client
// can delete keys.
func (s validator) revokeOptions(c ChangeRequest, r approval.Request) (approval.Request, error) {
	if !c.RevokeKeys && !c.Unshare {
		return r, nil
	}
	if c.Action != approval.Disable {
		return approval.Request{}, refuse(RevokeOnlyDisable, string(c.Action))
	}
	for _, t := range r.Targets {
		in, ok := s.in.get(t.InstanceName())
		if _, can := in.Leftovers.(keyRevoker); c.RevokeKeys && (!ok || !can) {
			return approval.Request{}, refuse(RevokeKeysUnavailable, t.InstanceName())
		}
		if _, can := in.Leftovers.(linkRemover); c.Unshare && (!ok || !can) {
			return approval.Request{}, refuse(UnshareUnavailable, t.InstanceName())
		}
	}
	r.RevokeKeys, r.Unshare = c.RevokeKeys, c.Unshare
	return r, nil
}

// linkRemover reads who shared a link and removes it (package metabase: *Client).
type linkRemover interface {
	PublicLinkSharer(ctx context.Context, l metabase.PublicLink) (int, error)
	Unshare(ctx context.Context, l metabase.PublicLink) error
}

// unshareRefusal refuses `unshare` (and `revoke-keys`) when the request is made, once the
// leftovers are known: where Metabase does not say who shared a link, or public sharing is off,
// or the keys and links could not be looked up, the card cannot say what approving removes.
func unshareRefusal(r approval.Request) error {
	if !r.Unshare && !r.RevokeKeys {
		return nil
	}
	for _, t := range r.Targets {
		l := t.Leftovers
		if !r.Unshare {
			// revoke-keys deletes only keys the card shows: a card that could not look shows none
			// and must not pretend otherwise.
			if l != nil && l.Error != "" {
				return &Refusal{Code: UnshareNotLookedUp, Subject: t.Email, Other: l.Error}
			}
			continue
		}
		switch {
		case l == nil && t.Unresolved:
			return refuse(UnshareNotLookedUp, t.Email)
		case l == nil:
			continue
		case l.Error != "":
			return &Refusal{Code: UnshareNotLookedUp, Subject: t.Email, Other: l.Error}
		case l.SharingOff:
			return refuse(UnshareSharingOff, t.Email)
		case l.UnknownSharer > 0:
			return refuse(UnshareSharerUnknown, t.Email)
		}
	}
	return nil
}

// removeShownLinks removes the links shown on t's card that Metabase still says t shared.
func removeShownLinks(ctx context.Context, lr linkRemover, t approval.Target, dry bool) *approval.LinkRemoval {
	res := &approval.LinkRemoval{DryRun: dry}
	for _, link := range t.Leftovers.Links {
		ml := metabase.PublicLink{Kind: link.Kind, ID: link.ID, Name: link.Name}
		by, err := lr.PublicLinkSharer(ctx, ml)
		switch {
		case errors.Is(err, metabase.ErrNotFound) || (err == nil && by == 0):
			// Gone or no longer shared: removed by an earlier attempt of this execution, or by hand.
			res.Removed = append(res.Removed, link)
			continue
		case err != nil:
			res.NotRemoved = append(res.NotRemoved, approval.LinkNote{LeftLink: link, Why: approval.LinkFailed, Error: FailureText(err)})
			continue
		case by != t.UserID:
			res.NotRemoved = append(res.NotRemoved, approval.LinkNote{LeftLink: link, Why: approval.LinkSharedByOther})
			continue
		}
		if dry {
			res.Removed = append(res.Removed, link)
			continue
		}
		err = lr.Unshare(ctx, ml)
		switch {
		case err == nil, errors.Is(err, metabase.ErrNotFound) && !errors.Is(err, metabase.ErrPublicSharingOff):
			res.Removed = append(res.Removed, link)
		case errors.Is(err, metabase.ErrPublicSharingOff):
			res.NotRemoved = append(res.NotRemoved, approval.LinkNote{LeftLink: link, Why: approval.LinkSharingOff})
		default:
			res.NotRemoved = append(res.NotRemoved, approval.LinkNote{LeftLink: link, Why: approval.LinkFailed, Error: FailureText(err)})
		}
	}
	return res
}

// LinksRemovedCount counts the links unshare removed across r's targets (for the audit line).
func LinksRemovedCount(r approval.Request) (removed, left int) {
	for _, t := range r.Targets {
		if t.LinksRemoved == nil {
			continue
		}
		removed += len(t.LinksRemoved.Removed)
		left += len(t.LinksRemoved.NotRemoved)
	}
	return removed, left
}

// withKeyRevocation wraps a step so that, once the user is disabled (now, or by an earlier
// attempt of this request), the keys shown on the card are revoked.
func (x *executor) withKeyRevocation(r approval.Request, step func(ctx context.Context, i int) outcome) func(ctx context.Context, i int) outcome {
	if (!r.RevokeKeys && !r.Unshare) || r.Action != approval.Disable {
		return step
	}
	dry := r.DryRun || x.dryRun
	return func(ctx context.Context, i int) outcome {
		o := step(ctx, i)
		if o.res.Outcome == approval.TargetFailed {
			return o // the user is not disabled: nothing is revoked, a retry does both
		}
		t := r.Targets[i]
		if t.Leftovers == nil {
			return o
		}
		in, _ := x.in.get(t.InstanceName())
		if kr, ok := in.Leftovers.(keyRevoker); ok && r.RevokeKeys {
			o.keys = revokeShownKeys(ctx, kr, t, dry)
		}
		if lr, ok := in.Leftovers.(linkRemover); ok && r.Unshare {
			o.links = removeShownLinks(ctx, lr, t, dry)
		}
		return o
	}
}

// revokeShownKeys re-reads the keys and deletes those shown on t's card whose updated_by is still
// t, never the bot's own key.
func revokeShownKeys(ctx context.Context, kr keyRevoker, t approval.Target, dry bool) *approval.KeyRevocation {
	res := &approval.KeyRevocation{DryRun: dry}
	shown := make([]int, 0, len(t.Leftovers.Keys))
	names := map[int]approval.LeftKey{}
	for _, k := range t.Leftovers.Keys {
		shown = append(shown, k.ID)
		names[k.ID] = k
	}
	now, err := kr.ListAPIKeys(ctx)
	if err != nil {
		for _, k := range t.Leftovers.Keys {
			res.NotRevoked = append(res.NotRevoked, approval.KeyNote{ID: k.ID, Name: k.Name, Why: approval.KeyFailed, Error: FailureText(err)})
		}
		return res
	}
	p := PlanKeyRevocation(shown, now, t.UserID, kr.IsOwnAPIKey)
	if p.OwnKey != nil || t.Leftovers.OwnKey {
		note := approval.KeyNote{Why: approval.KeyOwn}
		if p.OwnKey != nil {
			note.ID, note.Name = p.OwnKey.ID, p.OwnKey.Name
		}
		res.NotRevoked = append(res.NotRevoked, note)
	}
	for _, id := range p.Gone {
		res.Revoked = append(res.Revoked, names[id]) // deleted by an earlier attempt (or by hand)
	}
	if dry {
		for _, k := range p.Delete {
			res.Revoked = append(res.Revoked, leftKey(k))
		}
	} else {
		for _, oc := range RevokeKeys(ctx, kr, p) {
			if oc.Revoked {
				res.Revoked = append(res.Revoked, leftKey(oc.Key))
				continue
			}
			res.NotRevoked = append(res.NotRevoked, approval.KeyNote{ID: oc.Key.ID, Name: oc.Key.Name, Why: approval.KeyFailed, Error: FailureText(oc.Err)})
		}
	}
	for _, k := range p.Changed {
		res.NotRevoked = append(res.NotRevoked, approval.KeyNote{ID: k.ID, Name: k.Name, Why: approval.KeyChanged})
	}
	for _, k := range p.New {
		res.NotRevoked = append(res.NotRevoked, approval.KeyNote{ID: k.ID, Name: k.Name, Why: approval.KeyNew})
	}
	slices.SortStableFunc(res.Revoked, func(a, b approval.LeftKey) int { return a.ID - b.ID })
	return res
}

func leftKey(k metabase.APIKey) approval.LeftKey {
	return approval.LeftKey{ID: k.ID, Name: truncateRunes(k.Name, maxItemName), Group: k.Group.Name, Admin: k.IsAdmin()}
}

// KeysRevokedCount counts the keys revoke-keys deleted across r's targets (for the audit line).
func KeysRevokedCount(r approval.Request) (revoked, left int) {
	for _, t := range r.Targets {
		if t.KeysRevoked == nil {
			continue
		}
		revoked += len(t.KeysRevoked.Revoked)
		left += len(t.KeysRevoked.NotRevoked)
	}
	return revoked, left
}
