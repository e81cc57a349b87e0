package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// config is the environment the bot reads, grouped by concern. The variable names are a public
// interface (README, manifests, deployments): add new ones, never rename one. This struct's env
// tags are the one home of every default (the core's constructor refuses an incomplete config
// rather than filling defaults of its own).
type config struct {
	SlackConfig
	PolicyConfig
	MetabaseConfig
	StoreConfig
	OpsConfig

	returnLocation *time.Location
	logLevel       logrus.Level
	// instances are the Metabase instances, in METABASE_INSTANCES order (one, "default", for the
	// single form).
	instances []metabaseInstance
}

// SlackConfig is how the bot reaches Slack and whom it listens to there.
type SlackConfig struct {
	SlackAppToken   string   `env:"SLACK_APP_TOKEN"`
	SlackBotToken   string   `env:"SLACK_BOT_TOKEN"`
	SlackAPIURL     string   `env:"SLACK_API_URL" envDefault:"https://slack.com/api/"`
	SlashCommand    string   `env:"SLASH_COMMAND" envDefault:"/metabase"`
	ApproverGroup   string   `env:"APPROVER_GROUP"`
	ApproverUsers   []string `env:"APPROVER_USERS" envSeparator:","`
	RequesterGroup  string   `env:"REQUESTER_GROUP"`
	AllowedChannels []string `env:"ALLOWED_CHANNELS" envSeparator:","`
	AuditChannel    string   `env:"AUDIT_CHANNEL"`
	// SlackDeactivationChannel, when set, is where a deactivated Slack account's disable request
	// is posted; unset, deactivations open nothing.
	SlackDeactivationChannel string `env:"SLACK_DEACTIVATION_CHANNEL"`
	// AuditCheckpointEvery is how often one replica posts the audit log's head to AuditChannel.
	AuditCheckpointEvery time.Duration `env:"AUDIT_CHECKPOINT_EVERY" envDefault:"24h"`
	// IncidentGroup, when set, names the responders who may disable without approval
	// (`disable now`, break-glass); unset turns break-glass off.
	IncidentGroup string `env:"INCIDENT_GROUP"`
}

// PolicyConfig is the rules of requesting, approving and executing.
type PolicyConfig struct {
	AllowSelfApproval      bool          `env:"ALLOW_SELF_APPROVAL" envDefault:"false"`
	RequiredApprovals      int           `env:"REQUIRED_APPROVALS" envDefault:"1"`
	AdminRequiredApprovals int           `env:"ADMIN_REQUIRED_APPROVALS" envDefault:"0"`
	RequireReason          bool          `env:"REQUIRE_REASON" envDefault:"true"`
	DenyReasonRequired     bool          `env:"DENY_REASON_REQUIRED" envDefault:"false"`
	RequestTTL             time.Duration `env:"REQUEST_TTL" envDefault:"24h"`
	ReminderBeforeExpiry   time.Duration `env:"REMINDER_BEFORE_EXPIRY" envDefault:"1h"`
	HomeRefreshEvery       time.Duration `env:"HOME_REFRESH_EVERY" envDefault:"10s"`
	ProtectedUsers         []string      `env:"PROTECTED_USERS" envSeparator:","`
	DryRun                 bool          `env:"DRY_RUN" envDefault:"false"`
	ReturnTimezone         string        `env:"RETURN_TIMEZONE" envDefault:"UTC"`
	MaxReturnAhead         time.Duration `env:"MAX_RETURN_AHEAD" envDefault:"8784h"`
	BulkConcurrency        int           `env:"BULK_CONCURRENCY" envDefault:"4"`
	ExecutionLease         time.Duration `env:"EXECUTION_LEASE" envDefault:"2m"`
	// StoreReplyTimeout bounds each store call a person's answer waits for: past it the person
	// hears that the database is unavailable and nothing was changed.
	StoreReplyTimeout time.Duration `env:"STORE_REPLY_TIMEOUT" envDefault:"1s"`
	// WatchInterval is how often one replica checks each instance for users the bot disabled
	// and someone else reactivated; zero turns the watch off.
	WatchInterval time.Duration `env:"WATCH_INTERVAL" envDefault:"5m"`
	// ReactivationPolicy is what the watch does about such a user: request or disable.
	ReactivationPolicy string `env:"REACTIVATION_POLICY" envDefault:"request"`
	// ReviewWindow is how long approvers have to review a break-glass action.
	ReviewWindow time.Duration `env:"REVIEW_WINDOW" envDefault:"24h"`
	// IncidentMaxUsers bounds the users one responder disables by break-glass in 60 minutes.
	IncidentMaxUsers int `env:"INCIDENT_MAX_USERS" envDefault:"5"`
}

