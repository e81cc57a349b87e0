package metabase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestUserEndpointErrors runs every user method through the common
// failures: 401, 403, a non-JSON 500 and a cancelled context.
func TestUserEndpointErrors(t *testing.T) {
	t.Parallel()
	methods := []struct {
		name      string
		method    string
		pattern   string
		adminOnly bool
		call      func(ctx context.Context, c *Client, id int) error
	}{
		{"CurrentUser", "GET", "/api/user/current", false, func(ctx context.Context, c *Client, _ int) error {
			_, err := c.CurrentUser(ctx)
			return err
		}},
		{"User", "GET", "/api/user/:id", true, getUser},
		{"UserByEmail", "GET", "/api/user", true, func(ctx context.Context, c *Client, _ int) error {
			_, err := c.UserByEmail(ctx, "target@example.com")
			return err
		}},
		{"ListUsers", "GET", "/api/user", true, func(ctx context.Context, c *Client, _ int) error {
			_, err := c.ListUsers(ctx, StatusAll)
			return err
		}},
		{"DisableUser", "DELETE", "/api/user/:id", true, disable},
		{"ReactivateUser", "PUT", "/api/user/:id/reactivate", true, reactivate},
		{"UpdateUser", "PUT", "/api/user/:id", true, update},
	}
	kinds := []struct {
		name    string
		key     string // client key; "" = the fake's admin key
		fail    int    // FailNext status, 0 = none
		cancel  bool
		want    error
		wantMsg string
	}{
		{name: "401", key: "mb_not-a-known-key-000000", want: ErrUnauthorized, wantMsg: "Unauthenticated"},
		{name: "403", key: "mb_plain-user-key-0000000", want: ErrForbidden, wantMsg: "You don't have permissions to do that."},
		{name: "500 text", fail: 500, wantMsg: "<html>oops</html>"},
		{name: "cancelled", cancel: true, want: context.Canceled},
	}
	for _, m := range methods {
		for _, k := range kinds {
			t.Run(m.name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				if k.name == "403" && !m.adminOnly {
					t.Skip("allowed for every user")
				}
				s := metabasetest.New(t, metabasetest.WithAPIKey("mb_plain-user-key-0000000", 2))
				s.AddUser(metabasetest.User{ID: 2, Email: "plain@example.com", Active: true})
				target := s.AddUser(metabasetest.User{Email: "target@example.com", Active: true})
				key := k.key
				if key == "" {
					key = metabasetest.AdminAPIKey
				}
				c, _ := newTestClient(t, s.URL(), WithAPIKey(key))
				if k.fail != 0 {
					s.FailNext(m.method, m.pattern, -1, k.fail, "<html>oops</html>")
				}
				ctx := t.Context()
				if k.cancel {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					cancel()
				}
				err := m.call(ctx, c, target.ID)
				if err == nil {
					t.Fatal("err = nil")
				}
				if k.want != nil && !errors.Is(err, k.want) {
					t.Errorf("err = %v, want errors.Is %v", err, k.want)
				}
				if k.wantMsg != "" {
					var ae *APIError
					if !errors.As(err, &ae) {
						t.Fatalf("err = %v, want *APIError", err)
					}
					if ae.Message != k.wantMsg {
						t.Errorf("Message = %q, want %q", ae.Message, k.wantMsg)
					}
				}
				if k.fail == 500 {
					if n := countPattern(s, m.method, m.pattern, target.ID); n != 1 {
						t.Errorf("requests = %d, want 1 (500 is not retried)", n)
					}
				}
			})
		}
	}
}

