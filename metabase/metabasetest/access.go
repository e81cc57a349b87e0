package metabasetest

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// What a deactivated user leaves behind: API keys, public links and the
// sign-in, provisioning and embedding settings (docs/metabase.md#api-key-listing,
// #public-links and #sign-in-settings). The fake models the newest era of
// each endpoint.

// msgPublicSharingOff is the 400 of check-public-sharing-enabled
// (src/metabase/public_sharing/validation.clj at 086b1651), sent as text.
const msgPublicSharingOff = "Public sharing is not enabled."

// APIKey is a row of the fake's api_key table.
type APIKey struct {
	ID     int    // 0 in AddAPIKey: the next free id
	Name   string // unique, as POST /api/api-key requires
	UserID int    // the key's own user; AddAPIKey creates it
	// GroupID is the key's group besides All Users (0 for none):
	// AdministratorsGroupID makes the key an admin.
	GroupID     int
	CreatorID   int // never returned by GET /api/api-key
	UpdatedByID int // the user who last created, renamed or regenerated it
	// SCIM marks a key of scope :scim, which GET /api/api-key never lists.
	SCIM bool
	// Key is the unmasked key; its first 7 characters are the prefix that
	// masked_key shows.
	Key string
}

// PublicItem is a dashboard or a question (card) that may carry a public
// link.
type PublicItem struct {
	Kind       string // "dashboard" or "card"
	ID         int    // 0 in AddPublicItem: the next free id of its kind
	Name       string
	PublicUUID string // "" for an item that is not shared
	// MadePublicByID is the user who first shared it (0 for none).
	MadePublicByID int
	Archived       bool
}

type accessState struct {
	apiKeys   []*APIKey
	nextKeyID int
	items     map[string]map[int]*PublicItem // kind -> id -> item
	nextItem  map[string]int
	settings  map[string]any
}

// Visibility of the settings the fake serves in GET /api/session/properties
// (each defsetting's :visibility; the default is :admin, see
// docs/metabase.md#sign-in-settings). Sensitive settings are never served.
var settingVisibility = map[string]string{
	"enable-public-sharing":           "authenticated",
	"ldap-enabled":                    "public",
	"google-auth-enabled":             "public",
	"enable-embedding":                "authenticated",
	"enable-embedding-static":         "authenticated",
	"enable-embedding-interactive":    "authenticated",
	"enable-embedding-sdk":            "authenticated",
	"enable-embedding-simple":         "authenticated",
	"jwt-enabled":                     "admin",
	"jwt-user-provisioning-enabled?":  "admin",
	"saml-enabled":                    "admin",
	"saml-user-provisioning-enabled?": "admin",
	"ldap-user-provisioning-enabled?": "admin",
	"scim-enabled":                    "admin",
	"jwt-shared-secret":               "sensitive",
	"embedding-secret-key":            "sensitive",
}

func (a *accessState) init() {
	a.nextKeyID = 1
	a.items = map[string]map[int]*PublicItem{"dashboard": {}, "card": {}}
	a.nextItem = map[string]int{"dashboard": 1, "card": 1}
	// Defaults of a fresh instance: public sharing on (public_sharing/settings.clj
	// at 3220d25b), provisioning on for each SSO method (sso/settings.clj at 00f84ab8).
	a.settings = map[string]any{
		"enable-public-sharing":           true,
		"jwt-user-provisioning-enabled?":  true,
		"saml-user-provisioning-enabled?": true,
		"ldap-user-provisioning-enabled?": true,
	}
}

