package metabasetest

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkReply compares a reply with the wanted status, content type and
// body: exact text, or JSON of which only want's keys must match.
func checkReply(t *testing.T, status int, ct, body string, wantStatus int, wantCT, want string) {
	t.Helper()
	if status != wantStatus || ct != wantCT {
		t.Fatalf("reply = %d %q %s, want %d %q", status, ct, body, wantStatus, wantCT)
	}
	if wantCT == textCT {
		if body != want {
			t.Errorf("body = %q, want %q", body, want)
		}
		return
	}
	var got, w map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if _, ok := w[k]; !ok {
			delete(got, k)
		}
	}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("body (-want +got):\n%s\nfull: %s", diff, body)
	}
}

// TestMembershipRules pins PUT /api/user/:id with user_group_memberships
// to users_rest/api.clj and permissions_group_membership.clj, open source
// edition: each case starts from ann, active, in groups 1 and 4 (group 5
// exists too), and a refused request changes nothing.
func TestMembershipRules(t *testing.T) {
	t.Parallel()
	const (
		allUsers = "You cannot add or remove users to/from the 'All Users' group."
		mismatch = `{"errors":{"is_superuser":"Value of is_superuser must correspond to presence of Admin group ID in group_ids."}}`
	)
	tests := []struct {
		name       string
		legacy     bool
		superuser  bool // ann starts as an admin
		body       string
		status     int
		ct         string
		want       string
		wantGroups []int
		wantSuper  bool
	}{
		{name: "is_superuser alone grants admin", body: `{"is_superuser":true}`,
			status: 200, ct: jsonCT, want: `{"is_superuser":true}`, wantGroups: []int{1, 2, 4}, wantSuper: true},
		{name: "is_superuser with matching groups", body: `{"is_superuser":true,"user_group_memberships":[{"id":1},{"id":2},{"id":4}]}`,
			status: 200, ct: jsonCT, want: `{"is_superuser":true}`, wantGroups: []int{1, 2, 4}, wantSuper: true},
		{name: "is_superuser true without the Admin group", body: `{"is_superuser":true,"user_group_memberships":[{"id":1},{"id":4}]}`,
			status: 400, ct: jsonCT, want: mismatch, wantGroups: []int{1, 4}},
		{name: "is_superuser false with the Admin group", superuser: true,
			body:   `{"is_superuser":false,"user_group_memberships":[{"id":1},{"id":2},{"id":4}]}`,
			status: 400, ct: jsonCT, want: mismatch, wantGroups: []int{1, 2, 4}, wantSuper: true},
		{name: "Admin group in the list grants admin", body: `{"user_group_memberships":[{"id":1},{"id":2},{"id":4}]}`,
			status: 200, ct: jsonCT, want: `{"is_superuser":true}`, wantGroups: []int{1, 2, 4}, wantSuper: true},
		{name: "Admin group left out revokes admin", superuser: true, body: `{"user_group_memberships":[{"id":1},{"id":4}]}`,
			status: 200, ct: jsonCT, want: `{"is_superuser":false}`, wantGroups: []int{1, 4}},
		{name: "groups replaced", body: `{"user_group_memberships":[{"id":1},{"id":5}]}`,
			status: 200, ct: jsonCT, want: `{"user_group_memberships":[{"id":1},{"id":5}]}`, wantGroups: []int{1, 5}},
		{name: "same groups, no change", body: `{"user_group_memberships":[{"id":4},{"id":1},{"id":4}]}`,
			status: 200, ct: jsonCT, want: `{"user_group_memberships":[{"id":1},{"id":4}]}`, wantGroups: []int{1, 4}},
		{name: "is_group_manager ignored without advanced permissions",
			body:   `{"user_group_memberships":[{"id":1,"is_group_manager":true},{"id":4}]}`,
			status: 200, ct: jsonCT, want: `{"user_group_memberships":[{"id":1},{"id":4}]}`, wantGroups: []int{1, 4}},
		{name: "null memberships ignored", body: `{"user_group_memberships":null}`,
			status: 200, ct: jsonCT, want: `{"id":10}`, wantGroups: []int{1, 4}},
		{name: "list without All Users", body: `{"user_group_memberships":[{"id":4}]}`,
			status: 400, ct: textCT, want: allUsers, wantGroups: []int{1, 4}},
		{name: "empty list", body: `{"user_group_memberships":[]}`,
			status: 400, ct: textCT, want: allUsers, wantGroups: []int{1, 4}},
		{name: "unknown group, newest", body: `{"user_group_memberships":[{"id":1},{"id":4},{"id":99}]}`,
			status: 400, ct: jsonCT, want: `{"message":"Cannot add non-tenant user to tenant-group or vice versa"}`,
			wantGroups: []int{1, 4}},
		{name: "unknown group, older", legacy: true, body: `{"user_group_memberships":[{"id":1},{"id":4},{"id":99}]}`,
			status: 500, ct: jsonCT, want: `{"data":{"status-code":500}}`, wantGroups: []int{1, 4}},
		{name: "tenant group for an internal user", body: `{"user_group_memberships":[{"id":1},{"id":1000}]}`,
			status: 400, ct: textCT, want: "You cannot add or remove users to/from the 'All tenant users' group.",
			wantGroups: []int{1, 4}},
		{name: "bad entry", body: `{"user_group_memberships":[{"id":0}]}`,
			status: 400, ct: jsonCT, want: `{"errors":{"user_group_memberships":"nullable sequence of map where {:id -> <value must be an integer greater than zero.>, :is_group_manager (optional) -> <boolean>}"}}`,
			wantGroups: []int{1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			s.AddGroup(5)
			s.SetLegacyDelete(tt.legacy)
			s.AddUser(User{ID: 10, Email: "ann@example.com", Active: true, Superuser: tt.superuser, GroupIDs: []int{4}})
			status, ct, body := rawDo(t, s, "PUT", "/api/user/10", admin, tt.body)
			checkReply(t, status, ct, body, tt.status, tt.ct, tt.want)
			got, _ := s.UserByID(10)
			if diff := cmp.Diff(tt.wantGroups, got.GroupIDs); diff != "" || got.Superuser != tt.wantSuper {
				t.Errorf("stored: superuser %v, groups (-want +got):\n%s", got.Superuser, diff)
			}
		})
	}
}

