package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
