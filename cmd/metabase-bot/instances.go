package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// metabaseInstance is one Metabase the bot manages, as configured: the single form
// (METABASE_URL and its credentials, named "default") or one name of METABASE_INSTANCES with its
// METABASE_<NAME>_* variables.
type metabaseInstance struct {
	Name     string
	URL      string
	APIKey   string
	Username string
	Password string
	Timeout  time.Duration
	// urlVar names the variable URL came from, for messages.
	urlVar string
}

// instanceNamePattern is what METABASE_INSTANCES accepts: short, lower-case, usable in commands
// (eu:42), metric labels and variable names.
var instanceNamePattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// instanceVar is the variable of setting suffix for instance name: METABASE_EU_URL.
func instanceVar(name, suffix string) string {
	return "METABASE_" + strings.ToUpper(name) + "_" + suffix
}

// singleFormVars are the single-instance variables, which METABASE_INSTANCES replaces.
var singleFormVars = []string{"METABASE_URL", "METABASE_API_KEY", "METABASE_USERNAME", "METABASE_PASSWORD"}

// loadInstances builds the instances from the parsed config and, for the several-instance form,
// from environ. Secrets of each instance may come from files (_API_KEY_FILE, _PASSWORD_FILE), as
// the single form's do, and are checked for the example's placeholder.
func (c *config) loadInstances(environ map[string]string, p *problems) {
	c.MetabaseInstances = trimList(c.MetabaseInstances)
	if len(c.MetabaseInstances) == 0 {
		c.instances = []metabaseInstance{{Name: approval.DefaultInstance, URL: c.MetabaseURL, APIKey: c.MetabaseAPIKey,
			Username: c.MetabaseUsername, Password: c.MetabasePassword, Timeout: c.MetabaseTimeout, urlVar: "METABASE_URL"}}
		c.validateInstance(c.instances[0], "METABASE_URL", "METABASE_API_KEY", "METABASE_USERNAME", "METABASE_PASSWORD", "METABASE_TIMEOUT", p)
		return
	}
	for _, v := range singleFormVars {
		if environ[v] != "" || environ[v+"_FILE"] != "" {
			p.add(v, fmt.Sprintf("%s and METABASE_INSTANCES are both set: use METABASE_INSTANCES with METABASE_<NAME>_URL and its credentials for each instance, or the single form alone", v))
		}
	}
	for _, name := range c.MetabaseInstances {
		if !instanceNamePattern.MatchString(name) {
			p.add("METABASE_INSTANCES", fmt.Sprintf("METABASE_INSTANCES: %q is not a valid instance name: use a lower-case letter, then up to 15 lower-case letters or digits (like prod or eu2)", name))
			continue
		}
		if slices.ContainsFunc(c.instances, func(in metabaseInstance) bool { return in.Name == name }) {
			p.add("METABASE_INSTANCES", fmt.Sprintf("METABASE_INSTANCES names %s twice", name))
			continue
		}
		in := metabaseInstance{Name: name, Timeout: c.MetabaseTimeout, urlVar: instanceVar(name, "URL")}
		in.URL = environ[instanceVar(name, "URL")]
		in.Username = environ[instanceVar(name, "USERNAME")]
		in.APIKey = secretOf(environ, instanceVar(name, "API_KEY"), p)
		in.Password = secretOf(environ, instanceVar(name, "PASSWORD"), p)
		if raw := environ[instanceVar(name, "TIMEOUT")]; raw != "" {
			d, err := time.ParseDuration(raw)
			if err != nil {
				p.add(instanceVar(name, "TIMEOUT"), fmt.Sprintf("%s: cannot parse %q: use a Go duration like 24h, 90m or 30s", instanceVar(name, "TIMEOUT"), raw))
			}
			in.Timeout = d
		}
		c.instances = append(c.instances, in)
		c.validateInstance(in, instanceVar(name, "URL"), instanceVar(name, "API_KEY"), instanceVar(name, "USERNAME"),
			instanceVar(name, "PASSWORD"), instanceVar(name, "TIMEOUT"), p)
	}
	if len(c.instances) == 0 && len(p.list) == 0 {
		p.add("METABASE_INSTANCES", "METABASE_INSTANCES names no instance")
	}
}