// TestMembershipRulesLastAdmin: leaving out the Admin group of the only
// active admin is refused like revoking is_superuser.
func TestMembershipRulesLastAdmin(t *testing.T) {
	t.Parallel()
	s := New(t)
	status, ct, body := rawDo(t, s, "PUT", "/api/user/1", admin, `{"user_group_memberships":[{"id":1}]}`)
	checkReply(t, status, ct, body, 400, textCT, "You cannot remove the last member of the 'Admin' group!")
	if got, _ := s.UserByID(1); !got.Superuser {
		t.Error("the last admin lost admin status")
	}
}

// TestCreateUserMembershipRules: POST /api/user applies the same rules,
// and a refused request creates no user.
func TestCreateUserMembershipRules(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddGroup(3)
	status, ct, body := rawDo(t, s, "POST", "/api/user", admin, `{"email":"new@example.com","user_group_memberships":[{"id":3}]}`)
	checkReply(t, status, ct, body, 400, textCT, "You cannot add or remove users to/from the 'All Users' group.")
	status, _, body = rawDo(t, s, "GET", "/api/user?query=new@example.com&status=all", admin, "")
	if status != 200 || !strings.Contains(body, `"total":0`) {
		t.Errorf("after a refused POST: %d %s, want no such user", status, body)
	}
	status, ct, body = rawDo(t, s, "POST", "/api/user", admin, `{"email":"new@example.com","user_group_memberships":[{"id":1},{"id":3}]}`)
	checkReply(t, status, ct, body, 200, jsonCT, `{"email":"new@example.com","user_group_memberships":[{"id":1},{"id":3}]}`)
}

