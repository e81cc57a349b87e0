package metabasetest

import (
	"net/http"
	"slices"
)

// Messages of Metabase's membership rules (docs/metabase.md#membership-rules).
const (
	msgAllUsersGroup       = "You cannot add or remove users to/from the 'All Users' group."
	msgAllTenantUsersGroup = "You cannot add or remove users to/from the 'All tenant users' group."
	msgSuperuserMismatch   = "Value of is_superuser must correspond to presence of Admin group ID in group_ids."
	msgBadGroupPair        = "Cannot add non-tenant user to tenant-group or vice versa"
	msgNoMembershipEdit    = "Not allowed to edit group memberships"
)

// membershipEntry is one element of user_group_memberships in a PUT or
// POST body.
type membershipEntry struct {
	ID int
	// Manager is is_group_manager, nil when the entry lacks it.
	Manager *bool
}

// memberState is a user's group memberships: what a request starts from
// and what it leaves.
type memberState struct {
	groups   []int // sorted
	managers []int // sorted subset of groups
	super    bool
}

// planMemberships applies user_group_memberships to u, whose memberships
// are st after any is_superuser change of the same request, and returns
// the result. On failure it writes Metabase's error and reports false;
// nothing has changed then, as Metabase runs the whole PUT in one
// transaction. superuser is the request's is_superuser, nil when absent.
func (s *Server) planMemberships(w http.ResponseWriter, u, caller *user, st memberState, superuser *bool, entries []membershipEntry) (memberState, bool) {
	ids := make([]int, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	newGroups := sortedSet(ids)
	// users_rest/api.clj, maybe-set-user-group-memberships!: both given
	// must agree, whatever the edition.
	if superuser != nil && *superuser != slices.Contains(newGroups, AdministratorsGroupID) {
		checkpError(w, "is_superuser", msgSuperuserMismatch)
		return st, false
	}
	var toRemove, toAdd []int
	var managers []int
	if s.advanced {
		// Enterprise group-manager set-user-group-memberships! diffs maps of
		// group id -> {:is_group_manager …}: an entry without the key
		// differs from the stored false, so that membership is deleted and
		// inserted again.
		if !caller.Superuser {
			writeText(w, http.StatusForbidden, msgNoMembershipEdit)
			return st, false
		}
		want := map[int]*bool{}
		for _, e := range entries {
			want[e.ID] = e.Manager
		}
		for _, g := range st.groups {
			m, ok := want[g]
			switch {
			case !ok:
				toRemove = append(toRemove, g)
			case m == nil || *m != slices.Contains(st.managers, g):
				toRemove, toAdd = append(toRemove, g), append(toAdd, g)
			}
		}
		for _, g := range newGroups {
			if _, ok := want[g]; ok && !slices.Contains(st.groups, g) {
				toAdd = append(toAdd, g)
			}
			if m := want[g]; m != nil && *m {
				managers = append(managers, g)
			}
		}
	} else {
		// Open source: users/models/user.clj set-permissions-groups!, run
		// only when the set of ids differs from the current one.
		if slices.Equal(newGroups, st.groups) {
			return st, true
		}
		if !caller.Superuser {
			writeText(w, http.StatusForbidden, msgForbidden)
			return st, false
		}
		for _, g := range st.groups {
			if !slices.Contains(newGroups, g) {
				toRemove = append(toRemove, g)
			}
		}
		for _, g := range newGroups {
			if !slices.Contains(st.groups, g) {
				toAdd = append(toAdd, g)
			}
		}
		for _, g := range st.managers {
			if slices.Contains(newGroups, g) {
				managers = append(managers, g)
			}
		}
	}
	if !s.checkRemovals(w, u, toRemove) || !s.checkAdditions(w, u, toAdd) {
		return st, false
	}
	return memberState{groups: newGroups, managers: managers, super: slices.Contains(newGroups, AdministratorsGroupID)}, true
}

// checkRemovals applies the before-delete rules of
// permissions_group_membership.clj to the memberships a request removes.
func (s *Server) checkRemovals(w http.ResponseWriter, u *user, groups []int) bool {
	switch {
	case slices.Contains(groups, AllUsersGroupID):
		writeText(w, http.StatusBadRequest, msgAllUsersGroup)
		return false
	case slices.Contains(groups, AllTenantUsersGroupID):
		writeText(w, http.StatusBadRequest, msgAllTenantUsersGroup)
		return false
	case slices.Contains(groups, AdministratorsGroupID) && s.otherActiveAdminsLocked(u.ID) == 0:
		writeText(w, http.StatusBadRequest, msgLastAdmin)
		return false
	}
	return true
}

// checkAdditions applies the rules of add-users-to-groups!
// (permissions_group_membership.clj) to the memberships a request adds:
// no magic group, and in the newest version a group must match the user's
// tenancy, which a group that does not exist never does. Older versions
// insert the row and the foreign key fails with a 500.
func (s *Server) checkAdditions(w http.ResponseWriter, u *user, groups []int) bool {
	switch {
	case slices.Contains(groups, AllUsersGroupID):
		writeText(w, http.StatusBadRequest, msgAllUsersGroup)
		return false
	case slices.Contains(groups, AllTenantUsersGroupID):
		writeText(w, http.StatusBadRequest, msgAllTenantUsersGroup)
		return false
	}
	for _, g := range groups {
		if !s.groups[g] && s.legacyDelete {
			legacyServerError(w, `ERROR: insert or update on table "permissions_group_membership" violates foreign key constraint`)
			return false
		}
		if !s.groups[g] || u.TenantID != 0 {
			// Tenant users may join only tenant groups, which the fake
			// does not model beyond All tenant users.
			badGroupPair(w)
			return false
		}
	}
	return true
}

// checkpError writes the 400 of Metabase's api/checkp: JSON with only
// "errors" (api/common.clj throw-invalid-param-exception).
func checkpError(w http.ResponseWriter, param, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{param: msg}})
}

// badGroupPair writes the 400 of add-users-to-groups! for a group that
// does not match the user's tenancy (or does not exist): an ex-info with
// extra data, so JSON with "message".
func badGroupPair(w http.ResponseWriter) {
	data := map[string]any{"status-code": 400}
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"message": msgBadGroupPair,
		"cause":   msgBadGroupPair,
		"data":    data,
		"via":     []map[string]any{{"type": "clojure.lang.ExceptionInfo", "message": msgBadGroupPair, "data": data}},
		"trace":   []any{},
	})
}
