package bot

import (
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

func TestWayBackWords(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		w    access.WayBack
		want []string
	}{
		{access.WayBack{}, []string{"admin reactivated them"}},
		{access.WayBack{SSOSource: "scim"}, []string{"SCIM push"}},
		{access.WayBack{SSOSource: "jwt"}, []string{"jwt sign-in with user provisioning on"}},
		{access.WayBack{SSOSource: "saml", Settings: map[string]string{"saml-user-provisioning-enabled?": "true"}},
			[]string{"saml sign-in", "`saml-user-provisioning-enabled?` true"}},
		{access.WayBack{SSOSource: "google"}, []string{"google sign-in"}},
	} {
		got := wayBackWords(tt.w)
		for _, want := range tt.want {
			if !strings.Contains(got, want) {
				t.Errorf("wayBackWords(%+v) = %q, want it to say %q", tt.w, got, want)
			}
		}
	}
}

// A report button's value names the request, the user and the disable; anything else is refused.
func TestWatchValue(t *testing.T) {
	t.Parallel()
	f := access.Finding{RequestID: "MB-ABCDEFGH", Instance: "eu", UserID: 42, Basis: "MB-ABCDEFGH@1764900000000"}
	id, user, basis, ok := parseWatchValue(watchValue(f))
	if !ok || id != f.RequestID || user != (approval.UserKey{Instance: "eu", ID: 42}) || basis != f.Basis {
		t.Fatalf("round trip = %q, %v, %q, %v", id, user, basis, ok)
	}
	for _, bad := range []string{"", "MB-1", "MB-1|eu|x|b", "MB-1|eu|0|b", "|eu|4|b", "MB-1|eu|4|"} {
		if _, _, _, ok := parseWatchValue(bad); ok {
			t.Errorf("parseWatchValue(%q) accepted a mangled value", bad)
		}
	}
}
