package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/metabase-bot/metabase-bot/metabase"
)

// Deactivating a Metabase user ends their sessions at once (every session lookup requires an
// active user), but several kinds of access do not depend on the person's account at all: API
// keys are users of their own, public links answer anyone, and secrets an admin read stay
// valid; and some sign-in methods re-activate the account (docs/metabase.md#api-key-listing,
// #public-links, #sign-in-settings). This file finds them for one target so the card can show
// them before approval, and plans the revocation an approval asks for.

// Leftovers is what outlives the disable of one target in one instance.
type Leftovers struct {
	// Keys are the API keys the target last created, renamed or regenerated (updated_by),
	// the bot's own key excepted. Metabase does not say who created a key, and never lists
	// SCIM keys.
	Keys []LeftKey
	// OwnKeyByTarget: the key the bot signs in with was last changed by the target. It is
	// never revoked; an admin rotates it by hand.
	OwnKeyByTarget bool
	// AdminKeys is how many Admin-group keys the instance has in all, for an admin target
	// (-1 otherwise).
	AdminKeys int
	// Links are the target's public links: the items whose made_public_by_id is the target.
	Links []metabase.PublicLink
	// UnknownSharer counts the public links whose sharer Metabase did not say (or that were
	// not read, beyond maxListedItems); PublicLinks counts every public link.
	UnknownSharer, PublicLinks int
	// SharingOff: public sharing is off, so links cannot be listed or removed, and those
	// made earlier come back when it is turned on.
	SharingOff bool
	// Secrets are the instance secrets an admin target could read.
	Secrets []Secret
	// Hold says what could undo the disable.
	Hold []Hold
	// AdminMayReturn: a sign-in that re-activates the target may also restore admin rights
	// (unverified; docs/metabase.md#sign-in-settings).
	AdminMayReturn bool
}

// LeftKey is an API key on the card.
type LeftKey struct {
	ID    int
	Name  string
	Group string
	Admin bool
}

// Secret names an instance secret that outlives an admin who could read it.
type Secret string

// Secrets.
const (
	// SecretEmbedding: the embedding secret key, which signs embeds of every embeddable item.
	SecretEmbedding Secret = "embedding"
	// SecretJWT: the JWT shared secret, with which anyone can sign in as anyone (and, with
	// provisioning on, re-activate any account).
	SecretJWT Secret = "jwt"
)

// Hold names a way the disable may not last.
type Hold string

// Holds.
const (
	// HoldSCIM: the target was provisioned by SCIM, whose identity provider sets is_active at
	// its next push.
	HoldSCIM Hold = "scim"
	// HoldJWT, HoldSAML: a JWT or SAML sign-in with the target's email re-activates them
	// (provisioning on, Metabase 0.56 or later or a version it did not say).
	HoldJWT  Hold = "jwt"
	HoldSAML Hold = "saml"
	// HoldNotKnown: the target signs in with Google or OIDC, whose re-activation rules were
	// not verified in Metabase's source.
	HoldNotKnown Hold = "not_known"
)

// ssoReactivationFeature is the first release whose JWT and SAML sign-in re-activates a
// deactivated user with provisioning on (PR #58582; docs/metabase.md#sign-in-settings).
const ssoReactivationFeature = 56

// LeftoverSource is the part of the Metabase client that reads what outlives a disable
// (package metabase: *Client). SignInSettings comes through metabase.SettingsReader, so a cache
// of instance facts can answer it instead of a call.
type LeftoverSource interface {
	metabase.SettingsReader
	ListAPIKeys(ctx context.Context) ([]metabase.APIKey, error)
	IsOwnAPIKey(k metabase.APIKey) bool
	ListPublicLinks(ctx context.Context) ([]metabase.PublicLink, error)
	PublicLinkSharer(ctx context.Context, l metabase.PublicLink) (int, error)
}

// linkReadConcurrency bounds the reads of who shared each link.
const linkReadConcurrency = 4

// lookUpLeftovers finds what outlives the disable of target. Settings give the holds and
// secrets; keys and links need the bot to be an admin, which it is.
func lookUpLeftovers(ctx context.Context, src LeftoverSource, target metabase.User) (Leftovers, error) {
	snap, err := readLeftovers(ctx, src)
	if err != nil {
		return Leftovers{}, err
	}
	return snap.of(target), nil
}

// leftoverSnapshot is what outlives a disable in one instance, read once for every target of a
// request: the sign-in settings, the API keys and the public links with who shared each are the
// same whoever is disabled, so a request naming fifty people reads them once, not fifty times.
type leftoverSnapshot struct {
	set        metabase.SignInSettings
	keys       []metabase.APIKey
	noKeys     bool // Metabase before API keys (0.49)
	own        func(metabase.APIKey) bool
	sharingOff bool
	links      []metabase.PublicLink
	sharers    []int // of links, 0 where Metabase does not say
	unread     int   // links past maxListedItems, whose sharer was not read
}

