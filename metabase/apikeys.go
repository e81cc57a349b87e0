package metabase

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// apiKeyPrefixLen is how many leading characters of a key Metabase keeps
// as its prefix and shows in masked_key; prefixes are unique
// (docs/metabase.md#api-key-listing).
const apiKeyPrefixLen = 7

// APIKey is an API key as GET /api/api-key lists it. The key acts as its
// own user: deactivating the person who made it leaves it working
// (docs/metabase.md#api-key-listing).
type APIKey struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// Group is the key's group besides All Users; a key in the Admin
	// group (AdministratorsGroupID) is a full admin.
	Group struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	} `json:"group"`
	// UpdatedBy is who last created, renamed or regenerated the key.
	// Metabase does not return who created it.
	UpdatedBy struct {
		ID         int    `json:"id"`
		CommonName string `json:"common_name"`
	} `json:"updated_by"`
	// MaskedKey is the key's prefix followed by asterisks.
	MaskedKey string `json:"masked_key"`
}

// AdministratorsGroupID is Metabase's Admin group, the same id in every
// instance (a magic group created by the first migration).
const AdministratorsGroupID = 2

// IsAdmin reports whether the key is in the Admin group.
func (k APIKey) IsAdmin() bool { return k.Group.ID == AdministratorsGroupID }

// ListAPIKeys returns the instance's API keys of the default scope; SCIM
// keys are never listed (docs/metabase.md#api-key-listing). Admins only.
//
// GET /api/api-key
func (c *Client) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var keys []APIKey
	err := c.do(ctx, request{method: "GET", route: "/api/api-key", path: "api/api-key", retry: true}, &keys)
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// DeleteAPIKey deletes the key, which also deactivates the key's own user.
// A key already gone is ErrNotFound: a repeated delete after a crash
// meets it and treats it as done. Deleting is safe to repeat.
//
// DELETE /api/api-key/:id
func (c *Client) DeleteAPIKey(ctx context.Context, id int) error {
	if id <= 0 {
		return errors.New("metabase: delete API key: id must be positive")
	}
	return c.do(ctx, request{
		method: "DELETE", route: "/api/api-key/:id", path: "api/api-key/" + strconv.Itoa(id), retry: true,
	}, nil)
}

// IsOwnAPIKey reports whether k is the key this client signs in with,
// by the prefix masked_key shows (unique per instance). A client that
// signs in with a password has no key, so no key is its own. The key
// itself never leaves the client.
func (c *Client) IsOwnAPIKey(k APIKey) bool {
	if len(c.apiKey) < apiKeyPrefixLen || len(k.MaskedKey) < apiKeyPrefixLen {
		return false
	}
	return strings.HasPrefix(k.MaskedKey, c.apiKey[:apiKeyPrefixLen])
}
