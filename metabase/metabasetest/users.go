package metabasetest

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// User is a user of the fake, as given to AddUser and returned by
// UserByID.
type User struct {
	ID         int // 0 in AddUser: the next free id
	Email      string
	FirstName  string
	LastName   string
	Active     bool
	Superuser  bool // superusers are in group 2 (Administrators)
	LastLogin  *time.Time
	DateJoined time.Time // zero in AddUser: now
	SSOSource  string
	// GroupIDs are the user's groups; everyone is in group 1 (All Users),
	// or group AllTenantUsersGroupID for a tenant user. AddUser creates
	// the groups it names that do not exist yet.
	GroupIDs []int
	// ManagedGroupIDs are the groups whose membership has
	// is_group_manager set (see WithAdvancedPermissions); each must also
	// be in GroupIDs.
	ManagedGroupIDs []int
	// TenantID is the user's tenant, 0 for none. Tenant users are listed
	// by GET /api/user only when asked for (tenancy, tenant_id) and
	// cannot be superusers.
	TenantID int
	// Type is "personal" (the default) or "api-key", which needs an email
	// ending @api-key.invalid as Metabase gives (or use AddAPIKeyUser).
	// Only personal users are listed by GET /api/user. Metabase never
	// returns the type, so a client sees it only through that email.
	Type string
}

// user is the stored form of a User.
type user struct {
	User
	kind       string // personal, api-key or internal
	groups     []int  // sorted, always has the user's base group
	managers   []int  // sorted subset of groups
	password   string
	lf, ll, le string // lowered first name, last name and email
	updatedAt  time.Time
}

// touch moves updated_at, as every update of core_user does in Metabase
// (src/metabase/users/models/user.clj, :hook/updated-at-timestamped?). It
// always moves forward by at least the millisecond the JSON shows, so two
// changes in one millisecond still tell apart.
func (u *user) touch(now time.Time) {
	t := now.UTC().Truncate(time.Millisecond)
	if !t.After(u.updatedAt) {
		t = u.updatedAt.Add(time.Millisecond)
	}
	u.updatedAt = t
}

func (u *user) setKeys() {
	u.lf, u.ll, u.le = strings.ToLower(u.FirstName), strings.ToLower(u.LastName), strings.ToLower(u.Email)
}

// baseGroup is the magic group every user of this kind belongs to and
// no request may add or remove.
func (u *user) baseGroup() int {
	if u.TenantID != 0 {
		return AllTenantUsersGroupID
	}
	return AllUsersGroupID
}

