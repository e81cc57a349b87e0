package metabase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// emailSearchPageSize is the page size of UserByEmail's searches. A search
// by full email rarely matches more than one row, so one page is the norm.
const emailSearchPageSize = 50

// User is a Metabase user as returned by the user endpoints to an admin.
type User struct {
	ID          int        `json:"id"`
	Email       string     `json:"email"`
	FirstName   string     `json:"first_name"`
	LastName    string     `json:"last_name"`
	CommonName  string     `json:"common_name"`
	IsActive    bool       `json:"is_active"`
	IsSuperuser bool       `json:"is_superuser"`
	LastLogin   *time.Time `json:"last_login"`
	DateJoined  time.Time  `json:"date_joined"`
	// SSOSource is "" for password users, else e.g. "google", "ldap",
	// "jwt" or "saml". Such users may be reactivated by their next SSO login.
	SSOSource string `json:"sso_source"`
	// TenantID is the user's tenant in Metabase versions with tenants
	// (embedded analytics), nil for everyone else.
	TenantID *int `json:"tenant_id"`
	// GroupIDs is set by GET /api/user and GET /api/user/current.
	GroupIDs []int `json:"group_ids"`
	// UserGroupMemberships is set by GET /api/user/:id and the PUT endpoints.
	UserGroupMemberships []GroupMembership `json:"user_group_memberships"`
	// UpdatedAt is Metabase's own last-change time of the user row, kept as Metabase wrote it:
	// any change to the user (deactivation, reactivation, the admin flag, a login) moves it, so
	// comparing two readings tells whether anything changed in between without comparing the
	// bot's clock with Metabase's (src/metabase/users/models/user.clj derives
	// :hook/updated-at-timestamped?).
	UpdatedAt string `json:"updated_at"`
	// PersonalCollectionID is set by GET /api/user (UserByEmail, ListUsers)
	// and GET /api/user/current, not by GET /api/user/:id.
	PersonalCollectionID int `json:"personal_collection_id"`
}