// SetSetting sets an instance setting by its Metabase name, e.g.
// "jwt-enabled" or "enable-public-sharing". Secrets ("jwt-shared-secret",
// "embedding-secret-key") are stored but never served, as Metabase leaves
// sensitive settings out of GET /api/session/properties.
func (s *Server) SetSetting(name string, value any) {
	s.tb.Helper()
	if _, ok := settingVisibility[name]; !ok {
		s.tb.Fatalf("metabasetest: SetSetting(%q): not a setting the fake knows", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access.settings[name] = value
}

// AddAPIKey creates an API key with its own user (see AddAPIKeyUser) and
// its api_key row, updated last by k.UpdatedByID (and created by
// k.CreatorID, default the same). With k.Key set it lists an existing
// key instead, such as AdminAPIKey, keeping the user it authenticates
// as: that is how a test puts the bot's own key among the instance's keys.
func (s *Server) AddAPIKey(k APIKey) APIKey {
	s.tb.Helper()
	if k.Key == "" {
		u, key := s.AddAPIKeyUser(k.Name, k.GroupID)
		k.Key, k.UserID = key, u.ID
	} else {
		s.mu.Lock()
		uid, ok := s.keys[k.Key]
		s.mu.Unlock()
		if !ok {
			s.tb.Fatalf("metabasetest: AddAPIKey: key %q… is not registered", k.Key[:min(7, len(k.Key))])
		}
		k.UserID = uid
	}
	if k.CreatorID == 0 {
		k.CreatorID = k.UpdatedByID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.access.apiKeys {
		if o.Name == k.Name || o.Key[:7] == k.Key[:7] {
			s.tb.Fatalf("metabasetest: AddAPIKey: name or prefix of %q already used", k.Name)
		}
	}
	if k.ID == 0 {
		k.ID = s.access.nextKeyID
	}
	s.access.nextKeyID = max(s.access.nextKeyID, k.ID+1)
	row := k
	s.access.apiKeys = append(s.access.apiKeys, &row)
	return k
}

// APIKeys returns the api_key rows that remain, SCIM keys included.
func (s *Server) APIKeys() []APIKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]APIKey, 0, len(s.access.apiKeys))
	for _, k := range s.access.apiKeys {
		out = append(out, *k)
	}
	return out
}

// AddPublicItem adds a dashboard or card, shared when it has a PublicUUID.
func (s *Server) AddPublicItem(it PublicItem) PublicItem {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	byID, ok := s.access.items[it.Kind]
	if !ok {
		s.tb.Fatalf("metabasetest: AddPublicItem: kind %q, want dashboard or card", it.Kind)
	}
	if it.ID == 0 {
		it.ID = s.access.nextItem[it.Kind]
	}
	s.access.nextItem[it.Kind] = max(s.access.nextItem[it.Kind], it.ID+1)
	row := it
	byID[it.ID] = &row
	return it
}

// PublicItemByID returns the dashboard or card as it is now.
func (s *Server) PublicItemByID(kind string, id int) (PublicItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.access.items[kind][id]
	if !ok {
		return PublicItem{}, false
	}
	return *it, true
}

func isAccessPath(p string) bool {
	for _, base := range []string{"/api/api-key", "/api/dashboard", "/api/card"} {
		if p == base || strings.HasPrefix(p, base+"/") {
			return true
		}
	}
	return false
}