// compareUsers is GET /api/user's order: lower(first_name),
// lower(last_name), id (docs/metabase.md#list-users).
func compareUsers(a, b *user) int {
	if c := strings.Compare(a.lf, b.lf); c != 0 {
		return c
	}
	if c := strings.Compare(a.ll, b.ll); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// normGroups returns ids plus base, plus Administrators when superuser,
// sorted and without duplicates.
func normGroups(ids []int, base int, superuser bool) []int {
	g := append([]int{base}, ids...)
	if superuser {
		g = append(g, AdministratorsGroupID)
	}
	slices.Sort(g)
	return slices.Compact(g)
}

func sortedSet(ids []int) []int {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

func (u *user) export() User {
	x := u.User
	x.GroupIDs = slices.Clone(u.groups)
	x.ManagedGroupIDs = slices.Clone(u.managers)
	x.Type = u.kind
	if u.LastLogin != nil {
		t := *u.LastLogin
		x.LastLogin = &t
	}
	return x
}

// AddUser adds a user and returns it as stored (with its id, groups and
// defaults). It creates the groups and the tenant the user names. A user
// Metabase could not have (an email or id already in use, a tenant user
// who is a superuser, an API key's user without its kind of email) fails
// the test.
func (s *Server) AddUser(u User) User {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	nu, err := s.newUserLocked(u)
	if err != nil {
		s.tb.Fatalf("metabasetest: AddUser: %v", err)
	}
	s.insertLocked(nu)
	return nu.export()
}

func (s *Server) newUserLocked(u User) (*user, error) {
	if _, dup := s.byEmail[strings.ToLower(u.Email)]; dup {
		return nil, fmt.Errorf("email %q already in use", u.Email)
	}
	if _, dup := s.users[u.ID]; dup && u.ID != 0 {
		return nil, fmt.Errorf("id %d already in use", u.ID)
	}
	switch u.Type {
	case "", "personal":
	case "api-key":
		// Metabase creates such users only with a key, and always with
		// this email (api_keys/models/api_key.clj); clients rely on it.
		if !strings.HasSuffix(strings.ToLower(u.Email), "@api-key.invalid") {
			return nil, fmt.Errorf("API key's user %q: Metabase gives these emails ending @api-key.invalid", u.Email)
		}
	default:
		return nil, fmt.Errorf("user type %q: want personal or api-key", u.Type)
	}
	if slices.Contains(u.GroupIDs, AdministratorsGroupID) {
		u.Superuser = true
	}
	if u.TenantID != 0 && u.Superuser {
		// "Superusers cannot be tenant users" (users_rest/api.clj).
		return nil, fmt.Errorf("tenant user %q cannot be a superuser", u.Email)
	}
	base := AllUsersGroupID
	if u.TenantID != 0 {
		base = AllTenantUsersGroupID
	}
	for _, g := range u.GroupIDs {
		if g <= 0 {
			return nil, fmt.Errorf("group id %d is not positive", g)
		}
		if (g == AllUsersGroupID || g == AllTenantUsersGroupID) && g != base {
			return nil, fmt.Errorf("user %q cannot be in magic group %d", u.Email, g)
		}
	}
	groups := normGroups(u.GroupIDs, base, u.Superuser)
	managers := sortedSet(u.ManagedGroupIDs)
	for _, g := range managers {
		if !slices.Contains(groups, g) {
			return nil, fmt.Errorf("managed group %d is not one of the user's groups %v", g, groups)
		}
	}
	for _, g := range groups {
		s.groups[g] = true
	}
	if u.TenantID != 0 {
		if _, ok := s.tenants[u.TenantID]; !ok {
			s.tenants[u.TenantID] = true
		}
	}
	if u.ID == 0 {
		u.ID = s.nextID
	}
	if u.ID >= s.nextID && u.ID != InternalUserID {
		s.nextID = u.ID + 1
	}
	if u.DateJoined.IsZero() {
		u.DateJoined = s.now().UTC().Truncate(time.Millisecond)
	}
	kind := u.Type
	if kind == "" {
		kind = "personal"
	}
	nu := &user{User: u, kind: kind, groups: groups, managers: managers, updatedAt: u.DateJoined}
	nu.GroupIDs, nu.ManagedGroupIDs = nil, nil
	return nu, nil
}

// insertLocked stores u, keeping s.sorted in list order.
func (s *Server) insertLocked(u *user) {
	u.setKeys()
	s.users[u.ID] = u
	if u.Email != "" {
		s.byEmail[u.le] = u
	}
	if u.kind != "personal" {
		return
	}
	i := sort.Search(len(s.sorted), func(i int) bool { return compareUsers(s.sorted[i], u) >= 0 })
	s.sorted = slices.Insert(s.sorted, i, u)
}

// removeSortedLocked takes u out of s.sorted (before its names change).
func (s *Server) removeSortedLocked(u *user) {
	if u.kind != "personal" {
		return
	}
	i := sort.Search(len(s.sorted), func(i int) bool { return compareUsers(s.sorted[i], u) >= 0 })
	if i < len(s.sorted) && s.sorted[i] == u {
		s.sorted = slices.Delete(s.sorted, i, i+1)
	}
}

// AddAPIKeyUser creates an API key and the user Metabase makes for it
// (api_keys/models/api_key.clj, create-api-key-with-new-user!): type
// "api-key", email api-key-user-<uuid>@api-key.invalid, first name the
// key's name, last name "", in All Users plus groupID (use
// AdministratorsGroupID for an admin key, 0 for none). It returns the user
// and the key, which authenticates as that user.
func (s *Server) AddAPIKeyUser(name string, groupID int) (User, string) {
	s.tb.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	key := "mb_" + base64.StdEncoding.EncodeToString(b[:])
	var groups []int
	if groupID != 0 {
		groups = []int{groupID}
	}
	u := s.AddUser(User{
		Email:     "api-key-user-" + newUUID() + "@api-key.invalid",
		FirstName: name, Active: true, GroupIDs: groups, Type: "api-key",
	})
	s.mu.Lock()
	s.keys[key] = u.ID
	s.mu.Unlock()
	return u, key
}

// AddGroup creates the permissions group id, so that requests may add
// users to it. AddUser creates the groups it names by itself.
func (s *Server) AddGroup(id int) {
	s.tb.Helper()
	if id <= 0 {
		s.tb.Fatalf("metabasetest: AddGroup: id %d is not positive", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = true
}

// DeleteGroup deletes a permissions group and every membership of it, as
// DELETE /api/permissions/group/:id does; later requests naming it get
// Metabase's unknown-group error. The magic groups cannot be deleted.
func (s *Server) DeleteGroup(id int) {
	s.tb.Helper()
	if id == AllUsersGroupID || id == AdministratorsGroupID || id == AllTenantUsersGroupID {
		s.tb.Fatalf("metabasetest: DeleteGroup: group %d is one of Metabase's magic groups", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, id)
	for _, u := range s.users {
		u.groups = slices.DeleteFunc(u.groups, func(g int) bool { return g == id })
		u.managers = slices.DeleteFunc(u.managers, func(g int) bool { return g == id })
	}
}

// SetTenantActive activates or deactivates a tenant; Metabase refuses to
// reactivate a user of a deactivated tenant. Tenants named by AddUser
// start active.
func (s *Server) SetTenantActive(id int, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenants[id] = active
}

// SeedUsers adds n active non-admin users named "User <id>" with emails
// "user<id>@example.com" (for benchmarks). It takes well under a second
// for 100,000 users.
func (s *Server) SeedUsers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	joined := s.now().UTC().Truncate(time.Millisecond)
	batch := make([]*user, 0, n)
	for range n {
		id := s.nextID
		s.nextID++
		u := &user{User: User{
			ID: id, Email: fmt.Sprintf("user%d@example.com", id),
			FirstName: "User", LastName: fmt.Sprintf("%08d", id),
			Active: true, DateJoined: joined,
		}, kind: "personal", groups: []int{AllUsersGroupID}, updatedAt: joined}
		u.setKeys()
		s.users[id] = u
		s.byEmail[u.le] = u
		batch = append(batch, u)
	}
	if len(batch) == 0 {
		return
	}
	old := len(s.sorted)
	s.sorted = append(s.sorted, batch...)
	if old > 0 && compareUsers(s.sorted[old-1], s.sorted[old]) > 0 {
		slices.SortFunc(s.sorted, compareUsers)
	}
}

// SetPassword sets the password a user logs in with through
// POST /api/session. A missing user fails the test.
func (s *Server) SetPassword(id int, password string) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		s.tb.Fatalf("metabasetest: SetPassword: no user %d", id)
	}
	u.password = password
}

// UserByID returns the current state of a user, for assertions.
func (s *Server) UserByID(id int) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return u.export(), true
}

// ReactivateBySSO simulates a JWT or SAML login by a deactivated user,
// which reactivates them when user provisioning is on
// (docs/metabase.md#sso-reactivation). A missing user fails the test.
func (s *Server) ReactivateBySSO(id int) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		s.tb.Errorf("metabasetest: ReactivateBySSO: no user %d", id)
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	u.Active = true
	u.LastLogin = &now
	u.touch(now)
}

