package metabase

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// TestSignInSettings reads the switches as an admin, with the defaults of
// a fresh instance and SCIM forcing SAML provisioning off; a secret set on
// the instance never reaches the client.
func TestSignInSettings(t *testing.T) {
	t.Parallel()
	c, s := setup(t)
	got, err := c.SignInSettings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (SignInSettings{PublicSharing: true, JWTProvisioning: true, SAMLProvisioning: true, LDAPProvisioning: true, Version: got.Version}); got != want {
		t.Errorf("fresh instance = %+v, want %+v", got, want)
	}
	if !got.Version.Known() {
		t.Errorf("version not read: %+v", got.Version)
	}
	const secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for k, v := range map[string]any{"jwt-enabled": true, "jwt-shared-secret": secret, "saml-enabled": true, "scim-enabled": true,
		"enable-embedding-static": true, "embedding-secret-key": secret, "enable-public-sharing": false} {
		s.SetSetting(k, v)
	}
	got, err = c.SignInSettings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !got.JWT || !got.JWTProvisioning || !got.SAML || got.SAMLProvisioning || !got.SCIM || !got.Embedding || got.PublicSharing {
		t.Errorf("configured instance = %+v", got)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL()+"/api/session/properties", nil)
	req.Header.Set("X-API-Key", metabasetest.AdminAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), secret) || !strings.Contains(string(body), "jwt-enabled") {
		t.Errorf("the properties an admin reads carry a secret or lack the switches: %s", body)
	}
}

// TestSignInSettingsNonAdmin: a caller who is not an admin does not see
// the admin-only switches, so they read as off; the bot signs in as an
// admin for that reason.
func TestSignInSettingsNonAdmin(t *testing.T) {
	t.Parallel()
	_, s := setup(t)
	s.SetSetting("jwt-enabled", true)
	k := s.AddAPIKey(metabasetest.APIKey{Name: "viewer", UpdatedByID: metabasetest.AdminUserID})
	c, _ := newTestClient(t, s.URL(), WithAPIKey(k.Key))
	got, err := c.SignInSettings(t.Context())
	if err != nil || got.JWT || !got.PublicSharing {
		t.Errorf("non-admin read = %+v, %v; want JWT hidden and public sharing seen", got, err)
	}
}