// readLeftovers reads src's snapshot. The three reads are independent, and with an API key
// each costs Metabase a bcrypt check: they run at once, so the card waits for the slowest, not
// the sum.
func readLeftovers(ctx context.Context, src LeftoverSource) (leftoverSnapshot, error) {
	snap := leftoverSnapshot{own: src.IsOwnAPIKey}
	var (
		setErr, keysErr, linksErr error
		wg                        sync.WaitGroup
	)
	wg.Go(func() { snap.set, setErr = src.SignInSettings(ctx) })
	wg.Go(func() { snap.keys, keysErr = src.ListAPIKeys(ctx) })
	wg.Go(func() { linksErr = snap.readLinks(ctx, src) })
	wg.Wait()
	if setErr != nil {
		return leftoverSnapshot{}, fmt.Errorf("sign-in settings: %w", setErr)
	}
	if linksErr != nil {
		return leftoverSnapshot{}, fmt.Errorf("public links: %w", linksErr)
	}
	switch {
	case errors.Is(keysErr, metabase.ErrNotSupported):
		// Before 0.49 Metabase has no API keys (docs/metabase.md#api-key-listing): none to show.
		snap.noKeys = true
	case keysErr != nil:
		return leftoverSnapshot{}, fmt.Errorf("API keys: %w", keysErr)
	}
	return snap, nil
}

// of is what outlives the disable of target in the snapshot's instance.
func (snap leftoverSnapshot) of(target metabase.User) Leftovers {
	var l Leftovers
	l.SharingOff = snap.sharingOff
	l.PublicLinks, l.UnknownSharer = len(snap.links), snap.unread
	l.PublicLinks += snap.unread
	for i, link := range snap.links {
		switch snap.sharers[i] {
		case 0:
			l.UnknownSharer++
		case target.ID:
			l.Links = append(l.Links, link)
		}
	}
	l.AdminKeys = -1
	l.Hold, l.AdminMayReturn = Holds(snap.set, target)
	if target.IsSuperuser {
		if snap.set.Embedding {
			l.Secrets = append(l.Secrets, SecretEmbedding)
		}
		if snap.set.JWT {
			l.Secrets = append(l.Secrets, SecretJWT)
		}
	}
	if !snap.noKeys {
		l.Keys, l.OwnKeyByTarget, l.AdminKeys = keysOf(snap.keys, target, snap.own)
	}
	return l
}

func keysOf(keys []metabase.APIKey, target metabase.User, own func(metabase.APIKey) bool) (mine []LeftKey, ownByTarget bool, adminKeys int) {
	adminKeys = -1
	if target.IsSuperuser {
		adminKeys = 0
	}
	for _, k := range keys {
		if target.IsSuperuser && k.IsAdmin() {
			adminKeys++
		}
		if k.UpdatedBy.ID != target.ID {
			continue
		}
		if own(k) {
			ownByTarget = true
			continue
		}
		mine = append(mine, LeftKey{ID: k.ID, Name: k.Name, Group: k.Group.Name, Admin: k.IsAdmin()})
	}
	return mine, ownByTarget, adminKeys
}

// readLinks lists the public links and reads who shared each, at most maxListedItems of them.
func (snap *leftoverSnapshot) readLinks(ctx context.Context, src LeftoverSource) error {
	links, err := src.ListPublicLinks(ctx)
	if errors.Is(err, metabase.ErrPublicSharingOff) {
		snap.sharingOff = true
		return nil
	}
	if err != nil {
		return err
	}
	read := links[:min(len(links), maxListedItems)]
	snap.unread = len(links) - len(read)
	sharers := make([]int, len(read))
	errs := make([]error, len(read))
	sem := make(chan struct{}, linkReadConcurrency)
	var wg sync.WaitGroup
	for i, link := range read {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sharers[i], errs[i] = src.PublicLinkSharer(ctx, link)
		})
	}
	wg.Wait()
	for i, link := range read {
		switch {
		case errors.Is(errs[i], metabase.ErrNotFound):
			// Unshared or archived since the listing: no longer a public link.
		case errs[i] != nil:
			return errs[i]
		default:
			snap.links = append(snap.links, link)
			snap.sharers = append(snap.sharers, sharers[i])
		}
	}
	return nil
}

// Holds says what may undo the disable of target, from the instance's sign-in settings and
// version and the target's sso_source (docs/metabase.md#sign-in-settings):
//   - SCIM on and the target provisioned by it: the identity provider re-activates them at
//     its next push;
//   - JWT or SAML sign-in with provisioning on, on a Metabase that re-activates on login (0.56
//     on, or a version it did not say): a sign-in with their email re-activates them, whatever
//     their sso_source, since the sign-in finds users by email; for an admin, admin rights may
//     come back too (unverified);
//   - LDAP does not re-activate: a deactivated LDAP user is refused;
//   - a Google or OIDC user: not known.
//
// Nothing else applies: a password user on a SCIM instance without JWT or SAML gets nothing.
func Holds(set metabase.SignInSettings, target metabase.User) (holds []Hold, adminMayReturn bool) {
	if set.SCIM && target.SSOSource == "scim" {
		holds = append(holds, HoldSCIM)
	}
	reactivates := !set.Version.Known() || set.Version.AtLeast(ssoReactivationFeature)
	if reactivates && set.JWT && set.JWTProvisioning {
		holds = append(holds, HoldJWT)
	}
	if reactivates && set.SAML && set.SAMLProvisioning {
		holds = append(holds, HoldSAML)
	}
	if target.SSOSource == "google" || target.SSOSource == "oidc" {
		holds = append(holds, HoldNotKnown)
	}
	adminMayReturn = target.IsSuperuser && (slices.Contains(holds, HoldJWT) || slices.Contains(holds, HoldSAML))
	return holds, adminMayReturn
}