// TestAdvancedPermissions pins the Pro/Enterprise mode to the enterprise
// group_manager.clj set-user-group-memberships!: memberships are diffed
// with is_group_manager, so an entry without it counts as changed, and
// changing the All Users membership is refused. Ann is in groups 1 and 4
// and manages 4.
func TestAdvancedPermissions(t *testing.T) {
	t.Parallel()
	const allUsers = "You cannot add or remove users to/from the 'All Users' group."
	tests := []struct {
		name         string
		key          string // default: the admin's
		body         string
		status       int
		ct           string
		want         string
		wantGroups   []int
		wantManagers []int
		wantSuper    bool
	}{
		{name: "is_superuser alone", body: `{"is_superuser":true}`, status: 200, ct: jsonCT,
			want:       `{"is_superuser":true,"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":2,"is_group_manager":false},{"id":4,"is_group_manager":true}]}`,
			wantGroups: []int{1, 2, 4}, wantManagers: []int{4}, wantSuper: true},
		{name: "entries without is_group_manager", body: `{"user_group_memberships":[{"id":1},{"id":4}]}`,
			status: 400, ct: textCT, want: allUsers, wantGroups: []int{1, 4}, wantManagers: []int{4}},
		{name: "restore as the open-source bot does", body: `{"is_superuser":true,"user_group_memberships":[{"id":1},{"id":2},{"id":4}]}`,
			status: 400, ct: textCT, want: allUsers, wantGroups: []int{1, 4}, wantManagers: []int{4}},
		{name: "All Users with a changed flag", body: `{"user_group_memberships":[{"id":1,"is_group_manager":true},{"id":4,"is_group_manager":true}]}`,
			status: 400, ct: textCT, want: allUsers, wantGroups: []int{1, 4}, wantManagers: []int{4}},
		{name: "same memberships", body: `{"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":4,"is_group_manager":true}]}`,
			status: 200, ct: jsonCT, want: `{"is_superuser":false}`, wantGroups: []int{1, 4}, wantManagers: []int{4}},
		{name: "demote manager", body: `{"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":4,"is_group_manager":false}]}`,
			status: 200, ct: jsonCT, want: `{"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":4,"is_group_manager":false}]}`,
			wantGroups: []int{1, 4}},
		{name: "add a group", body: `{"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":4,"is_group_manager":true},{"id":5}]}`,
			status: 200, ct: jsonCT, want: `{"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":4,"is_group_manager":true},{"id":5,"is_group_manager":false}]}`,
			wantGroups: []int{1, 4, 5}, wantManagers: []int{4}},
		{name: "restore admin with flags", body: `{"is_superuser":true,"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":2,"is_group_manager":false},{"id":4,"is_group_manager":true}]}`,
			status: 200, ct: jsonCT, want: `{"is_superuser":true}`, wantGroups: []int{1, 2, 4}, wantManagers: []int{4}, wantSuper: true},
		{name: "mismatch is checked first", body: `{"is_superuser":true,"user_group_memberships":[{"id":1,"is_group_manager":false}]}`,
			status: 400, ct: jsonCT, want: `{"errors":{"is_superuser":"Value of is_superuser must correspond to presence of Admin group ID in group_ids."}}`,
			wantGroups: []int{1, 4}, wantManagers: []int{4}},
		{name: "non-admin editing themselves", key: "self", body: `{"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":4,"is_group_manager":true}]}`,
			status: 403, ct: textCT, want: "Not allowed to edit group memberships", wantGroups: []int{1, 4}, wantManagers: []int{4}},
	}
	const selfKey = "mb_annannannannannannannannannann"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, WithAdvancedPermissions(), WithAPIKey(selfKey, 10))
			s.AddGroup(5)
			s.AddUser(User{ID: 10, Email: "ann@example.com", Active: true, GroupIDs: []int{4}, ManagedGroupIDs: []int{4}})
			h := admin
			if tt.key == "self" {
				h = map[string]string{"X-API-Key": selfKey}
			}
			status, ct, body := rawDo(t, s, "PUT", "/api/user/10", h, tt.body)
			checkReply(t, status, ct, body, tt.status, tt.ct, tt.want)
			got, _ := s.UserByID(10)
			if diff := cmp.Diff(tt.wantGroups, got.GroupIDs); diff != "" || got.Superuser != tt.wantSuper {
				t.Errorf("stored: superuser %v, groups (-want +got):\n%s", got.Superuser, diff)
			}
			if diff := cmp.Diff(tt.wantManagers, got.ManagedGroupIDs); diff != "" {
				t.Errorf("stored managed groups (-want +got):\n%s", diff)
			}
		})
	}
	// GET shows the flags, so a client can send them back.
	s := New(t, WithAdvancedPermissions())
	s.AddUser(User{ID: 10, Email: "ann@example.com", Active: true, GroupIDs: []int{4}, ManagedGroupIDs: []int{4}})
	status, ct, body := rawDo(t, s, "GET", "/api/user/10", admin, "")
	checkReply(t, status, ct, body, 200, jsonCT, `{"user_group_memberships":[{"id":1,"is_group_manager":false},{"id":4,"is_group_manager":true}]}`)
}