func TestUser(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	login := time.Date(2024, 3, 1, 10, 0, 0, 123e6, time.UTC)
	joined := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	ada := s.AddUser(metabasetest.User{
		Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", Active: true,
		LastLogin: &login, DateJoined: joined, SSOSource: "google", GroupIDs: []int{5},
	})
	got, err := c.User(t.Context(), ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &User{
		ID: ada.ID, Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", CommonName: "Ada Lovelace",
		IsActive: true, LastLogin: &login, DateJoined: joined, SSOSource: "google",
		UserGroupMemberships: []GroupMembership{{1}, {5}},
		// A user the fake was seeded with was last updated when they joined.
		UpdatedAt: "2023-01-02T03:04:05.000Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("User (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 5}, got.Groups()); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}

	_, err = c.User(t.Context(), 4242)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if want := "metabase: GET /api/user/4242: 404 Not found."; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestUserDecoding(t *testing.T) {
	t.Parallel()
	c, mux := setupMux(t)
	mux.HandleFunc("GET /metabase/api/user/3", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"id":3,"email":"x@example.com","first_name":null,"last_name":null,"common_name":"x@example.com",
			"last_login":null,"date_joined":"2024-03-01T10:00:00.123+00:00","sso_source":null,"is_active":false,
			"group_ids":[1,2],"user_group_memberships":[{"id":9}],"locale":null,"extra":{"ignored":true}}`)
	})
	got, err := c.User(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := &User{
		ID: 3, Email: "x@example.com", CommonName: "x@example.com",
		DateJoined: time.Date(2024, 3, 1, 10, 0, 0, 123e6, time.UTC), GroupIDs: []int{1, 2},
		UserGroupMemberships: []GroupMembership{{9}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("User (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 2}, got.Groups()); diff != "" {
		t.Errorf("Groups prefers group_ids (-want +got):\n%s", diff)
	}
}

func TestUserName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		u    User
		want string
	}{
		{User{CommonName: "Ada L", FirstName: "Ada", Email: "a@x"}, "Ada L"},
		{User{FirstName: "Ada", Email: "a@x"}, "Ada"},
		{User{LastName: "Lovelace", Email: "a@x"}, "Lovelace"},
		{User{FirstName: " Ada ", LastName: "Lovelace", Email: "a@x"}, "Ada  Lovelace"},
		{User{Email: "a@x"}, "a@x"},
	}
	for _, tt := range tests {
		if got := tt.u.Name(); got != tt.want {
			t.Errorf("%+v.Name() = %q, want %q", tt.u, got, tt.want)
		}
	}
}

func TestCurrentUser(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	u, err := c.CurrentUser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != metabasetest.AdminUserID || !u.IsSuperuser || u.Email != metabasetest.AdminEmail {
		t.Errorf("CurrentUser = %+v", u)
	}
	if diff := cmp.Diff([]int{1, 2}, u.Groups()); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}
}

func TestUserByEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		decoys   int // users whose email contains the target's
		target   *metabasetest.User
		query    string
		wantReqs int
		wantErr  error
	}{
		{name: "exact among substring hits", decoys: 3,
			target: &metabasetest.User{Email: "needle@example.com", FirstName: "z", Active: true},
			query:  "needle@example.com", wantReqs: 1},
		{name: "case-insensitive", target: &metabasetest.User{Email: "Needle@Example.com", Active: true},
			query: "nEEDLE@example.COM", wantReqs: 1},
		{name: "deactivated user found", target: &metabasetest.User{Email: "needle@example.com", Active: false},
			query: "needle@example.com", wantReqs: 1},
		{name: "third page", decoys: 120,
			target: &metabasetest.User{Email: "needle@example.com", FirstName: "z", Active: true},
			query:  "needle@example.com", wantReqs: 3},
		{name: "first page stops early", decoys: 120,
			target: &metabasetest.User{Email: "needle@example.com", FirstName: "0", Active: true},
			query:  "needle@example.com", wantReqs: 1},
		{name: "absent", query: "needle@example.com", wantReqs: 1, wantErr: ErrNotFound},
		{name: "absent among many hits", decoys: 120, query: "needle@example.com", wantReqs: 3, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			for i := range tt.decoys {
				s.AddUser(metabasetest.User{Email: fmt.Sprintf("%03dneedle@example.com", i), FirstName: "a", Active: i%2 == 0})
			}
			var want metabasetest.User
			if tt.target != nil {
				want = s.AddUser(*tt.target)
			}
			got, err := c.UserByEmail(t.Context(), tt.query)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got.ID != want.ID || got.Email != want.Email || got.IsActive != want.Active {
				t.Errorf("got %+v, want %+v", got, want)
			}
			var offsets []string
			for _, r := range s.Requests() {
				if r.Path != "/api/user" {
					continue
				}
				q, _ := url.ParseQuery(r.RawQuery)
				if q.Get("status") != "all" || q.Get("tenancy") != "all" || !strings.EqualFold(q.Get("query"), tt.query) || q.Get("limit") != "50" {
					t.Errorf("query = %s", r.RawQuery)
				}
				offsets = append(offsets, q.Get("offset"))
			}
			if len(offsets) != tt.wantReqs {
				t.Errorf("requests = %d (offsets %v), want %d", len(offsets), offsets, tt.wantReqs)
			}
			for i, o := range offsets {
				if o != fmt.Sprint(i*50) {
					t.Errorf("offset[%d] = %s", i, o)
				}
			}
		})
	}
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status   UserStatus
		want     int
		wantReqs int
	}{
		{StatusActive, 21, 3}, // admin + 20
		{"", 21, 3},
		{StatusDeactivated, 5, 1},
		{StatusAll, 26, 4},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			t.Parallel()
			c, s := setup(t, WithPageSize(7))
			for i := range 25 {
				s.AddUser(metabasetest.User{Email: fmt.Sprintf("u%02d@example.com", i), Active: i >= 5})
			}
			users, err := c.ListUsers(t.Context(), tt.status)
			if err != nil {
				t.Fatal(err)
			}
			if len(users) != tt.want {
				t.Errorf("len = %d, want %d", len(users), tt.want)
			}
			seen := map[int]bool{}
			for _, u := range users {
				if seen[u.ID] {
					t.Errorf("user %d listed twice", u.ID)
				}
				seen[u.ID] = true
			}
			if n := s.Count("GET", "/api/user"); n != tt.wantReqs {
				t.Errorf("requests = %d, want %d", n, tt.wantReqs)
			}
		})
	}
}

func TestDisableUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		legacy    bool
		target    *metabasetest.User // nil: a missing id
		id        int                // when target is nil
		fail      int                // FailNext status on DELETE
		wantErr   error
		wantMsg   string // APIError message
		wantReqs  []string
		wantAfter bool // expected is_active afterwards
	}{
		{name: "active", target: &metabasetest.User{Email: "a@example.com", Active: true},
			wantReqs: []string{"DELETE"}},
		{name: "already inactive", target: &metabasetest.User{Email: "a@example.com"},
			wantReqs: []string{"DELETE"}},
		{name: "legacy already inactive", legacy: true, target: &metabasetest.User{Email: "a@example.com"},
			wantReqs: []string{"DELETE", "GET", "GET"}},
		{name: "legacy active", legacy: true, target: &metabasetest.User{Email: "a@example.com", Active: true},
			wantReqs: []string{"DELETE"}},
		{name: "missing", id: 4242, wantErr: ErrNotFound, wantReqs: []string{"DELETE"}},
		{name: "legacy missing", legacy: true, id: 4242, wantErr: ErrNotFound, wantReqs: []string{"DELETE", "GET", "GET"}},
		{name: "last admin", id: metabasetest.AdminUserID, wantErr: ErrLastAdmin,
			wantMsg: "You cannot remove the last member of the 'Admin' group!", wantReqs: []string{"DELETE", "GET"}, wantAfter: true},
		{name: "internal user", id: metabasetest.InternalUserID,
			wantMsg: "Not able to modify the internal user", wantReqs: []string{"DELETE", "GET"}, wantAfter: true},
		{name: "non-JSON 500 on active user", target: &metabasetest.User{Email: "a@example.com", Active: true}, fail: 500,
			wantMsg: "upstream exploded", wantReqs: []string{"DELETE", "GET"}, wantAfter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			s.SetLegacyDelete(tt.legacy)
			id := tt.id
			if tt.target != nil {
				id = s.AddUser(*tt.target).ID
			}
			if tt.fail != 0 {
				s.FailNext("DELETE", "/api/user/:id", 1, tt.fail, "upstream exploded")
			}
			err := c.DisableUser(t.Context(), id)
			switch {
			case tt.wantErr != nil:
				var ae *APIError
				if !errors.Is(err, tt.wantErr) || (tt.wantMsg != "" && (!errors.As(err, &ae) || ae.Message != tt.wantMsg)) {
					t.Fatalf("err = %v, want %v with Metabase's message %q", err, tt.wantErr, tt.wantMsg)
				}
			case tt.wantMsg != "":
				var ae *APIError
				if !errors.As(err, &ae) || ae.Message != tt.wantMsg {
					t.Fatalf("err = %v, want APIError %q", err, tt.wantMsg)
				}
			case err != nil:
				t.Fatalf("err = %v, want nil", err)
			}
			var got []string
			for _, r := range s.Requests() {
				got = append(got, r.Method)
			}
			if diff := cmp.Diff(tt.wantReqs, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if u, ok := s.UserByID(id); ok && u.Active != tt.wantAfter {
				t.Errorf("Active = %v, want %v", u.Active, tt.wantAfter)
			}
		})
	}
}

func TestDisableUserTwice(t *testing.T) {
	t.Parallel()
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprint("legacy=", legacy), func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			s.SetLegacyDelete(legacy)
			u := s.AddUser(metabasetest.User{Email: "a@example.com", Active: true})
			for i := range 2 {
				if err := c.DisableUser(t.Context(), u.ID); err != nil {
					t.Fatalf("DisableUser #%d: %v", i+1, err)
				}
			}
		})
	}
}

func TestReactivateUser(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	boss := s.AddUser(metabasetest.User{Email: "boss@example.com", Active: false, Superuser: true, GroupIDs: []int{7}})
	active := s.AddUser(metabasetest.User{Email: "on@example.com", Active: true})

	u, err := c.ReactivateUser(t.Context(), boss.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !u.IsActive || u.IsSuperuser {
		t.Errorf("reactivated: active=%v superuser=%v, want true false", u.IsActive, u.IsSuperuser)
	}
	if diff := cmp.Diff([]int{1, 7}, u.Groups()); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}

	_, err = c.ReactivateUser(t.Context(), active.ID)
	if !errors.Is(err, ErrAlreadyActive) {
		t.Fatalf("err = %v, want ErrAlreadyActive", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Message != "Not able to reactivate an active user" {
		t.Errorf("err = %v", err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("already active matches ErrNotFound")
	}

	_, err = c.ReactivateUser(t.Context(), 4242)
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrAlreadyActive) {
		t.Fatalf("err = %v, want only ErrNotFound", err)
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	tests := []struct {
		name       string
		user       metabasetest.User
		groups     []int // groups that exist besides the user's
		upd        UserUpdate
		wantSuper  bool
		wantGroups []int // stored afterwards
		wantBody   string
		wantErr    error
		wantMsg    string // APIError message of a refused update
	}{
		{name: "grant admin", user: metabasetest.User{Email: "a@example.com", Active: true, GroupIDs: []int{4}},
			upd: UserUpdate{IsSuperuser: &yes}, wantSuper: true, wantGroups: []int{1, 2, 4},
			wantBody: `{"is_superuser":true}`},
		{name: "revoke admin", user: metabasetest.User{Email: "a@example.com", Active: true, Superuser: true},
			upd: UserUpdate{IsSuperuser: &no}, wantSuper: false, wantGroups: []int{1},
			wantBody: `{"is_superuser":false}`},
		{name: "set groups", user: metabasetest.User{Email: "a@example.com", Active: true, GroupIDs: []int{4}},
			groups: []int{5, 6}, upd: UserUpdate{GroupIDs: []int{1, 5, 6}}, wantGroups: []int{1, 5, 6},
			wantBody: `{"user_group_memberships":[{"id":1},{"id":5},{"id":6}]}`},
		{name: "restore admin and groups", user: metabasetest.User{Email: "a@example.com", Active: true, GroupIDs: []int{3}},
			upd: UserUpdate{IsSuperuser: &yes, GroupIDs: []int{1, 2, 3}}, wantSuper: true, wantGroups: []int{1, 2, 3},
			wantBody: `{"is_superuser":true,"user_group_memberships":[{"id":1},{"id":2},{"id":3}]}`},
		{name: "admin status disagrees with groups", user: metabasetest.User{Email: "a@example.com", Active: true, GroupIDs: []int{3}},
			upd: UserUpdate{IsSuperuser: &yes, GroupIDs: []int{1, 3}}, wantGroups: []int{1, 3},
			wantBody: `{"is_superuser":true,"user_group_memberships":[{"id":1},{"id":3}]}`,
			wantMsg:  "is_superuser: Value of is_superuser must correspond to presence of Admin group ID in group_ids."},
		{name: "groups without All Users", user: metabasetest.User{Email: "a@example.com", Active: true, GroupIDs: []int{4}},
			upd: UserUpdate{GroupIDs: []int{}}, wantGroups: []int{1, 4}, wantBody: `{"user_group_memberships":[]}`,
			wantMsg: "You cannot add or remove users to/from the 'All Users' group."},
		{name: "unknown group", user: metabasetest.User{Email: "a@example.com", Active: true, GroupIDs: []int{4}},
			upd: UserUpdate{GroupIDs: []int{1, 4, 9}}, wantGroups: []int{1, 4},
			wantBody: `{"user_group_memberships":[{"id":1},{"id":4},{"id":9}]}`,
			wantMsg:  "Cannot add non-tenant user to tenant-group or vice versa"},
		{name: "nothing", user: metabasetest.User{Email: "a@example.com", Active: true, GroupIDs: []int{4}},
			wantGroups: []int{1, 4}, wantBody: `{}`},
		{name: "inactive user", user: metabasetest.User{Email: "a@example.com"}, upd: UserUpdate{IsSuperuser: &yes},
			wantErr: ErrNotFound, wantGroups: []int{1}, wantBody: `{"is_superuser":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, s := setup(t)
			for _, g := range tt.groups {
				s.AddGroup(g)
			}
			u := s.AddUser(tt.user)
			got, err := c.UpdateUser(t.Context(), u.ID, tt.upd)
			var ae *APIError
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantMsg != "":
				if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Message != tt.wantMsg {
					t.Fatalf("err = %v, want a 400 %q", err, tt.wantMsg)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if got.IsSuperuser != tt.wantSuper {
					t.Errorf("IsSuperuser = %v, want %v", got.IsSuperuser, tt.wantSuper)
				}
				if diff := cmp.Diff(tt.wantGroups, got.Groups()); diff != "" {
					t.Errorf("Groups (-want +got):\n%s", diff)
				}
			}
			after, _ := s.UserByID(u.ID)
			if diff := cmp.Diff(tt.wantGroups, after.GroupIDs); diff != "" {
				t.Errorf("stored groups (-want +got):\n%s", diff)
			}
			b, _ := json.Marshal(tt.upd)
			if string(b) != tt.wantBody {
				t.Errorf("body = %s, want %s", b, tt.wantBody)
			}
		})
	}
}