// MetabaseConfig is how the bot reaches Metabase.
type MetabaseConfig struct {
	MetabaseURL      string        `env:"METABASE_URL"`
	MetabaseAPIKey   string        `env:"METABASE_API_KEY"`
	MetabaseUsername string        `env:"METABASE_USERNAME"`
	MetabasePassword string        `env:"METABASE_PASSWORD"`
	MetabaseTimeout  time.Duration `env:"METABASE_TIMEOUT" envDefault:"10s"`
	// MetabaseInstances names several Metabase instances instead of the single form above; each
	// NAME is configured by METABASE_<NAME>_URL and its credentials (instances.go).
	MetabaseInstances []string `env:"METABASE_INSTANCES" envSeparator:","`
}

// StoreConfig is where the bot keeps its state.
type StoreConfig struct {
	DatabaseURL string `env:"DATABASE_URL" envDefault:"sqlite:metabase-bot.db"`
}

// OpsConfig is how the process runs: its HTTP endpoints, logs and shutdown.
type OpsConfig struct {
	HTTPAddr        string        `env:"HTTP_ADDR" envDefault:":8080"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat       string        `env:"LOG_FORMAT" envDefault:"json"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`
}

// envFields returns the fields of t that carry an env tag, looking into the grouped structs.
func envFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for f := range t.Fields() {
		if _, ok := f.Tag.Lookup("env"); ok {
			out = append(out, f)
		} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
			out = append(out, envFields(f.Type)...)
		}
	}
	return out
}

// secretVars may also be given as NAME_FILE, a path whose content is the value (Docker and
// Kubernetes secrets).
var secretVars = []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "METABASE_API_KEY", "METABASE_PASSWORD", "DATABASE_URL"}

// configError lists every configuration problem, each naming its variable, so an operator fixes
// them all in one go.
type configError struct{ problems []string }

func (e *configError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.problems, "\n  - ")
}

// problems collects configuration problems, at most one per variable: the first one found is the
// most specific (a placeholder explains why the same value also fails its format check).
type problems struct {
	reported map[string]bool
	list     []string
}

// add records msg about the variable name unless name already has a problem. A problem with no
// name is always kept.
func (p *problems) add(name, msg string) {
	if name == "" {
		p.list = append(p.list, msg)
		return
	}
	if p.reported[name] {
		return
	}
	if p.reported == nil {
		p.reported = make(map[string]bool)
	}
	p.reported[name] = true
	p.list = append(p.list, msg)
}

// loadConfig reads environ (NAME → value), never the process environment, so tests need no
// os.Setenv.
func loadConfig(environ map[string]string) (config, error) {
	var p problems
	fromFile := make(map[string]string)
	for _, name := range secretVars {
		if environ[name+"_FILE"] != "" {
			fromFile[name] = name + "_FILE"
		}
	}
	environ = resolveSecretFiles(environ, &p)
	checkPlaceholders(environ, fromFile, &p)
	var cfg config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			for _, e := range agg.Errors {
				p.add(envProblem(e, environ))
			}
		} else {
			p.add("", err.Error())
		}
	}
	cfg.validate(&p)
	cfg.loadInstances(environ, &p)
	cfg.checkProtectedUsers(&p)
	if len(p.list) > 0 {
		return cfg, &configError{problems: p.list}
	}
	return cfg, nil
}

// envProblem rewords caarlos0/env's errors: the variable as operators spell it, the value (only
// non-string variables fail to parse, and no secret is one), and an example of the syntax.
func envProblem(e error, environ map[string]string) (name, msg string) {
	var pe env.ParseError
	if !errors.As(e, &pe) {
		return "", e.Error()
	}
	name = envVarOf(pe.Name)
	value := fmt.Sprintf("%q", environ[name])
	if slices.Contains(secretVars, name) {
		value = "its value"
	}
	example := "a " + pe.Type.String()
	switch pe.Type {
	case reflect.TypeFor[time.Duration]():
		example = "a Go duration like 24h, 90m or 30s"
	case reflect.TypeFor[bool]():
		example = "a boolean like true or false"
	case reflect.TypeFor[int]():
		example = "a whole number like 2"
	}
	return name, fmt.Sprintf("%s: cannot parse %s: use %s", name, value, example)
}

// envVarOf returns the variable in the env tag of config's field named field (caarlos0/env's
// errors name the Go field).
func envVarOf(field string) string {
	var find func(t reflect.Type) string
	find = func(t reflect.Type) string {
		for f := range t.Fields() {
			if tag, ok := f.Tag.Lookup("env"); ok && f.Name == field {
				return strings.Split(tag, ",")[0]
			} else if !ok && f.Type.Kind() == reflect.Struct && f.IsExported() {
				if name := find(f.Type); name != "" {
					return name
				}
			}
		}
		return ""
	}
	if name := find(reflect.TypeFor[config]()); name != "" {
		return name
	}
	return field
}

func resolveSecretFiles(environ map[string]string, p *problems) map[string]string {
	out := make(map[string]string, len(environ))
	for k, v := range environ {
		out[k] = v
	}
	for _, name := range secretVars {
		path, ok := environ[name+"_FILE"]
		if !ok || path == "" {
			continue
		}
		if environ[name] != "" {
			p.add(name, fmt.Sprintf("%s and %s_FILE are both set: use one", name, name))
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			p.add(name, fmt.Sprintf("%s_FILE: cannot read %s: %v", name, path, errors.Unwrap(err)))
			continue
		}
		out[name] = strings.TrimSpace(string(b))
	}
	return out
}

// envVars returns the variable names of config's env tags, in declaration order, so messages and
// checks use the names operators set rather than names derived from Go fields.
func envVars() []string {
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			if tag, ok := f.Tag.Lookup("env"); ok {
				names = append(names, strings.Split(tag, ",")[0])
			} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config]())
	return names
}

// placeholder marks the values .env.example and deploy/kubernetes.yaml ship with.
const placeholder = "REPLACE_ME"

// valueForms says what belongs in a variable, for the messages about placeholders.
var valueForms = map[string]string{
	"SLACK_APP_TOKEN":   "the app-level token (xapp-…, Basic Information → App-Level Tokens)",
	"SLACK_BOT_TOKEN":   "the Bot User OAuth Token (xoxb-…, OAuth & Permissions)",
	"METABASE_API_KEY":  "an API key in the Administrators group (mb_…)",
	"METABASE_PASSWORD": "the password of the Metabase admin account in METABASE_USERNAME",
	"DATABASE_URL":      "sqlite:PATH, or postgres://user:password@host:5432/db with the real password",
}

// checkPlaceholders reports variables still holding a REPLACE_ME value. It runs on the raw
// values, before parsing, so a placeholder in a number or a list gets this message rather than
// a parse error. It never echoes a value: some are secrets.
func checkPlaceholders(environ, fromFile map[string]string, p *problems) {
	for _, name := range envVars() {
		if !strings.Contains(environ[name], placeholder) {
			continue
		}
		where := name
		if f := fromFile[name]; f != "" {
			where = name + " (read from " + f + ")"
		}
		form := valueForms[name]
		if k, ok := slackIDVars[name]; ok {
			form = k.form
		}
		if form == "" {
			form = "the real value, or leave it unset for the default"
		}
		p.add(name, fmt.Sprintf("%s still holds the %s placeholder from the example configuration: set %s", where, placeholder, form))
	}
}

// slackIDKind describes the Slack object a variable names by id.
type slackIDKind struct {
	prefixes string // the first letters Slack gives this object's ids
	form     string // what to set, and where Slack shows it
}

var (
	groupID    = slackIDKind{"S", `a user group id (S…, from "Copy group ID" in the group's menu)`}
	userIDs    = slackIDKind{"UW", "Slack user ids (U… or W…, from the profile's ⋮ menu → Copy member ID), comma-separated"}
	channelID  = slackIDKind{"CG", "a channel id (C…, shown at the bottom of the channel's details)"}
	channelsID = slackIDKind{"CG", "channel ids (C…, shown at the bottom of each channel's details), comma-separated"}

	// slackIDVars are the variables that hold Slack ids. Names, @handles and #channels do not work
	// there: the Web API methods the bot calls take ids only.
	slackIDVars = map[string]slackIDKind{
		"APPROVER_GROUP": groupID, "REQUESTER_GROUP": groupID, "INCIDENT_GROUP": groupID, "APPROVER_USERS": userIDs,
		"ALLOWED_CHANNELS": channelsID, "AUDIT_CHANNEL": channelID, "SLACK_DEACTIVATION_CHANNEL": channelID,
	}

	// slackIDPattern is the shape of the ids Slack gives users (U, W), user groups (S) and
	// channels (C, G). Slack documents no length, so none is checked.
	slackIDPattern = regexp.MustCompile(`^[SUWCG][A-Z0-9]+$`)
)

// checkSlackIDs checks the values of the variable name, each one a Slack id of kind k; an empty
// value means the variable is unset.
func checkSlackIDs(name string, ids []string, k slackIDKind, p *problems) {
	for _, id := range ids {
		switch {
		case id == "":
		case strings.HasPrefix(id, "@"):
			p.add(name, fmt.Sprintf("%s holds an @handle: use %s", name, k.form))
		case strings.HasPrefix(id, "#"):
			p.add(name, fmt.Sprintf("%s holds a #channel name: use %s", name, k.form))
		case !slackIDPattern.MatchString(id) || !strings.ContainsRune(k.prefixes, rune(id[0])):
			p.add(name, fmt.Sprintf("%s must be %s", name, k.form))
		}
	}
}

// maxTargetsPerCommand is how many users one typed command may name (bot's maxTargets).
const maxTargetsPerCommand = 100

// trimList drops the spaces around list items ("U1, U2") and empty items (a trailing comma).
func trimList(items []string) []string {
	out := items[:0]
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// validate checks each value and the values that depend on each other.
func (c *config) validate(p *problems) {
	switch {
	case c.SlackAppToken == "":
		p.add("SLACK_APP_TOKEN", "SLACK_APP_TOKEN is required (the app-level token, xapp-…, with connections:write)")
	case !strings.HasPrefix(c.SlackAppToken, "xapp-"):
		p.add("SLACK_APP_TOKEN", "SLACK_APP_TOKEN must start with xapp- (an app-level token, not the bot token)")
	}
	switch {
	case c.SlackBotToken == "":
		p.add("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN is required (the bot token, xoxb-…)")
	case !strings.HasPrefix(c.SlackBotToken, "xoxb-"):
		p.add("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN must start with xoxb- (the bot user OAuth token)")
	}
	if u, err := url.Parse(c.SlackAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add("SLACK_API_URL", "SLACK_API_URL must be an http(s) URL")
	} else if !strings.HasSuffix(c.SlackAPIURL, "/") {
		c.SlackAPIURL += "/" // slack-go appends method names to it
	}
	if !strings.HasPrefix(c.SlashCommand, "/") || strings.ContainsAny(c.SlashCommand, " \t") {
		p.add("SLASH_COMMAND", "SLASH_COMMAND must look like /metabase")
	}
	c.ApproverUsers, c.AllowedChannels = trimList(c.ApproverUsers), trimList(c.AllowedChannels)
	for _, v := range []struct {
		name string
		ids  []string
	}{{"APPROVER_GROUP", []string{c.ApproverGroup}}, {"APPROVER_USERS", c.ApproverUsers}, {"REQUESTER_GROUP", []string{c.RequesterGroup}},
		{"ALLOWED_CHANNELS", c.AllowedChannels}, {"AUDIT_CHANNEL", []string{c.AuditChannel}},
		{"SLACK_DEACTIVATION_CHANNEL", []string{c.SlackDeactivationChannel}}, {"INCIDENT_GROUP", []string{c.IncidentGroup}}} {
		checkSlackIDs(v.name, v.ids, slackIDVars[v.name], p)
	}
	if c.SlackDeactivationChannel != "" && len(c.AllowedChannels) > 0 && !slices.Contains(c.AllowedChannels, c.SlackDeactivationChannel) {
		p.add("SLACK_DEACTIVATION_CHANNEL", "SLACK_DEACTIVATION_CHANNEL must be one of ALLOWED_CHANNELS: requests are made only there")
	}
	if c.ApproverGroup == "" && len(c.ApproverUsers) == 0 {
		p.add("APPROVER_GROUP", "APPROVER_GROUP or APPROVER_USERS is required: nobody could approve requests")
	}
	if c.RequiredApprovals < 1 {
		p.add("REQUIRED_APPROVALS", "REQUIRED_APPROVALS must be at least 1")
	}
	if c.AdminRequiredApprovals < 0 {
		p.add("ADMIN_REQUIRED_APPROVALS", "ADMIN_REQUIRED_APPROVALS must not be negative")
	}
	if c.RequestTTL < 10*time.Second {
		p.add("REQUEST_TTL", "REQUEST_TTL must be at least 10s")
	}
	if c.HomeRefreshEvery < time.Second {
		p.add("HOME_REFRESH_EVERY", "HOME_REFRESH_EVERY must be at least 1s: every refresh of a Home tab is a views.publish call")
	}
	if c.ReminderBeforeExpiry < 0 {
		p.add("REMINDER_BEFORE_EXPIRY", "REMINDER_BEFORE_EXPIRY must not be negative")
	}
	// METABASE_URL, its credentials and METABASE_TIMEOUT are checked with the instances
	// (loadInstances), as the one instance of the single form.
	if err := store.CheckURL(c.DatabaseURL); err != nil {
		p.add("DATABASE_URL", err.Error())
	}
	lvl, err := logrus.ParseLevel(c.LogLevel)
	if err != nil {
		p.add("LOG_LEVEL", "LOG_LEVEL must be one of debug, info, warn, error")
	}
	c.logLevel = lvl
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p.add("LOG_FORMAT", "LOG_FORMAT must be json or text")
	}
	loc, err := time.LoadLocation(c.ReturnTimezone)
	if err != nil {
		p.add("RETURN_TIMEZONE", "RETURN_TIMEZONE must be an IANA zone like Europe/Paris")
	}
	c.returnLocation = loc
	if c.MaxReturnAhead <= 0 {
		p.add("MAX_RETURN_AHEAD", "MAX_RETURN_AHEAD must be positive")
	}
	if c.BulkConcurrency < 1 || c.BulkConcurrency > 64 {
		p.add("BULK_CONCURRENCY", "BULK_CONCURRENCY must be between 1 and 64")
	}
	if c.ShutdownTimeout <= 0 {
		p.add("SHUTDOWN_TIMEOUT", "SHUTDOWN_TIMEOUT must be positive")
	}
	if c.AuditCheckpointEvery < time.Second {
		p.add("AUDIT_CHECKPOINT_EVERY", "AUDIT_CHECKPOINT_EVERY must be at least 1s")
	}
	if problem := checkWatchInterval(c.WatchInterval, minWatchInterval); problem != "" {
		p.add("WATCH_INTERVAL", problem)
	}
	if c.ReactivationPolicy != string(access.ReactivationRequest) && c.ReactivationPolicy != string(access.ReactivationDisable) {
		p.add("REACTIVATION_POLICY", "REACTIVATION_POLICY must be request or disable")
	}
	if c.ReviewWindow < 10*time.Second {
		p.add("REVIEW_WINDOW", "REVIEW_WINDOW must be at least 10s")
	}
	if c.IncidentMaxUsers < 1 || c.IncidentMaxUsers > maxTargetsPerCommand {
		p.add("INCIDENT_MAX_USERS", fmt.Sprintf("INCIDENT_MAX_USERS must be between 1 and %d", maxTargetsPerCommand))
	}
	if c.StoreReplyTimeout < 100*time.Millisecond || c.StoreReplyTimeout > 2500*time.Millisecond {
		p.add("STORE_REPLY_TIMEOUT", "STORE_REPLY_TIMEOUT must be between 100ms and 2.5s (the answer must reach Slack within its 3 s)")
	}
	if c.ExecutionLease < 5*time.Second {
		p.add("EXECUTION_LEASE", "EXECUTION_LEASE must be at least 5s (longer than one Metabase call)")
	}
}

// watchIntervalFloor is the shortest WATCH_INTERVAL people may set: each check lists every active
// user of every instance. The end-to-end tests lower minWatchInterval to watch in milliseconds.
const watchIntervalFloor = time.Second

// minWatchInterval is the floor in force (watchIntervalFloor outside tests).
var minWatchInterval = watchIntervalFloor

// checkWatchInterval returns what is wrong with WATCH_INTERVAL d, or "".
func checkWatchInterval(d, floor time.Duration) string {
	if d != 0 && d < floor {
		return "WATCH_INTERVAL must be 0 (off) or at least " + floor.String()
	}
	return ""
}