// TestGroupsSurviveDeactivation: deactivation keeps every membership;
// reactivation drops only the Admin group (with is_superuser), so
// is_superuser alone restores an admin (users/models/user.clj).
func TestGroupsSurviveDeactivation(t *testing.T) {
	t.Parallel()
	for _, advanced := range []bool{false, true} {
		t.Run("advanced="+strconv.FormatBool(advanced), func(t *testing.T) {
			t.Parallel()
			var opts []Option
			if advanced {
				opts = append(opts, WithAdvancedPermissions())
			}
			s := New(t, opts...)
			s.AddUser(User{ID: 10, Email: "ann@example.com", Active: true, Superuser: true, GroupIDs: []int{4, 5}, ManagedGroupIDs: []int{5}})
			steps := []struct {
				method, path, body string
				wantGroups         []int
				wantActive         bool
				wantSuper          bool
			}{
				{"DELETE", "/api/user/10", "", []int{1, 2, 4, 5}, false, true},
				{"PUT", "/api/user/10/reactivate", "", []int{1, 4, 5}, true, false},
				{"PUT", "/api/user/10", `{"is_superuser":true}`, []int{1, 2, 4, 5}, true, true},
			}
			for _, st := range steps {
				if status, _, body := rawDo(t, s, st.method, st.path, admin, st.body); status != 200 {
					t.Fatalf("%s %s: %d %s", st.method, st.path, status, body)
				}
				got, _ := s.UserByID(10)
				if diff := cmp.Diff(st.wantGroups, got.GroupIDs); diff != "" || got.Active != st.wantActive || got.Superuser != st.wantSuper {
					t.Errorf("after %s %s: active %v superuser %v, groups (-want +got):\n%s",
						st.method, st.path, got.Active, got.Superuser, diff)
				}
				if diff := cmp.Diff([]int{5}, got.ManagedGroupIDs); diff != "" {
					t.Errorf("after %s %s: managed groups (-want +got):\n%s", st.method, st.path, diff)
				}
			}
		})
	}
}

// TestDeleteGroup: a deleted group's memberships go with it, and naming
// it afterwards is naming an unknown group.
func TestDeleteGroup(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddUser(User{ID: 10, Email: "ann@example.com", Active: true, GroupIDs: []int{4, 5}})
	s.DeleteGroup(5)
	if got, _ := s.UserByID(10); !cmp.Equal(got.GroupIDs, []int{1, 4}) {
		t.Errorf("groups after DeleteGroup = %v, want [1 4]", got.GroupIDs)
	}
	status, ct, body := rawDo(t, s, "PUT", "/api/user/10", admin, `{"user_group_memberships":[{"id":1},{"id":4},{"id":5}]}`)
	checkReply(t, status, ct, body, 400, jsonCT, `{"message":"Cannot add non-tenant user to tenant-group or vice versa"}`)
}

// TestAddUserRefusesImpossibleUsers: a seeded user Metabase could not have
// would let a test pass that production fails.
func TestAddUserRefusesImpossibleUsers(t *testing.T) {
	t.Parallel()
	s := New(t)
	tests := []struct {
		name string
		u    User
		want string
	}{
		{"duplicate email", User{Email: "BOT@example.com"}, "already in use"},
		{"duplicate id", User{ID: AdminUserID, Email: "x@example.com"}, "already in use"},
		{"tenant admin", User{Email: "t@example.com", TenantID: 3, Superuser: true}, "cannot be a superuser"},
		{"API key with a person's email", User{Email: "key@example.com", Type: "api-key"}, "@api-key.invalid"},
		{"unknown type", User{Email: "i@example.com", Type: "internal"}, "want personal or api-key"},
		{"All tenant users for an internal user", User{Email: "g@example.com", GroupIDs: []int{AllTenantUsersGroupID}}, "magic group"},
		{"managing a group the user is not in", User{Email: "m@example.com", ManagedGroupIDs: []int{4}}, "not one of the user's groups"},
	}
	for _, tt := range tests {
		s.mu.Lock()
		_, err := s.newUserLocked(tt.u)
		s.mu.Unlock()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
