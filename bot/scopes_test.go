package bot

import (
	"slices"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// TestManifestGrantsRequiredScopes: the app created from the manifest has every scope the code
// needs; the fake Slack gives its token the manifest's scopes, so the end-to-end tests use them.
func TestManifestGrantsRequiredScopes(t *testing.T) {
	t.Parallel()
	path, err := slacktest.FindManifest()
	if err != nil {
		t.Fatal(err)
	}
	granted, err := slacktest.ReadManifestScopes(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range RequiredScopes {
		if !slices.Contains(granted, s.Name) {
			t.Errorf("slack-app-manifest.yaml does not grant %s (%s)", s.Name, s.Why)
		}
	}
}
