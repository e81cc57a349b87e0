package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
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

// namedClient is one configured instance's client and what start-up learnt about it.
type namedClient struct {
	name   string
	urlVar string
	client *metabase.Client
	// botID is the bot's own account there, zero until the instance answered.
	botID *atomic.Int64
}

// checkInstances checks every instance at once. Credentials an instance refuses stop the start,
// as with one instance: waiting would not fix them. An instance that does not answer is named in
// the logs and checked again in the background until it answers, so the others serve meanwhile.
func checkInstances(ctx context.Context, clients []namedClient, log logrus.FieldLogger) error {
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			down, err := checkInstance(ctx, c, log)
			if err != nil {
				errs[i] = err
				return
			}
			if down != nil {
				log.WithError(down).WithField("instance", c.name).
					Warn("Metabase instance " + c.name + " is not reachable; the others serve meanwhile, and it is checked again in the background")
				go retryInstance(ctx, c, log)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkInstance reads the bot's own account in one instance: down is why it did not answer, err a
// refusal no retry fixes.
func checkInstance(ctx context.Context, c namedClient, log logrus.FieldLogger) (down, err error) {
	me, err := c.client.CurrentUser(ctx)
	keyVar := instanceVar(c.name, "API_KEY")
	switch {
	case errors.Is(err, metabase.ErrUnauthorized):
		return nil, fmt.Errorf("metabase instance %s rejected the credentials (401): check %s (or %s/%s): %w", c.name, keyVar,
			instanceVar(c.name, "USERNAME"), instanceVar(c.name, "PASSWORD"), err)
	case errors.Is(err, metabase.ErrForbidden):
		return nil, fmt.Errorf("metabase instance %s refused the bot (403): its API key must belong to the Administrators group: %w", c.name, err)
	case err != nil:
		return err, nil
	case !me.IsSuperuser:
		return nil, fmt.Errorf("the account %s of Metabase instance %s is not an admin: user endpoints need the Administrators group (put the API key in Administrators)", me.Email, c.name)
	}
	c.botID.Store(int64(me.ID))
	log.WithFields(logrus.Fields{"instance": c.name, "metabase_user_id": me.ID}).Info("Metabase credentials carry admin rights")
	return nil, nil
}

// retryInstance checks an instance that did not answer at start again, with backoff, until it
// answers or ctx ends; then the bot's own account there is protected.
func retryInstance(ctx context.Context, c namedClient, log logrus.FieldLogger) {
	for attempt := 0; ; attempt++ {
		wait := min(time.Second<<min(attempt, 5), 30*time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		down, err := checkInstance(ctx, c, log)
		switch {
		case err != nil:
			log.WithError(err).WithField("instance", c.name).Error("Metabase instance " + c.name + " answers but refuses the bot; fix its configuration")
			return
		case down == nil:
			log.WithField("instance", c.name).Info("Metabase instance " + c.name + " answers now")
			return
		case ctx.Err() == nil:
			log.WithError(down).WithFields(logrus.Fields{"instance": c.name, "retry_in": wait.String()}).Warn("Metabase instance " + c.name + " is still not reachable")
		}
	}
}

// instancesReady is /readyz with several instances: ready while one answers, with each
// instance's state on its own line.
func instancesReady(ctx context.Context, clients []namedClient) (string, error) {
	states := make([]string, len(clients))
	up := make([]bool, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			if err := c.client.Health(ctx); err != nil {
				states[i] = c.name + ": unreachable (" + waitCause(err) + ")"
				return
			}
			up[i], states[i] = true, c.name+": ok"
		})
	}
	wg.Wait()
	detail := "\n" + strings.Join(states, "\n")
	if !slices.Contains(up, true) {
		return detail, errors.New("metabase: no instance answers")
	}
	return detail, nil
}

// checkInstancesBound refuses to start while open requests or scheduled returns name an instance
// that is not configured: running them against another instance would act on other people.
func checkInstancesBound(ctx context.Context, cfg config, st *store.Store) error {
	open, err := st.List(ctx, approval.Pending, approval.Approved, approval.Scheduled, approval.Executing)
	if err != nil {
		return fmt.Errorf("read open requests: %w", err)
	}
	if unbound := access.UnboundInstances(open, cfg.instanceNames()); len(unbound) > 0 {
		return fmt.Errorf("open requests or scheduled returns name Metabase instances that are not configured: %s; "+
			"configure them again (METABASE_INSTANCES), or settle those requests with the configuration they were made under",
			access.DescribeUnbound(unbound))
	}
	return nil
}
