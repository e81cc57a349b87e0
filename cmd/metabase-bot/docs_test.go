package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// repoFile reads a file at the repository root (tests run in cmd/metabase-bot).
func repoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

func TestLicenseIsApache2(t *testing.T) {
	t.Parallel()
	license := repoFile(t, "LICENSE")
	// The full text, not a stub: its title, the last section and the end of the terms.
	for _, want := range []string{"Apache License", "Version 2.0, January 2004", "9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS"} {
		if !strings.Contains(license, want) {
			t.Errorf("LICENSE lacks %q", want)
		}
	}
	if readme := repoFile(t, "README.md"); !strings.Contains(readme, "Apache License 2.0") || !strings.Contains(readme, "(LICENSE)") {
		t.Error("README.md does not say the project is under the Apache License 2.0, linking LICENSE")
	}
}

// The configuration struct is the source of truth: every variable it reads is in .env.example
// (set, or commented out with its default) and in the README's configuration table, and neither
// lists a variable the bot does not read.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	vars := envVars()
	if len(vars) < 30 {
		t.Fatalf("found %d variables in config's env tags; the reflection misses some", len(vars))
	}
	known := make(map[string]bool)
	for _, v := range vars {
		known[v] = true
	}
	for _, v := range secretVars {
		known[v+"_FILE"] = true
	}
	// documented maps each variable a file lists to the rest of its line.
	documented := func(file string, line *regexp.Regexp) map[string]string {
		found := make(map[string]string)
		for _, m := range line.FindAllStringSubmatch(repoFile(t, file), -1) {
			found[m[1]] = m[2]
			if !known[m[1]] {
				t.Errorf("%s lists %s, which the bot does not read", file, m[1])
			}
		}
		return found
	}
	example := documented(".env.example", regexp.MustCompile(`(?m)^#?([A-Z][A-Z0-9_]*)=(.*)$`))
	exampleDefaults := documented(".env.example", regexp.MustCompile(`(?m)^#([A-Z][A-Z0-9_]*)=(.*)$`))
	readme := documented("README.md", regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]*)` \\|(.*)$"))
	defaults := envDefaults()
	for _, v := range vars {
		if _, ok := example[v]; !ok {
			t.Errorf(".env.example lacks %s (add NAME=value, or #NAME=default to keep the default)", v)
		}
		if got, ok := exampleDefaults[v]; ok && defaults[v] != "" && got != defaults[v] {
			t.Errorf(".env.example shows #%s=%s, but its default is %s", v, got, defaults[v])
		}
		row, ok := readme[v]
		if !ok {
			t.Errorf("README.md's configuration table lacks %s", v)
			continue
		}
		// row is " required | default | meaning |".
		if cols := strings.Split(row, "|"); defaults[v] != "" && (len(cols) < 2 || !strings.Contains(cols[1], "`"+defaults[v]+"`")) {
			t.Errorf("README.md's row for %s does not show its default `%s`", v, defaults[v])
		}
	}
}

// envDefaults maps each variable of config to its envDefault tag.
func envDefaults() map[string]string {
	out := make(map[string]string)
	for _, f := range envFields(reflect.TypeFor[config]()) {
		if tag, ok := f.Tag.Lookup("env"); ok {
			out[strings.Split(tag, ",")[0]] = f.Tag.Get("envDefault")
		}
	}
	return out
}

// The quick start states the Go version as go.mod does, and runs the bot with text logs.
func TestQuickStartMatchesGoMod(t *testing.T) {
	t.Parallel()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(repoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	readme := repoFile(t, "README.md")
	start, _, ok := strings.Cut(readme[strings.Index(readme, "## Quick start"):], "\n## ")
	if !ok || !strings.Contains(start, "Go "+m[1]) {
		t.Errorf("README's quick start does not say Go %s, as go.mod does", m[1])
	}
	if !strings.Contains(start, "LOG_FORMAT=text") {
		t.Error("README's quick start does not run the bot with LOG_FORMAT=text")
	}
}

// The quick start runs the preflight check before the bot.
func TestQuickStartRunsCheckFirst(t *testing.T) {
	t.Parallel()
	readme := repoFile(t, "README.md")
	start, _, _ := strings.Cut(readme[strings.Index(readme, "## Quick start"):], "\n## ")
	check := strings.Index(start, "go run ./cmd/metabase-bot check")
	bot := strings.Index(start, "LOG_FORMAT=text go run ./cmd/metabase-bot\n")
	if check < 0 || bot < 0 || check > bot {
		t.Error("README's quick start does not run `metabase-bot check` before the bot")
	}
}

// The README's Slack set-up names every bot scope of the manifest, and no other.
func TestReadmeScopesMatchManifest(t *testing.T) {
	t.Parallel()
	path, err := slacktest.FindManifest()
	if err != nil {
		t.Fatal(err)
	}
	scopes, err := slacktest.ReadManifestScopes(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := repoFile(t, "README.md")
	setup, _, _ := strings.Cut(readme[strings.Index(readme, "## Creating the Slack app"):], "\n## ")
	sentence := setup[strings.Index(setup, "requests the bot scopes"):]
	sentence, _, _ = strings.Cut(sentence, "(")
	named := regexp.MustCompile("`([a-z:.]+)`").FindAllStringSubmatch(sentence, -1)
	var got []string
	for _, m := range named {
		got = append(got, m[1])
	}
	if strings.Join(got, ",") != strings.Join(scopes, ",") {
		t.Errorf("README names the bot scopes %v; the manifest grants %v", got, scopes)
	}
}
