package metabasetest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// listIDs returns the ids GET /api/user answers path with, or fails.
func listIDs(t *testing.T, s *Server, path string) []int {
	t.Helper()
	status, _, body := rawDo(t, s, "GET", path, admin, "")
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var page struct {
		Data []struct {
			ID int `json:"id"`
		}
		Total int
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	ids := []int{}
	for _, u := range page.Data {
		ids = append(ids, u.ID)
	}
	if page.Total != len(ids) {
		t.Errorf("GET %s: total %d for %d rows", path, page.Total, len(ids))
	}
	return ids
}

// TestTenantListing pins GET /api/user's tenancy and tenant_id to
// users_rest/api.clj: users without a tenant by default, and the others
// only when asked for.
func TestTenantListing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query  string
		legacy bool
		want   []int
	}{
		{query: "", want: []int{20, 1}},
		{query: "?tenancy=internal", want: []int{20, 1}},
		{query: "?tenancy=all", want: []int{20, 21, 22, 1}},
		{query: "?tenancy=external", want: []int{21, 22}},
		{query: "?tenant_id=7", want: []int{21}},
		{query: "?tenant_id=9", want: []int{}},
		{query: "?status=all&query=bea&tenancy=all", want: []int{21}},
		{query: "?status=all&query=bea", want: []int{}},
		// Older versions know neither parameter, nor tenants.
		{query: "?tenancy=internal", legacy: true, want: []int{20, 21, 22, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			s.AddUser(User{ID: 20, Email: "ann@example.com", FirstName: "Ann", Active: true})
			s.AddUser(User{ID: 21, Email: "bea@customer.example", FirstName: "Bea", Active: true, TenantID: 7})
			s.AddUser(User{ID: 22, Email: "cy@other.example", FirstName: "Cy", Active: true, TenantID: 8})
			s.SetLegacyDelete(tt.legacy)
			if diff := cmp.Diff(tt.want, listIDs(t, s, "/api/user"+tt.query)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTenantListingBadParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query  string
		status int
		ct     string
		want   string
	}{
		{"?tenancy=all&tenant_id=7", 400, textCT, "You cannot specify both `tenancy` and `tenant_id`"},
		{"?tenancy=everyone", 400, jsonCT, `{"errors":{"tenancy":"nullable enum of :all, :internal, :external"}}`},
		{"?tenant_id=0", 400, jsonCT, `{"errors":{"tenant_id":"nullable value must be an integer greater than zero."}}`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			status, ct, body := rawDo(t, s, "GET", "/api/user"+tt.query, admin, "")
			checkReply(t, status, ct, body, tt.status, tt.ct, tt.want)
		})
	}
}

// TestTenantUser: a tenant user is found by id with its tenant_id, is in
// All tenant users rather than All Users, cannot become an admin, and is
// not reactivated while its tenant is deactivated.
func TestTenantUser(t *testing.T) {
	t.Parallel()
	s := New(t)
	bea := s.AddUser(User{ID: 21, Email: "bea@customer.example", Active: true, TenantID: 7})
	if diff := cmp.Diff([]int{AllTenantUsersGroupID}, bea.GroupIDs); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	status, ct, body := rawDo(t, s, "GET", "/api/user/21", admin, "")
	checkReply(t, status, ct, body, 200, jsonCT, `{"tenant_id":7,"user_group_memberships":[{"id":1000}]}`)
	status, ct, body = rawDo(t, s, "GET", "/api/user/1", admin, "")
	checkReply(t, status, ct, body, 200, jsonCT, `{"tenant_id":null}`)

	status, ct, body = rawDo(t, s, "PUT", "/api/user/21", admin, `{"is_superuser":true}`)
	checkReply(t, status, ct, body, 400, jsonCT, `{"message":"Cannot add non-tenant user to tenant-group or vice versa"}`)
	status, ct, body = rawDo(t, s, "PUT", "/api/user/21", admin, `{"user_group_memberships":[{"id":1}]}`)
	checkReply(t, status, ct, body, 400, textCT, "You cannot add or remove users to/from the 'All tenant users' group.")

	if status, _, body := rawDo(t, s, "DELETE", "/api/user/21", admin, ""); status != 200 {
		t.Fatalf("DELETE tenant user: %d %s", status, body)
	}
	s.SetTenantActive(7, false)
	status, ct, body = rawDo(t, s, "PUT", "/api/user/21/reactivate", admin, "")
	checkReply(t, status, ct, body, 400, jsonCT, `{"message":"Not able to reactivate a user in a deactivated tenant"}`)
	s.SetTenantActive(7, true)
	status, ct, body = rawDo(t, s, "PUT", "/api/user/21/reactivate", admin, "")
	checkReply(t, status, ct, body, 200, jsonCT, `{"is_active":true,"tenant_id":7}`)
}