// otherActiveAdminsLocked counts the active members of the Administrators
// group other than except, for the last-admin guard. Like Metabase's
// throw-if-last-admin! it does not look at the user type: an API key in
// the Administrators group counts (docs/metabase.md#last-admin).
func (s *Server) otherActiveAdminsLocked(except int) int {
	n := 0
	for _, u := range s.users {
		if u.Active && slices.Contains(u.groups, AdministratorsGroupID) && u.ID != except {
			n++
		}
	}
	return n
}

// deactivateLocked marks u inactive and ends its sessions, as the newest
// Metabase does (docs/metabase.md#deactivation). Group memberships stay.
func (s *Server) deactivateLocked(u *user) {
	u.Active = false
	u.touch(s.now())
	for id, uid := range s.sessions {
		if uid == u.ID {
			delete(s.sessions, id)
		}
	}
}

// userJSON is the user object Metabase returns to an admin
// (users/models/user.clj, admin-or-self-visible-columns). There is no
// "type": Metabase does not return it.
type userJSON struct {
	ID                   int          `json:"id"`
	Email                string       `json:"email"`
	FirstName            *string      `json:"first_name"`
	LastName             *string      `json:"last_name"`
	CommonName           string       `json:"common_name"`
	DateJoined           string       `json:"date_joined"`
	LastLogin            *string      `json:"last_login"`
	UpdatedAt            string       `json:"updated_at"`
	IsActive             bool         `json:"is_active"`
	IsSuperuser          bool         `json:"is_superuser"`
	IsQbnewb             bool         `json:"is_qbnewb"`
	SSOSource            *string      `json:"sso_source"`
	Locale               *string      `json:"locale"`
	LoginAttributes      any          `json:"login_attributes"`
	TenantID             *int         `json:"tenant_id"`
	GroupIDs             []int        `json:"group_ids,omitempty"`
	UserGroupMemberships []membership `json:"user_group_memberships,omitempty"`
	PersonalCollectionID int          `json:"personal_collection_id,omitempty"`
}

