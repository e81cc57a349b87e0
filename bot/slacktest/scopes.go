package slacktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// ManifestFile is the app manifest New reads the bot token's scopes from, found by walking up from
// the working directory (a test runs in its package's directory, so this finds the repository's).
const ManifestFile = "slack-app-manifest.yaml"

// methodScopes are the bot scopes each Web API method needs, from the "Required scopes" of its page
// (https://api.slack.com/methods/<method>). A method needing any one of several scopes lists them
// all; conversations.* are resolved per channel type by scopeFor. Methods absent here need none
// (auth.test, views.open, views.update) or another token (apps.connections.open).
var methodScopes = map[string][]string{
	"chat.postMessage":      {"chat:write"},
	"chat.update":           {"chat:write"},
	"chat.postEphemeral":    {"chat:write"},
	"chat.delete":           {"chat:write"},
	"usergroups.users.list": {"usergroups:read"},
	"usergroups.list":       {"usergroups:read"},
	"users.info":            {"users:read"},
	"users.list":            {"users:read"},
	"users.lookupByEmail":   {"users:read.email"},
	"conversations.join":    {"channels:join"},
}

// appTokenScope is what apps.connections.open needs on the app-level token
// (https://api.slack.com/methods/apps.connections.open).
const appTokenScope = "connections:write"

// scopeFor is the scope method needs for the call p, or "" when it needs none.
func scopeFor(method string, p params) string {
	switch method {
	case "conversations.info", "conversations.members":
		// https://api.slack.com/methods/conversations.info: channels:read for public channels,
		// groups:read for private ones (im:read and mpim:read for DMs, which the bot never reads).
		if strings.HasPrefix(p.get("channel"), "C") {
			return "channels:read"
		}
		return "groups:read"
	}
	if s := methodScopes[method]; len(s) > 0 {
		return s[0]
	}
	return ""
}

// ReadManifestScopes returns the bot scopes of the Slack app manifest at path
// (oauth_config.scopes.bot).
func ReadManifestScopes(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m struct {
		OAuth struct {
			Scopes struct {
				Bot []string `json:"bot"`
			} `json:"scopes"`
		} `json:"oauth_config"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.OAuth.Scopes.Bot) == 0 {
		return nil, fmt.Errorf("%s: no oauth_config.scopes.bot", path)
	}
	return m.OAuth.Scopes.Bot, nil
}

// FindManifest walks up from the working directory to the first directory holding ManifestFile.
func FindManifest() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ManifestFile)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("slacktest: no " + ManifestFile + " in the working directory or above it; set Options.BotScopes")
		}
		dir = parent
	}
}

// missingScope is Slack's answer to a token without the scope a method needs: the needed scope and
// every scope the token has, comma-separated.
func missingScope(needed string, provided []string) errResp {
	return errResp{code: "missing_scope", extra: map[string]any{"needed": needed, "provided": strings.Join(provided, ",")}}
}

// hasScope reports whether scopes grants scope.
func hasScope(scopes []string, scope string) bool { return slices.Contains(scopes, scope) }

// BotScopes are the scopes the fake's bot token has.
func (s *Server) BotScopes() []string { return slices.Clone(s.opts.BotScopes) }
