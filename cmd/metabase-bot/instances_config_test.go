package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// multiEnv is a valid configuration of two instances, prod and eu.
func multiEnv() map[string]string {
	env := validEnv()
	delete(env, "METABASE_URL")
	delete(env, "METABASE_API_KEY")
	env["METABASE_INSTANCES"] = "prod, eu"
	env["METABASE_PROD_URL"], env["METABASE_PROD_API_KEY"] = "https://metabase.example.com", "mb_prodkey"
	env["METABASE_EU_URL"], env["METABASE_EU_USERNAME"], env["METABASE_EU_PASSWORD"] = "https://eu.example.com", "bot@example.com", "pw"
	return env
}

func TestConfigInstances(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(validEnv())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.instances) != 1 || cfg.instances[0].Name != "default" || cfg.instances[0].URL != "https://metabase.example.com" {
		t.Errorf("single form = %+v, want one instance named default", cfg.instances)
	}

	env := multiEnv()
	env["METABASE_TIMEOUT"], env["METABASE_EU_TIMEOUT"] = "7s", "20s"
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("mb_fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(env, "METABASE_PROD_API_KEY")
	env["METABASE_PROD_API_KEY_FILE"] = key
	cfg, err = loadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.instanceNames(); !slices.Equal(got, []string{"prod", "eu"}) {
		t.Fatalf("instances = %v, want prod, eu in order", got)
	}
	prod, eu := cfg.instances[0], cfg.instances[1]
	if prod.APIKey != "mb_fromfile" || prod.Timeout != 7*time.Second || eu.Username != "bot@example.com" || eu.Timeout != 20*time.Second {
		t.Errorf("prod = %+v, eu = %+v", prod, eu)
	}
}

func TestConfigInstanceProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(env map[string]string)
		want string
	}{
		{"both forms", func(env map[string]string) { env["METABASE_URL"] = "https://x.example.com" },
			"METABASE_URL and METABASE_INSTANCES are both set"},
		{"a bad name", func(env map[string]string) { env["METABASE_INSTANCES"] = "prod,EU-1" }, `"EU-1" is not a valid instance name`},
		{"a name twice", func(env map[string]string) { env["METABASE_INSTANCES"] = "prod,eu,prod" }, "names prod twice"},
		{"no URL", func(env map[string]string) { delete(env, "METABASE_EU_URL") }, "METABASE_EU_URL is required"},
		{"no credentials", func(env map[string]string) { delete(env, "METABASE_EU_PASSWORD") },
			"METABASE_EU_API_KEY (or METABASE_EU_USERNAME and METABASE_EU_PASSWORD) is required"},
		{"a placeholder", func(env map[string]string) { env["METABASE_PROD_API_KEY"] = "mb_REPLACE_ME" }, "METABASE_PROD_API_KEY still holds the REPLACE_ME placeholder"},
		{"a bad timeout", func(env map[string]string) { env["METABASE_EU_TIMEOUT"] = "soon" }, `METABASE_EU_TIMEOUT: cannot parse "soon"`},
		{"an unqualified protected id", func(env map[string]string) { env["PROTECTED_USERS"] = "ceo@example.com,1" },
			`PROTECTED_USERS: "1": with several Metabase instances an id names its instance, like prod:1`},
		{"a protected id of an unknown instance", func(env map[string]string) { env["PROTECTED_USERS"] = "staging:1" },
			"names instance staging, which METABASE_INSTANCES does not list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := multiEnv()
			tt.edit(env)
			got := problemsOf(t, env)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems = %q, want one containing %q", got, tt.want)
			}
			for _, p := range got {
				if strings.Contains(p, "mb_prodkey") {
					t.Errorf("a problem shows a secret: %q", p)
				}
			}
		})
	}
	if got := problemsOf(t, multiEnv()); len(got) != 0 {
		t.Errorf("the valid two-instance configuration has problems: %q", got)
	}
	env := multiEnv()
	env["PROTECTED_USERS"] = "eu:1, ceo@example.com"
	if got := problemsOf(t, env); len(got) != 0 {
		t.Errorf("qualified protected ids refused: %q", got)
	}
}
