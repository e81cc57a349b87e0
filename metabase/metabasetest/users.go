package metabasetest

import (
	"cmp"
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
	// GroupIDs are the user's groups; everyone is in group 1 (All Users).
	GroupIDs []int
	// Type is "personal" (the default) or "api-key". Only personal users
	// are listed by GET /api/user.
	Type string
}

// user is the stored form of a User.
type user struct {
	User
	kind       string // personal, api-key or internal
	groups     []int  // sorted, always has AllUsersGroupID
	password   string
	lf, ll, le string // lowered first name, last name and email
	updatedAt  time.Time
}

func (u *user) setKeys() {
	u.lf, u.ll, u.le = strings.ToLower(u.FirstName), strings.ToLower(u.LastName), strings.ToLower(u.Email)
}

// compareUsers is GET /api/user's order: lower(first_name),
// lower(last_name), id (metabase-api.md §4.1).
func compareUsers(a, b *user) int {
	if c := strings.Compare(a.lf, b.lf); c != 0 {
		return c
	}
	if c := strings.Compare(a.ll, b.ll); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// normGroups returns ids plus All Users, plus Administrators when
// superuser, sorted and without duplicates.
func normGroups(ids []int, superuser bool) []int {
	g := append([]int{AllUsersGroupID}, ids...)
	if superuser {
		g = append(g, AdministratorsGroupID)
	}
	slices.Sort(g)
	return slices.Compact(g)
}

func (u *user) export() User {
	x := u.User
	x.GroupIDs = slices.Clone(u.groups)
	x.Type = u.kind
	if u.LastLogin != nil {
		t := *u.LastLogin
		x.LastLogin = &t
	}
	return x
}

// AddUser adds a user and returns it as stored (with its id, groups and
// defaults). An email already in use fails the test.
func (s *Server) AddUser(u User) User {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byEmail[strings.ToLower(u.Email)]; dup {
		s.tb.Fatalf("metabasetest: AddUser: email %q already in use", u.Email)
	}
	if u.ID != 0 {
		if _, dup := s.users[u.ID]; dup {
			s.tb.Fatalf("metabasetest: AddUser: id %d already in use", u.ID)
		}
	}
	nu := s.newUserLocked(u)
	s.insertLocked(nu)
	return nu.export()
}

func (s *Server) newUserLocked(u User) *user {
	if u.ID == 0 {
		u.ID = s.nextID
	}
	if u.ID >= s.nextID && u.ID != InternalUserID {
		s.nextID = u.ID + 1
	}
	if u.DateJoined.IsZero() {
		u.DateJoined = s.now().UTC().Truncate(time.Millisecond)
	}
	if slices.Contains(u.GroupIDs, AdministratorsGroupID) {
		u.Superuser = true
	}
	kind := u.Type
	if kind == "" {
		kind = "personal"
	}
	nu := &user{User: u, kind: kind, groups: normGroups(u.GroupIDs, u.Superuser), updatedAt: u.DateJoined}
	nu.GroupIDs = nil
	return nu
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
// which reactivates them (metabase-api.md, Consequence 7). A missing user
// fails the test.
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
	u.updatedAt = now
}

// otherActiveAdminsLocked counts the active members of the Administrators
// group other than except, for the last-admin guard. Like Metabase's
// throw-if-last-admin! (metabase-api.md §4.6) it does not look at the user
// type: an API key in the Administrators group counts (§1.2).
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
// Metabase does (metabase-api.md §5).
func (s *Server) deactivateLocked(u *user) {
	u.Active = false
	u.updatedAt = s.now().UTC()
	for id, uid := range s.sessions {
		if uid == u.ID {
			delete(s.sessions, id)
		}
	}
}

// userJSON is the user object Metabase returns to an admin (§3).
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
	GroupIDs             []int        `json:"group_ids,omitempty"`
	UserGroupMemberships []membership `json:"user_group_memberships,omitempty"`
	PersonalCollectionID int          `json:"personal_collection_id,omitempty"`
}

type membership struct {
	ID int `json:"id"`
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
// user_group_memberships.
func (u *user) detailJSON() userJSON {
	j := u.json()
	j.UserGroupMemberships = make([]membership, len(u.groups))
	for i, g := range u.groups {
		j.UserGroupMemberships[i] = membership{g}
	}
	return j
}