// UnshareRefusal returns why `unshare` cannot be asked for with these leftovers, nil when it
// can: public sharing is off (nothing can be removed), or Metabase does not say who shared some
// link, so the target's links cannot all be known.
func UnshareRefusal(l Leftovers, subject string) *Refusal {
	switch {
	case l.SharingOff:
		return &Refusal{Code: UnshareSharingOff, Subject: subject}
	case l.UnknownSharer > 0:
		return &Refusal{Code: UnshareSharerUnknown, Subject: subject}
	}
	return nil
}

// Refusal codes of the revocation options.
const (
	// UnshareSharerUnknown: Metabase does not say who shared a link; review them in Admin >
	// Settings > Public sharing.
	UnshareSharerUnknown Code = "unshare_sharer_unknown"
	// UnshareSharingOff: public sharing is off, so no link can be removed.
	UnshareSharingOff Code = "unshare_sharing_off"
	// RevokeOnlyDisable: revoke-keys and unshare go with a disable, never with an enable.
	RevokeOnlyDisable Code = "revoke_only_disable"
	// UnshareNotLookedUp: the API keys and public links of Subject could not be looked up (Other
	// says why), so revoke-keys and unshare cannot say what they would remove.
	UnshareNotLookedUp Code = "unshare_not_looked_up"
	// UnshareUnavailable: this bot cannot remove public links in instance Subject.
	UnshareUnavailable Code = "unshare_unavailable"
)

// KeyPlan is what an approved `revoke-keys` does, decided when the execution re-reads the keys.
type KeyPlan struct {
	// Delete are the keys shown on the card whose updated_by is still the target.
	Delete []metabase.APIKey
	// OwnKey is set when the bot's own key was among them: it is never deleted.
	OwnKey *metabase.APIKey
	// Changed are keys shown on the card that someone else changed since: listed, not deleted.
	Changed []metabase.APIKey
	// Gone are the ids shown on the card that Metabase no longer lists: deleted already, by
	// an earlier attempt of this execution or by someone else.
	Gone []int
	// New are keys the target changed that the card did not show: listed, not deleted.
	New []metabase.APIKey
}

// PlanKeyRevocation decides which keys to delete: exactly the ids shown on the card whose
// updated_by is still the target now, never the bot's own key.
func PlanKeyRevocation(shown []int, now []metabase.APIKey, targetID int, own func(metabase.APIKey) bool) KeyPlan {
	var p KeyPlan
	listed := map[int]metabase.APIKey{}
	for _, k := range now {
		listed[k.ID] = k
	}
	for _, id := range shown {
		k, ok := listed[id]
		switch {
		case !ok:
			p.Gone = append(p.Gone, id)
		case own(k):
			p.OwnKey = &k
		case k.UpdatedBy.ID != targetID:
			p.Changed = append(p.Changed, k)
		default:
			p.Delete = append(p.Delete, k)
		}
	}
	for _, k := range now {
		if k.UpdatedBy.ID == targetID && !slices.Contains(shown, k.ID) {
			if own(k) {
				if p.OwnKey == nil {
					p.OwnKey = &k
				}
				continue
			}
			p.New = append(p.New, k)
		}
	}
	return p
}

// KeyDeleter deletes API keys (package metabase: *Client).
type KeyDeleter interface {
	DeleteAPIKey(ctx context.Context, id int) error
}

// KeyOutcome is what happened to one key of a plan.
type KeyOutcome struct {
	Key     metabase.APIKey
	Revoked bool  // deleted now, or found already gone (404) on a repeat
	Err     error // the delete failed; the execution retries
}

// RevokeKeys deletes the plan's keys one by one. A key already gone (404) counts as revoked,
// so a repeat after a crash finishes what the first attempt began and deletes nothing twice.
func RevokeKeys(ctx context.Context, d KeyDeleter, p KeyPlan) []KeyOutcome {
	out := make([]KeyOutcome, 0, len(p.Delete))
	for _, k := range p.Delete {
		err := d.DeleteAPIKey(ctx, k.ID)
		if errors.Is(err, metabase.ErrNotFound) {
			err = nil
		}
		out = append(out, KeyOutcome{Key: k, Revoked: err == nil, Err: err})
	}
	return out
}