// secretOf reads the secret variable name, or the file NAME_FILE names, reporting both set, an
// unreadable file and the example's placeholder, never the value.
func secretOf(environ map[string]string, name string, p *problems) string {
	v, path := environ[name], environ[name+"_FILE"]
	where := name
	if path != "" {
		if v != "" {
			p.add(name, fmt.Sprintf("%s and %s_FILE are both set: use one", name, name))
			return ""
		}
		b, err := os.ReadFile(path)
		if err != nil {
			p.add(name, fmt.Sprintf("%s_FILE: cannot read %s: %v", name, path, errors.Unwrap(err)))
			return ""
		}
		v, where = strings.TrimSpace(string(b)), name+" (read from "+name+"_FILE)"
	}
	if strings.Contains(v, placeholder) {
		p.add(name, fmt.Sprintf("%s still holds the %s placeholder from the example configuration: set the real value", where, placeholder))
		return ""
	}
	return v
}

// validateInstance checks one instance's URL, credentials and timeout, naming its variables.
func (c *config) validateInstance(in metabaseInstance, urlVar, keyVar, userVar, passVar, timeoutVar string, p *problems) {
	if in.URL == "" {
		p.add(urlVar, urlVar+" is required (e.g. https://metabase.example.com)")
	} else if strings.Contains(in.URL, placeholder) {
		p.add(urlVar, fmt.Sprintf("%s still holds the %s placeholder from the example configuration: set the real value", urlVar, placeholder))
	} else if u, err := url.Parse(in.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(urlVar, urlVar+" must be an http(s) URL like https://metabase.example.com")
	}
	switch {
	case in.APIKey != "" && (in.Username != "" || in.Password != ""):
		p.add(keyVar, fmt.Sprintf("%s and %s/%s are both set: use one", keyVar, userVar, passVar))
	case in.APIKey == "" && (in.Username == "" || in.Password == ""):
		p.add(keyVar, fmt.Sprintf("%s (or %s and %s) is required", keyVar, userVar, passVar))
	case in.APIKey != "" && !strings.HasPrefix(in.APIKey, "mb_"):
		p.add(keyVar, keyVar+" must start with mb_ (create it under Admin settings → Authentication → API keys)")
	}
	if in.Timeout <= 0 {
		p.add(timeoutVar, timeoutVar+" must be positive")
	}
}

// checkProtectedUsers requires ids in PROTECTED_USERS to name their instance (prod:1) when there
// are several: user 1 of one instance is somebody else in another.
func (c *config) checkProtectedUsers(p *problems) {
	c.ProtectedUsers = trimList(c.ProtectedUsers)
	if len(c.instances) < 2 {
		return
	}
	for _, u := range c.ProtectedUsers {
		if strings.Contains(u, "@") {
			continue
		}
		name, id, ok := strings.Cut(u, ":")
		if !ok || !isDigits(id) {
			p.add("PROTECTED_USERS", fmt.Sprintf("PROTECTED_USERS: %q: with several Metabase instances an id names its instance, like %s:%s", u, c.instances[0].Name, u))
			return
		}
		if !slices.ContainsFunc(c.instances, func(in metabaseInstance) bool { return in.Name == name }) {
			p.add("PROTECTED_USERS", fmt.Sprintf("PROTECTED_USERS: %q names instance %s, which METABASE_INSTANCES does not list", u, name))
			return
		}
	}
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// instanceNames lists the configured instances' names.
func (c config) instanceNames() []string {
	out := make([]string, len(c.instances))
	for i, in := range c.instances {
		out[i] = in.Name
	}
	return out
}