type membership struct {
	ID int `json:"id"`
	// IsGroupManager is sent only with advanced permissions.
	IsGroupManager *bool `json:"is_group_manager,omitempty"`
}

// Metabase's timestamps: ISO-8601 with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (u *user) json() userJSON {
	common := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if common == "" {
		common = u.Email
	}
	j := userJSON{
		ID: u.ID, Email: u.Email,
		FirstName: optString(u.FirstName), LastName: optString(u.LastName),
		CommonName: common, DateJoined: u.DateJoined.UTC().Format(timeLayout),
		UpdatedAt: u.updatedAt.UTC().Format(timeLayout),
		IsActive:  u.Active, IsSuperuser: u.Superuser, IsQbnewb: true,
		SSOSource: optString(u.SSOSource),
	}
	if u.kind == "api-key" {
		// Metabase stores last_name "" for the user of an API key.
		empty := ""
		j.LastName = &empty
	}
	if u.TenantID != 0 {
		t := u.TenantID
		j.TenantID = &t
	}
	if u.LastLogin != nil {
		s := u.LastLogin.UTC().Format(timeLayout)
		j.LastLogin = &s
	}
	return j
}

// listJSON is a row of GET /api/user, with group_ids.
func (u *user) listJSON() userJSON {
	j := u.json()
	j.GroupIDs = slices.Clone(u.groups)
	j.PersonalCollectionID = u.ID + 1000
	return j
}

// detailJSON is GET /api/user/:id and the PUT replies, with
// user_group_memberships; with advanced permissions each carries
// is_group_manager (users/models/user.clj, add-user-group-memberships).
func (u *user) detailJSON(advanced bool) userJSON {
	j := u.json()
	j.UserGroupMemberships = make([]membership, len(u.groups))
	for i, g := range u.groups {
		j.UserGroupMemberships[i] = membership{ID: g}
		if advanced {
			m := slices.Contains(u.managers, g)
			j.UserGroupMemberships[i].IsGroupManager = &m
		}
	}
	return j
}
