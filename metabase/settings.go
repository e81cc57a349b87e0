package metabase

import (
	"context"
	"encoding/json"
)

// SignInSettings are the instance settings that decide what outlives a
// disable: how people sign in, whether a sign-in may create or
// re-activate an account, public sharing and embedding. They hold no
// secret: the client reads only these switches, and Metabase leaves
// sensitive settings (the JWT shared secret, the embedding secret key) out
// of the listing it reads (docs/metabase.md#sign-in-settings). A setting
// an edition does not have (JWT, SAML and SCIM are Pro and Enterprise
// only) reads as off.
type SignInSettings struct {
	PublicSharing    bool // enable-public-sharing
	JWT              bool // jwt-enabled
	JWTProvisioning  bool // jwt-user-provisioning-enabled?
	SAML             bool // saml-enabled
	SAMLProvisioning bool // saml-user-provisioning-enabled? (off while SCIM is on)
	SCIM             bool // scim-enabled
	LDAP             bool // ldap-enabled
	LDAPProvisioning bool // ldap-user-provisioning-enabled?
	Google           bool // google-auth-enabled
	// Embedding is any of enable-embedding (before 0.51),
	// enable-embedding-static, -interactive, -sdk and -simple: an admin
	// could then read the embedding secret key, which signs embeds.
	Embedding bool
	// Version is the one the same reply reports.
	Version Version
}

// SettingsReader gives the sign-in settings of an instance. *Client is
// one; a cache of instance facts can be another.
type SettingsReader interface {
	SignInSettings(ctx context.Context) (SignInSettings, error)
}

// SignInSettings reads the settings as the signed-in admin sees them,
// values set by environment variable included.
//
// GET /api/session/properties (authenticated)
func (c *Client) SignInSettings(ctx context.Context) (SignInSettings, error) {
	var props map[string]json.RawMessage
	err := c.do(ctx, request{
		method: "GET", route: "/api/session/properties", path: "api/session/properties", retry: true,
	}, &props)
	if err != nil {
		return SignInSettings{}, err
	}
	on := func(name string) bool {
		var b bool
		// Anything but a JSON boolean (absent, null) is off; secrets are
		// never decoded, as no field names one.
		_ = json.Unmarshal(props[name], &b)
		return b
	}
	var v struct {
		Tag string `json:"tag"`
	}
	_ = json.Unmarshal(props["version"], &v)
	return SignInSettings{
		PublicSharing:    on("enable-public-sharing"),
		JWT:              on("jwt-enabled"),
		JWTProvisioning:  on("jwt-user-provisioning-enabled?"),
		SAML:             on("saml-enabled"),
		SAMLProvisioning: on("saml-user-provisioning-enabled?") && !on("scim-enabled"),
		SCIM:             on("scim-enabled"),
		LDAP:             on("ldap-enabled"),
		LDAPProvisioning: on("ldap-user-provisioning-enabled?"),
		Google:           on("google-auth-enabled"),
		Embedding: on("enable-embedding") || on("enable-embedding-static") || on("enable-embedding-interactive") ||
			on("enable-embedding-sdk") || on("enable-embedding-simple"),
		Version: ParseVersion(v.Tag),
	}, nil
}