func TestUpdateUserLastAdmin(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	no := false
	_, err := c.UpdateUser(t.Context(), metabasetest.AdminUserID, UserUpdate{IsSuperuser: &no})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Message != "You cannot remove the last member of the 'Admin' group!" {
		t.Fatalf("err = %v", err)
	}
}

// TestDisableAndRestoreAdmin: reactivation strips is_superuser, so it is
// restored with a PUT (docs/metabase.md#reactivate).
func TestDisableAndRestoreAdmin(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	ctx := t.Context()
	admin := s.AddUser(metabasetest.User{Email: "grace@example.com", Active: true, Superuser: true, GroupIDs: []int{3}})
	before, err := c.UserByEmail(ctx, "grace@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DisableUser(ctx, admin.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReactivateUser(ctx, admin.ID); err != nil {
		t.Fatal(err)
	}
	got, err := c.UpdateUser(ctx, admin.ID, UserUpdate{IsSuperuser: &before.IsSuperuser, GroupIDs: before.Groups()})
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsSuperuser || !got.IsActive {
		t.Errorf("got %+v", got)
	}
	if diff := cmp.Diff([]int{1, 2, 3}, got.Groups()); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}
}

func BenchmarkUserByEmail(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			s := metabasetest.New(b)
			s.SeedUsers(n)
			c, err := New(s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			before := s.Count("GET", "/api/user")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := 2 + (i*7919)%n // seeded ids start after the admin
				if _, err := c.UserByEmail(ctx, fmt.Sprintf("user%d@example.com", id)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(s.Count("GET", "/api/user")-before)/float64(b.N), "requests/op")
		})
	}
}