// UnmarshalJSON decodes a user, reading timestamps leniently: Metabase writes ISO-8601 with an
// offset ("2024-03-01T10:00:00.123Z"), but a timestamp without one (taken as UTC) must not make
// the whole user unreadable.
func (u *User) UnmarshalJSON(b []byte) error {
	type plain User
	aux := struct {
		*plain
		LastLogin  *string `json:"last_login"`
		DateJoined *string `json:"date_joined"`
	}{plain: (*plain)(u)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	u.LastLogin = nil
	if aux.LastLogin != nil {
		t, err := parseTime(*aux.LastLogin)
		if err != nil {
			return fmt.Errorf("last_login: %w", err)
		}
		u.LastLogin = &t
	}
	u.DateJoined = time.Time{}
	if aux.DateJoined != nil {
		t, err := parseTime(*aux.DateJoined)
		if err != nil {
			return fmt.Errorf("date_joined: %w", err)
		}
		u.DateJoined = t
	}
	return nil
}

// timeLayouts are the forms a Metabase timestamp may take, most common first.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

func parseTime(s string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable timestamp %q", s)
}

// GroupMembership is one entry of User.UserGroupMemberships.
type GroupMembership struct {
	ID int `json:"id"`
}

// Groups returns the user's group ids from GroupIDs or, when that is
// empty, from UserGroupMemberships (endpoints return one or the other).
func (u *User) Groups() []int {
	if len(u.GroupIDs) > 0 {
		return u.GroupIDs
	}
	if len(u.UserGroupMemberships) == 0 {
		return nil
	}
	ids := make([]int, len(u.UserGroupMemberships))
	for i, m := range u.UserGroupMemberships {
		ids[i] = m.ID
	}
	return ids
}

// apiKeyEmailDomain is the domain of the email Metabase gives the user it
// creates for an API key: api-key-user-<uuid>@api-key.invalid.
const apiKeyEmailDomain = "@api-key.invalid"

// IsAPIKey reports whether u is the user behind a Metabase API key rather
// than a person. Metabase does not return a user's type, so this goes by
// the email it gives such users, as its own admin UI does
// (docs/metabase.md#api-key-users). Disabling such a user does nothing:
// revoke the key instead.
func (u *User) IsAPIKey() bool {
	return IsAPIKeyEmail(u.Email)
}

// IsAPIKeyEmail reports whether email is of the form Metabase gives the
// user behind an API key. Such a user is never listed by GET /api/user, so
// a look-up by email cannot find it, and in 0.49–0.50 GET /api/user/:id
// does not return it either (docs/metabase.md#api-key-users): the address
// itself is all a caller can go by.
func IsAPIKeyEmail(email string) bool {
	return strings.HasSuffix(strings.ToLower(strings.TrimSpace(email)), apiKeyEmailDomain)
}

// Name returns a display name: the common name, else "First Last", else
// the email.
func (u *User) Name() string {
	if n := strings.TrimSpace(u.CommonName); n != "" {
		return n
	}
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	return u.Email
}

// UserStatus selects users by activity in ListUsers.
type UserStatus string

// Values of UserStatus, as Metabase's status parameter spells them.
const (
	StatusActive      UserStatus = "active"
	StatusDeactivated UserStatus = "deactivated"
	StatusAll         UserStatus = "all"
)

// UserUpdate holds the fields UpdateUser changes. Nil fields are left
// alone. Metabase ignores is_active in a PUT, so there is no such field:
// use DisableUser and ReactivateUser.
//
// Sending both IsSuperuser and GroupIDs requires them to agree about group
// 2 (Administrators), and GroupIDs must include group 1 (All Users) and
// name only groups that exist; Metabase answers 400 otherwise. On Pro and
// Enterprise with advanced permissions every GroupIDs is refused: its
// entries carry no is_group_manager, so Metabase counts the All Users
// membership as changed. Group memberships survive deactivation, so
// restoring an admin needs IsSuperuser alone
// (docs/metabase.md#membership-rules).
type UserUpdate struct {
	// IsSuperuser grants or revokes admin rights (membership of the
	// Administrators group).
	IsSuperuser *bool
	// GroupIDs, when non-nil, replaces the user's group memberships.
	GroupIDs []int
}

// MarshalJSON encodes the update as Metabase's PUT body.
func (u UserUpdate) MarshalJSON() ([]byte, error) {
	body := map[string]any{}
	if u.IsSuperuser != nil {
		body["is_superuser"] = *u.IsSuperuser
	}
	if u.GroupIDs != nil {
		ms := make([]GroupMembership, len(u.GroupIDs))
		for i, id := range u.GroupIDs {
			ms[i] = GroupMembership{ID: id}
		}
		body["user_group_memberships"] = ms
	}
	return json.Marshal(body)
}

// userPage is the body of GET /api/user.
type userPage struct {
	Data  []User `json:"data"`
	Total int    `json:"total"`
	Limit *int   `json:"limit"` // null when the server did not page
}

// last reports whether no page follows the one at offset.
func (p *userPage) last(offset, size int) bool {
	return len(p.Data) == 0 || p.Limit == nil || offset+size >= p.Total
}

func userPath(id int) string { return "api/user/" + strconv.Itoa(id) }

// CurrentUser returns the user the client authenticates as.
//
// GET /api/user/current
func (c *Client) CurrentUser(ctx context.Context) (*User, error) {
	u := new(User)
	err := c.do(ctx, request{method: "GET", route: "/api/user/current", path: "api/user/current", retry: true}, u)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// User returns the user with the given id, active or not, API keys'
// users included (see IsAPIKey). It returns an error matching ErrNotFound
// when there is none. Older Metabase answers 404 for an inactive user
// (docs/metabase.md#get-user), so after a 404 the deactivated users are
// searched for the id; the row found there carries GroupIDs rather than
// UserGroupMemberships.
//
// GET /api/user/:id
func (c *Client) User(ctx context.Context, id int) (*User, error) {
	u := new(User)
	err := c.do(ctx, request{method: "GET", route: "/api/user/:id", path: userPath(id), retry: true}, u)
	if errors.Is(err, ErrNotFound) {
		if d, derr := c.deactivatedUser(ctx, id); derr == nil && d != nil {
			return d, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UserByEmail returns the user, active or not, with or without a tenant,
// whose email equals email ignoring case. Metabase's query is a substring
// search over names and email, so several rows may come back; pages are
// fetched only until the user is found. It returns an error matching
// ErrNotFound when there is no such user. API keys' users are never
// listed, so never found here.
//
// Newer Metabase lists tenant users only when asked with tenancy=all
// (docs/metabase.md#tenants); older versions ignore the parameter.
//
// GET /api/user?status=all&tenancy=all&query=<email>&limit=50&offset=N
func (c *Client) UserByEmail(ctx context.Context, email string) (*User, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, errors.New("metabase: user by email: empty email")
	}
	for offset := 0; ; offset += emailSearchPageSize {
		var page userPage
		err := c.do(ctx, request{
			method: "GET", route: "/api/user", path: "api/user", retry: true,
			query: url.Values{
				"status":  {string(StatusAll)},
				"tenancy": {"all"},
				"query":   {email},
				"limit":   {strconv.Itoa(emailSearchPageSize)},
				"offset":  {strconv.Itoa(offset)},
			},
		}, &page)
		if err != nil {
			return nil, err
		}
		for i := range page.Data {
			if strings.EqualFold(page.Data[i].Email, email) {
				return &page.Data[i], nil
			}
		}
		if page.last(offset, emailSearchPageSize) {
			return nil, fmt.Errorf("metabase: no user with email %q: %w", email, ErrNotFound)
		}
	}
}

// ListUsers returns every user with the given status, in pages (see
// WithPageSize): the first, then the rest at once, so a large instance costs
// two round trips (allusers.go). An empty status means StatusActive. Newer
// Metabase leaves out tenant users here (docs/metabase.md#tenants).
//
// GET /api/user?status=...&limit=N&offset=N
func (c *Client) ListUsers(ctx context.Context, status UserStatus) ([]User, error) {
	if status == "" {
		status = StatusActive
	}
	return c.listPages(ctx, url.Values{"status": {string(status)}})
}

// DisableUser deactivates a user. It is idempotent: disabling an inactive
// user succeeds. For an API key's user Metabase answers success and
// changes nothing (docs/metabase.md#api-key-users): check IsAPIKey first. Older Metabase answers 500 for an inactive or missing
// user (metabase/metabase#66599), so after a 5xx the user is re-read (see
// User): if it exists and is inactive the call succeeded, if it is missing
// the error matches ErrNotFound. Other errors come back as *APIError, e.g.
// a 400 when the user is the last active admin.
//
// A 400 for a user who is still active and an admin afterwards is
// Metabase's last-admin refusal: the error matches ErrLastAdmin, decided by
// that re-read rather than by the refusal's words, which are translated.
//
// DELETE /api/user/:id
func (c *Client) DisableUser(ctx context.Context, id int) error {
	err := c.do(ctx, request{method: "DELETE", route: "/api/user/:id", path: userPath(id), retry: true}, nil)
	var ae *APIError
	if err == nil || !errors.As(err, &ae) {
		return err
	}
	if ae.StatusCode == http.StatusBadRequest {
		if u, gerr := c.User(ctx, id); gerr == nil && u.IsActive && u.IsSuperuser {
			return fmt.Errorf("%w: %w", ErrLastAdmin, err)
		}
		return err
	}
	if ae.StatusCode < http.StatusInternalServerError {
		return err
	}
	u, gerr := c.User(ctx, id)
	switch {
	case errors.Is(gerr, ErrNotFound):
		return gerr
	case gerr == nil && !u.IsActive:
		return nil
	}
	return err
}

// deactivatedUser returns the deactivated user with this id, or nil. It
// backs User after a 404: the toucan2-era Metabase that answers DELETE of
// an inactive user with 500 also answers GET /api/user/:id with 404 for an
// inactive user (docs/metabase.md#get-user, #delete-user).
//
// GET /api/user?status=deactivated&limit=N&offset=N
func (c *Client) deactivatedUser(ctx context.Context, id int) (*User, error) {
	for offset := 0; ; offset += c.pageSize {
		var page userPage
		err := c.do(ctx, request{
			method: "GET", route: "/api/user", path: "api/user", retry: true,
			query: url.Values{
				"status": {string(StatusDeactivated)},
				"limit":  {strconv.Itoa(c.pageSize)},
				"offset": {strconv.Itoa(offset)},
			},
		}, &page)
		if err != nil {
			return nil, err
		}
		for i := range page.Data {
			if page.Data[i].ID == id && !page.Data[i].IsActive {
				return &page.Data[i], nil
			}
		}
		if page.last(offset, c.pageSize) {
			return nil, nil
		}
	}
}

// ReactivateUser reactivates a deactivated user and returns it. Metabase
// clears is_superuser on reactivation; restore it with UpdateUser.
//
// Metabase answers its refusals with a 400 whose words are translated, so
// after a 400 the user is read again and the error decided from what it
// shows (docs/metabase.md#languages):
//   - active: the error matches ErrAlreadyActive (also what a retried
//     attempt finds when the first one succeeded);
//   - inactive and still is_superuser (deactivation keeps it): the error
//     matches ErrFormerAdminNotReactivated, the last-admin check of
//     Metabase before PR #68198 (docs/metabase.md#reactivate-a-former-admin);
//     nothing changed, and a retry succeeds once another admin is active
//     or Metabase is upgraded.
//
// Each wraps the *APIError, whose Message is Metabase's own words for the
// people reading it.
//
// PUT /api/user/:id/reactivate
func (c *Client) ReactivateUser(ctx context.Context, id int) (*User, error) {
	u := new(User)
	err := c.do(ctx, request{
		method: "PUT", route: "/api/user/:id/reactivate", path: userPath(id) + "/reactivate", retry: true,
	}, u)
	if err == nil {
		return u, nil
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		return nil, err
	}
	now, gerr := c.User(ctx, id)
	switch {
	case gerr != nil:
		return nil, err
	case now.IsActive:
		return nil, fmt.Errorf("%w: %w", ErrAlreadyActive, err)
	case now.IsSuperuser:
		return nil, fmt.Errorf("%w: %w", ErrFormerAdminNotReactivated, err)
	}
	return nil, err
}

// UpdateUser changes a user's admin rights or groups and returns the
// updated user. Metabase answers 404 for an inactive user, so reactivate
// first. It is never retried.
//
// PUT /api/user/:id
func (c *Client) UpdateUser(ctx context.Context, id int, upd UserUpdate) (*User, error) {
	u := new(User)
	err := c.do(ctx, request{method: "PUT", route: "/api/user/:id", path: userPath(id), body: upd}, u)
	if err != nil {
		return nil, err
	}
	return u, nil
}