// accessRoutes serves /api/api-key, the public-link routes of
// /api/dashboard and /api/card, and the reads of one dashboard or card.
// Auth is checked before the route is matched.
func (s *Server) accessRoutes(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	caller := s.callerLocked(r)
	if caller == nil {
		writeText(w, http.StatusUnauthorized, msgUnauthenticated)
		return
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/"), "/"), "/")
	if segs[0] == "api-key" {
		s.apiKeyRoutes(w, r.Method, segs[1:], caller)
		return
	}
	kind := segs[0]
	switch {
	case len(segs) == 2 && segs[1] == "public" && r.Method == http.MethodGet:
		s.listPublic(w, kind, caller)
	case len(segs) == 2 && r.Method == http.MethodGet:
		id, ok := parseID(segs[1])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		s.getItem(w, kind, id, caller)
	case len(segs) == 3 && segs[2] == "public_link" && r.Method == http.MethodDelete:
		id, ok := parseID(segs[1])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		s.unshare(w, kind, id, caller)
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// apiKeyRoutes serves the key endpoints of src/metabase/api_keys/api.clj
// (at 06f5232b); each starts with api/check-superuser.
func (s *Server) apiKeyRoutes(w http.ResponseWriter, method string, rest []string, caller *user) {
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	switch {
	case len(rest) == 0 && method == http.MethodGet:
		out := []map[string]any{}
		for _, k := range s.access.apiKeys {
			if k.SCIM {
				continue // :scope nil only
			}
			out = append(out, s.apiKeyJSONLocked(k))
		}
		writeJSON(w, http.StatusOK, out)
	case len(rest) == 1 && rest[0] == "count" && method == http.MethodGet:
		n := 0
		for _, k := range s.access.apiKeys {
			if !k.SCIM {
				n++
			}
		}
		writeJSON(w, http.StatusOK, n)
	case len(rest) == 1 && method == http.MethodDelete:
		id, ok := parseID(rest[0])
		if !ok {
			writeText(w, http.StatusNotFound, msgNoEndpoint)
			return
		}
		for i, k := range s.access.apiKeys {
			if k.ID != id {
				continue
			}
			s.access.apiKeys = append(s.access.apiKeys[:i], s.access.apiKeys[i+1:]...)
			delete(s.keys, k.Key)
			// The model's before-delete deactivates the key's own user
			// when it is of type api-key (api_keys/models/api_key.clj at 061ea3cf).
			if u := s.users[k.UserID]; u != nil && u.kind == "api-key" {
				u.Active = false
				u.touch(s.now())
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeText(w, http.StatusNotFound, msgNotFound)
	default:
		writeText(w, http.StatusNotFound, msgNoEndpoint)
	}
}

// apiKeyJSONLocked is present-api-key: created_at, updated_at,
// updated_by {common_name, id}, id, group {id, name}, name, masked_key.
// creator_id is not returned.
func (s *Server) apiKeyJSONLocked(k *APIKey) map[string]any {
	group := map[string]any{"id": AllUsersGroupID, "name": "All Users"}
	if k.GroupID != 0 {
		name := "Group " + strconv.Itoa(k.GroupID)
		if k.GroupID == AdministratorsGroupID {
			name = "Administrators"
		}
		group = map[string]any{"id": k.GroupID, "name": name}
	}
	var updatedBy any
	if u := s.users[k.UpdatedByID]; u != nil {
		updatedBy = map[string]any{"id": u.ID, "common_name": strings.TrimSpace(u.FirstName + " " + u.LastName)}
	}
	return map[string]any{
		"id": k.ID, "name": k.Name, "group": group, "updated_by": updatedBy,
		"masked_key": k.Key[:7] + strings.Repeat("*", 40),
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp,
	}
}

// listPublic is GET /api/{dashboard,card}/public: application permission
// :setting, then check-public-sharing-enabled; only name, id and
// public_uuid of unarchived shared items (dashboards_rest/api.clj).
func (s *Server) listPublic(w http.ResponseWriter, kind string, caller *user) {
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if !s.publicSharingLocked() {
		writeText(w, http.StatusBadRequest, msgPublicSharingOff)
		return
	}
	out := []map[string]any{}
	for _, it := range s.sortedItemsLocked(kind) {
		if it.PublicUUID == "" || it.Archived {
			continue
		}
		out = append(out, map[string]any{"name": it.Name, "id": it.ID, "public_uuid": it.PublicUUID})
	}
	writeJSON(w, http.StatusOK, out)
}

// getItem is GET /api/{dashboard,card}/:id, reduced to the columns the
// bot reads; made_public_by_id is among the row's columns Metabase returns.
func (s *Server) getItem(w http.ResponseWriter, kind string, id int, caller *user) {
	it := s.access.items[kind][id]
	if it == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	var uuid, by any
	if it.PublicUUID != "" && s.publicSharingLocked() {
		uuid = it.PublicUUID
	}
	if it.MadePublicByID != 0 {
		by = it.MadePublicByID
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": it.ID, "name": it.Name, "archived": it.Archived, "public_uuid": uuid, "made_public_by_id": by,
	})
}

// unshare is DELETE /api/{dashboard,card}/:id/public_link: permission
// :setting, sharing enabled, then check-exists? with a public_uuid and not
// archived (404 otherwise); it clears public_uuid and made_public_by_id
// and answers 204.
func (s *Server) unshare(w http.ResponseWriter, kind string, id int, caller *user) {
	if !caller.Superuser {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	if !s.publicSharingLocked() {
		writeText(w, http.StatusBadRequest, msgPublicSharingOff)
		return
	}
	it := s.access.items[kind][id]
	if it == nil || it.PublicUUID == "" || it.Archived {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	it.PublicUUID, it.MadePublicByID = "", 0
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) publicSharingLocked() bool {
	on, _ := s.access.settings["enable-public-sharing"].(bool)
	return on
}

func (s *Server) sortedItemsLocked(kind string) []*PublicItem {
	out := make([]*PublicItem, 0, len(s.access.items[kind]))
	for _, it := range s.access.items[kind] {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// settingsForLocked returns the settings GET /api/session/properties shows
// this caller: public ones to anyone, authenticated ones to a signed-in
// user, admin ones to an admin, sensitive ones to no one
// (user-readable-values-map in src/metabase/settings/models/setting.clj).
// SCIM forces SAML provisioning off (sso/settings.clj at 00f84ab8).
func (s *Server) settingsForLocked(caller *user) map[string]any {
	out := map[string]any{}
	for name, v := range s.access.settings {
		switch settingVisibility[name] {
		case "public":
		case "authenticated":
			if caller == nil {
				continue
			}
		case "admin":
			if caller == nil || !caller.Superuser {
				continue
			}
		default:
			continue
		}
		out[name] = v
	}
	if scim, _ := s.access.settings["scim-enabled"].(bool); scim && caller != nil && caller.Superuser {
		out["saml-user-provisioning-enabled?"] = false
	}
	return out
}