// TestListUsersUnpagedServer: a server that ignores paging (limit null)
// must not be asked for the same rows again.
func TestListUsersUnpagedServer(t *testing.T) {
	t.Parallel()
	c, mux := setupMux(t, WithPageSize(2))
	calls := 0
	mux.HandleFunc("GET /metabase/api/user", func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"data":[{"id":1},{"id":2},{"id":3}],"total":3,"limit":null,"offset":null}`)
	})
	users, err := c.ListUsers(t.Context(), StatusAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || calls != 1 {
		t.Errorf("len = %d, calls = %d, want 3 and 1", len(users), calls)
	}
}

func TestUserTimestampsDecodeLeniently(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json string
		want time.Time
	}{
		{`{"id":1,"last_login":"2024-03-01T10:00:00.123Z","date_joined":"2023-01-02T03:04:05Z"}`, time.Date(2024, 3, 1, 10, 0, 0, 123e6, time.UTC)},
		{`{"id":1,"last_login":"2024-03-01T11:00:00.123456+01:00","date_joined":"2023-01-02T03:04:05Z"}`, time.Date(2024, 3, 1, 10, 0, 0, 123456e3, time.UTC)},
		{`{"id":1,"last_login":"2024-03-01T10:00:00.123456","date_joined":"2023-01-02T03:04:05"}`, time.Date(2024, 3, 1, 10, 0, 0, 123456e3, time.UTC)},
	}
	for _, tt := range tests {
		var u User
		if err := json.Unmarshal([]byte(tt.json), &u); err != nil {
			t.Fatalf("%s: %v", tt.json, err)
		}
		if u.LastLogin == nil || !u.LastLogin.Equal(tt.want) {
			t.Errorf("%s: last_login = %v, want %v", tt.json, u.LastLogin, tt.want)
		}
		if !u.DateJoined.Equal(time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%s: date_joined = %v", tt.json, u.DateJoined)
		}
	}
	var u User
	if err := json.Unmarshal([]byte(`{"id":2,"email":"a@b.io","last_login":null,"is_active":true}`), &u); err != nil || u.LastLogin != nil || !u.IsActive || u.Email != "a@b.io" {
		t.Fatalf("null last_login: %+v, %v", u, err)
	}
	if err := json.Unmarshal([]byte(`{"id":3,"last_login":"yesterday"}`), &u); err == nil {
		t.Fatal("an unreadable timestamp was accepted")
	}
}

// TestUserIsAPIKey: Metabase returns no user type, so an API key's user is
// recognised by the email Metabase gives it; the fake gives the same.
func TestUserIsAPIKey(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	job, _ := s.AddAPIKeyUser("Reporting job", metabasetest.AdministratorsGroupID)
	person := s.AddUser(metabasetest.User{Email: "ann@example.com", Active: true})
	for _, tt := range []struct {
		id   int
		want bool
	}{{job.ID, true}, {person.ID, false}, {metabasetest.AdminUserID, false}} {
		u, err := c.User(t.Context(), tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if u.IsAPIKey() != tt.want {
			t.Errorf("User(%d) %q: IsAPIKey = %v, want %v", tt.id, u.Email, u.IsAPIKey(), tt.want)
		}
	}
	for _, email := range []string{"API-KEY-USER-1@API-KEY.INVALID", "api-key-user-x@api-key.invalid"} {
		if u := (User{Email: email}); !u.IsAPIKey() {
			t.Errorf("%q: IsAPIKey = false", email)
		}
	}
	for _, email := range []string{"", "ops@api-key.invalid.example.com", "api-key.invalid@example.com"} {
		if u := (User{Email: email}); u.IsAPIKey() {
			t.Errorf("%q: IsAPIKey = true", email)
		}
	}
	// An API key's user is never listed, so never found by email.
	if _, err := c.UserByEmail(t.Context(), job.Email); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByEmail(API key's user) = %v, want ErrNotFound", err)
	}
}

// TestDisableAPIKeyUserChangesNothing shows why callers must check
// IsAPIKey: Metabase answers DELETE of an API key's user with success and
// leaves it, and its key, working.
func TestDisableAPIKeyUserChangesNothing(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	job, _ := s.AddAPIKeyUser("Reporting job", 0)
	if err := c.DisableUser(t.Context(), job.ID); err != nil {
		t.Fatalf("DisableUser(API key's user) = %v, want Metabase's success", err)
	}
	if got, _ := s.UserByID(job.ID); !got.Active {
		t.Fatal("the fake deactivated an API key's user; Metabase does not")
	}
}

// TestTenantUsers: UserByEmail finds a tenant user and reports the tenant;
// ListUsers, like Metabase's default listing, leaves tenant users out.
func TestTenantUsers(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	bea := s.AddUser(metabasetest.User{Email: "bea@customer.example", FirstName: "Bea", Active: true, TenantID: 7})
	s.AddUser(metabasetest.User{Email: "ann@example.com", FirstName: "Ann", Active: true})
	u, err := c.UserByEmail(t.Context(), "bea@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != bea.ID || u.TenantID == nil || *u.TenantID != 7 {
		t.Errorf("UserByEmail(tenant user) = %+v, want id %d with tenant 7", u, bea.ID)
	}
	if u, err := c.UserByEmail(t.Context(), "ann@example.com"); err != nil || u.TenantID != nil {
		t.Errorf("UserByEmail(ann) = %+v, %v; want no tenant", u, err)
	}
	all, err := c.ListUsers(t.Context(), StatusAll)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range all {
		if u.ID == bea.ID {
			t.Error("ListUsers lists a tenant user; Metabase's default listing does not")
		}
	}
}

// TestUserByEmailRealisticLatency measures a look-up by email against a
// fake as slow as a real Metabase with a few thousand users: one request,
// and at least the profile's key check and search.
func TestUserByEmailRealisticLatency(t *testing.T) {
	t.Parallel()
	p := metabasetest.RealisticLatency()
	s := metabasetest.New(t, metabasetest.WithLatencyProfile(p))
	s.SeedUsers(3000)
	c, _ := newTestClient(t, s.URL(), WithAPIKey(metabasetest.AdminAPIKey))
	start := time.Now()
	u, err := c.UserByEmail(t.Context(), "user2500@example.com")
	elapsed := time.Since(start)
	if err != nil || u.ID != 2500 {
		t.Fatalf("UserByEmail = %+v, %v", u, err)
	}
	if want := p.APIKeyCheck + p.Search; elapsed < want {
		t.Errorf("UserByEmail took %v, want at least %v", elapsed, want)
	}
	if n := s.Count("GET", "/api/user"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	t.Logf("UserByEmail among 3000 users: %v", elapsed)
}
