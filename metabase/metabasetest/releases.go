package metabasetest

import "slices"

// WithVersionTag makes the fake report tag as its version (in GET
// /api/session/properties and the x-metabase-version header) instead of
// its era's. "vLOCAL_DEV" is what a Metabase built without its version
// file reports (config/mb-version-info falls back to it): a client must
// probe such an instance rather than guess from the number. The endpoints
// served stay those of the era.
func WithVersionTag(tag string) Option {
	return func(c *config) { c.tag = tag }
}

// WithLastAdminBefore68198 makes the fake check the last admin as Metabase
// did before metabase/metabase PR #68198 ("Fix throw-if-last-admin!",
// merged 2026-01-14, closing #59776). That check,
// throw-if-last-admin! in src/metabase/models/permissions_group_membership.clj
// (toucan2 era, read at 72ab7096), counts every active member of the Admin
// group and refuses at one or fewer, whoever is being removed. It runs from
// the before-delete of the Admin membership, which the user model's
// before-update deletes when is_superuser turns false
// (src/metabase/users/models/user.clj, read at 00fc5ab5): reactivation sets
// is_active true and is_superuser false in one update, while the row still
// says inactive, so reactivating a former admin is refused unless at least
// two other active members are in the Admin group (API keys' users count).
// Deactivating or demoting an admin gives the same answers as the newest
// check, which counts the others (read at 02a18f33). Which release first
// shipped the fix is not pinned. The eras whose versions predate the fix
// (EraNotification, EraPulseAlerts, and the toucan2 era of
// SetLegacyDelete) check the old way without this option; it makes the
// newest era do so too.
func WithLastAdminBefore68198() Option {
	return func(c *config) { c.oldAdmin = true }
}

// tagLocked is the version tag the fake reports.
func (s *Server) tagLocked() string {
	if s.versionTag != "" {
		return s.versionTag
	}
	return s.notif.era.Tag()
}

// reactivationRefusedLocked reports whether reactivating u, an inactive
// user, trips the last-admin check: only a former admin (u is still in
// the Admin group, which deactivation keeps) loses a membership. The
// newest check refuses only when no other active admin exists; the one
// before PR #68198 when fewer than two do (see WithLastAdminBefore68198).
func (s *Server) reactivationRefusedLocked(u *user) bool {
	if !slices.Contains(u.groups, AdministratorsGroupID) {
		return false
	}
	others := s.otherActiveAdminsLocked(u.ID)
	if s.oldLastAdminLocked() {
		return others <= 1
	}
	return others == 0
}

// oldLastAdminLocked reports whether the fake checks the last admin as
// Metabase did before PR #68198: when asked to, and in every era whose
// reported version (v0.56.0, v0.53.0, or the toucan2 users API) came before
// January 2026.
func (s *Server) oldLastAdminLocked() bool {
	return s.oldLastAdmin || s.legacyDelete || s.notif.era != EraNotificationAdmin
}
