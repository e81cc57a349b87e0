package approval

import "slices"

// Leftovers is what outlives the disable of one target, looked up when the request was made so
// the card renders it from the store (docs/metabase.md#api-key-listing, #public-links and
// #sign-in-settings). Stored: never rename a field.
type Leftovers struct {
	// Keys are the API keys the target last created, renamed or regenerated (Metabase does not
	// say who created a key, and never lists SCIM keys), the bot's own key excepted.
	Keys []LeftKey `json:"keys,omitempty"`
	// OwnKey: the key the bot signs in with was last changed by the target. It is never
	// revoked; an admin rotates it by hand.
	OwnKey bool `json:"own_key,omitempty"`
	// AdminKeys counts the instance's Admin-group keys, for an admin target; nil otherwise.
	AdminKeys *int `json:"admin_keys,omitempty"`
	// Links are the target's public links (Metabase named them as the sharer).
	Links []LeftLink `json:"links,omitempty"`
	// PublicLinks counts every public link of the instance; UnknownSharer those whose sharer
	// Metabase did not say.
	PublicLinks   int `json:"public_links,omitempty"`
	UnknownSharer int `json:"unknown_sharer,omitempty"`
	// SharingOff: public sharing is off; links made earlier come back when it is turned on.
	SharingOff bool `json:"sharing_off,omitempty"`
	// Secrets are the instance secrets an admin target could read: "embedding", "jwt".
	Secrets []string `json:"secrets,omitempty"`
	// Holds are the ways the disable may not last: "scim", "jwt", "saml", "not_known".
	Holds []string `json:"holds,omitempty"`
	// AdminMayReturn: a sign-in that re-activates the target may restore admin rights too.
	AdminMayReturn bool `json:"admin_may_return,omitempty"`
	// Error is why the lookup failed; the rest is empty then.
	Error string `json:"error,omitempty"`
}

// LeftKey is an API key on the card.
type LeftKey struct {
	ID    int    `json:"id"`
	Name  string `json:"name,omitempty"`
	Group string `json:"group,omitempty"`
	Admin bool   `json:"admin,omitempty"`
}

// LeftLink is a public dashboard ("dashboard") or question ("card").
type LeftLink struct {
	Kind string `json:"kind"`
	ID   int    `json:"id"`
	Name string `json:"name,omitempty"`
}

// Empty reports whether there is nothing to show.
func (l *Leftovers) Empty() bool {
	return l == nil || (len(l.Keys) == 0 && !l.OwnKey && l.AdminKeys == nil && len(l.Links) == 0 &&
		l.UnknownSharer == 0 && !l.SharingOff && len(l.Secrets) == 0 && len(l.Holds) == 0 && l.Error == "")
}

// clone returns a deep copy, so a cloned request shares nothing with its original.
func (l *Leftovers) clone() *Leftovers {
	if l == nil {
		return nil
	}
	c := *l
	c.Keys = slices.Clone(l.Keys)
	c.Links = slices.Clone(l.Links)
	c.Secrets = slices.Clone(l.Secrets)
	c.Holds = slices.Clone(l.Holds)
	if l.AdminKeys != nil {
		n := *l.AdminKeys
		c.AdminKeys = &n
	}
	return &c
}

// KeyRevocation is what an approved `revoke-keys` did for one target. Stored: never rename a
// field.
type KeyRevocation struct {
	// DryRun: nothing was deleted; Revoked lists what would have been.
	DryRun bool `json:"dry_run,omitempty"`
	// Revoked are the keys deleted, or found already gone on a repeat after a crash.
	Revoked []LeftKey `json:"revoked,omitempty"`
	// NotRevoked are the keys listed and left, each with why.
	NotRevoked []KeyNote `json:"not_revoked,omitempty"`
}

// Why a key was not revoked. Stored: never rename one.
const (
	// KeyOwn: the key the bot signs in with; an admin rotates it by hand.
	KeyOwn = "own_key"
	// KeyChanged: someone other than the target changed it after the card was made.
	KeyChanged = "changed"
	// KeyNew: the target changed it after the card was made, so nobody approved deleting it.
	KeyNew = "new"
	// KeyFailed: Metabase refused or did not answer the delete (Error says why).
	KeyFailed = "failed"
)

// KeyNote is a key that was not revoked.
type KeyNote struct {
	ID    int    `json:"id"`
	Name  string `json:"name,omitempty"`
	Why   string `json:"why"`
	Error string `json:"error,omitempty"`
}

// RecordKeys stores what revoke-keys did for target i.
func (r *Request) RecordKeys(i int, k *KeyRevocation) {
	if k == nil || i < 0 || i >= len(r.Targets) {
		return
	}
	c := *k
	c.Revoked = slices.Clone(k.Revoked)
	c.NotRevoked = slices.Clone(k.NotRevoked)
	r.Targets[i].KeysRevoked = &c
}

// RecordKeysFrom keeps a copy of what revoke-keys did, for a return to say it is not restored.
func (t *Target) RecordKeysFrom(k *KeyRevocation) {
	c := *k
	c.Revoked = slices.Clone(k.Revoked)
	c.NotRevoked = slices.Clone(k.NotRevoked)
	t.KeysRevoked = &c
}

// KeysRevokedAny reports whether revoke-keys deleted a key of any of r's targets (dry runs
// excepted).
func (r Request) KeysRevokedAny() bool {
	for _, t := range r.Targets {
		if t.KeysRevoked != nil && !t.KeysRevoked.DryRun && len(t.KeysRevoked.Revoked) > 0 {
			return true
		}
	}
	return false
}

// LinkRemoval is what an approved `unshare` did for one target. Stored: never rename a field.
type LinkRemoval struct {
	DryRun     bool       `json:"dry_run,omitempty"`
	Removed    []LeftLink `json:"removed,omitempty"`
	NotRemoved []LinkNote `json:"not_removed,omitempty"`
}

// Why a link was not removed. Stored: never rename one.
const (
	// LinkSharedByOther: Metabase now names someone else as its sharer (unshared and shared
	// again since the card).
	LinkSharedByOther = "shared_by_other"
	// LinkSharingOff: public sharing was turned off, so no link can be removed.
	LinkSharingOff = "sharing_off"
	// LinkFailed: Metabase refused or did not answer (Error says why).
	LinkFailed = "failed"
)

// LinkNote is a link that was not removed.
type LinkNote struct {
	LeftLink
	Why   string `json:"why"`
	Error string `json:"error,omitempty"`
}

// RecordLinks stores what unshare did for target i.
func (r *Request) RecordLinks(i int, l *LinkRemoval) {
	if l == nil || i < 0 || i >= len(r.Targets) {
		return
	}
	c := *l
	c.Removed = slices.Clone(l.Removed)
	c.NotRemoved = slices.Clone(l.NotRemoved)
	r.Targets[i].LinksRemoved = &c
}
