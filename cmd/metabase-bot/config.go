package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/sirupsen/logrus"

	"github.com/metabase-bot/metabase-bot/bot/store"
)

// config is the environment the bot reads. The variable names are a public interface (README,
// manifests, deployments): add new ones, never rename one.
type config struct {
	SlackAppToken          string        `env:"SLACK_APP_TOKEN"`
	SlackBotToken          string        `env:"SLACK_BOT_TOKEN"`
	SlackAPIURL            string        `env:"SLACK_API_URL" envDefault:"https://slack.com/api/"`
	SlashCommand           string        `env:"SLASH_COMMAND" envDefault:"/metabase"`
	ApproverGroup          string        `env:"APPROVER_GROUP"`
	ApproverUsers          []string      `env:"APPROVER_USERS" envSeparator:","`
	RequesterGroup         string        `env:"REQUESTER_GROUP"`
	AllowedChannels        []string      `env:"ALLOWED_CHANNELS" envSeparator:","`
	AuditChannel           string        `env:"AUDIT_CHANNEL"`
	AllowSelfApproval      bool          `env:"ALLOW_SELF_APPROVAL" envDefault:"false"`
	RequiredApprovals      int           `env:"REQUIRED_APPROVALS" envDefault:"1"`
	AdminRequiredApprovals int           `env:"ADMIN_REQUIRED_APPROVALS" envDefault:"0"`
	RequireReason          bool          `env:"REQUIRE_REASON" envDefault:"true"`
	DenyReasonRequired     bool          `env:"DENY_REASON_REQUIRED" envDefault:"false"`
	RequestTTL             time.Duration `env:"REQUEST_TTL" envDefault:"24h"`
	ReminderBeforeExpiry   time.Duration `env:"REMINDER_BEFORE_EXPIRY" envDefault:"1h"`
	ProtectedUsers         []string      `env:"PROTECTED_USERS" envSeparator:","`
	MetabaseURL            string        `env:"METABASE_URL"`
	MetabaseAPIKey         string        `env:"METABASE_API_KEY"`
	MetabaseUsername       string        `env:"METABASE_USERNAME"`
	MetabasePassword       string        `env:"METABASE_PASSWORD"`
	MetabaseTimeout        time.Duration `env:"METABASE_TIMEOUT" envDefault:"10s"`
	DatabaseURL            string        `env:"DATABASE_URL" envDefault:"sqlite:metabase-bot.db"`
	HTTPAddr               string        `env:"HTTP_ADDR" envDefault:":8080"`
	LogLevel               string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat              string        `env:"LOG_FORMAT" envDefault:"json"`
	DryRun                 bool          `env:"DRY_RUN" envDefault:"false"`
	ReturnTimezone         string        `env:"RETURN_TIMEZONE" envDefault:"UTC"`
	MaxReturnAhead         time.Duration `env:"MAX_RETURN_AHEAD" envDefault:"8784h"`
	BulkConcurrency        int           `env:"BULK_CONCURRENCY" envDefault:"4"`
	ShutdownTimeout        time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`
	ExecutionLease         time.Duration `env:"EXECUTION_LEASE" envDefault:"2m"`

	returnLocation *time.Location
	logLevel       logrus.Level
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

// loadConfig reads environ (NAME → value), never the process environment, so tests need no
// os.Setenv.
func loadConfig(environ map[string]string) (config, error) {
	var problems []string
	environ = resolveSecretFiles(environ, &problems)
	var cfg config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			for _, e := range agg.Errors {
				problems = append(problems, envProblem(e))
			}
		} else {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return cfg, &configError{problems: problems}
	}
	return cfg, nil
}

// envProblem rewords caarlos0/env's errors so they never echo a value (it might be a secret).
func envProblem(e error) string {
	var pe env.ParseError
	if errors.As(e, &pe) {
		return fmt.Sprintf("%s: cannot parse as %s", envName(pe.Name), pe.Type)
	}
	return e.Error()
}

// envName maps a config field name back to its variable for messages.
func envName(field string) string {
	var b strings.Builder
	for i, r := range field {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(strings.ReplaceAll(b.String(), "A_P_I", "API"))
}

func resolveSecretFiles(environ map[string]string, problems *[]string) map[string]string {
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
			*problems = append(*problems, fmt.Sprintf("%s and %s_FILE are both set: use one", name, name))
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			*problems = append(*problems, fmt.Sprintf("%s_FILE: cannot read %s: %v", name, path, errors.Unwrap(err)))
			continue
		}
		out[name] = strings.TrimSpace(string(b))
	}
	return out
}

func (c *config) validate() []string {
	var p []string
	switch {
	case c.SlackAppToken == "":
		p = append(p, "SLACK_APP_TOKEN is required (the app-level token, xapp-…, with connections:write)")
	case !strings.HasPrefix(c.SlackAppToken, "xapp-"):
		p = append(p, "SLACK_APP_TOKEN must start with xapp- (an app-level token, not the bot token)")
	}
	switch {
	case c.SlackBotToken == "":
		p = append(p, "SLACK_BOT_TOKEN is required (the bot token, xoxb-…)")
	case !strings.HasPrefix(c.SlackBotToken, "xoxb-"):
		p = append(p, "SLACK_BOT_TOKEN must start with xoxb- (the bot user OAuth token)")
	}
	if u, err := url.Parse(c.SlackAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p = append(p, "SLACK_API_URL must be an http(s) URL")
	} else if !strings.HasSuffix(c.SlackAPIURL, "/") {
		c.SlackAPIURL += "/" // slack-go appends method names to it
	}
	if !strings.HasPrefix(c.SlashCommand, "/") || strings.ContainsAny(c.SlashCommand, " \t") {
		p = append(p, "SLASH_COMMAND must look like /metabase")
	}
	if c.ApproverGroup == "" && len(c.ApproverUsers) == 0 {
		p = append(p, "APPROVER_GROUP or APPROVER_USERS is required: nobody could approve requests")
	}
	if c.RequiredApprovals < 1 {
		p = append(p, "REQUIRED_APPROVALS must be at least 1")
	}
	if c.AdminRequiredApprovals < 0 {
		p = append(p, "ADMIN_REQUIRED_APPROVALS must not be negative")
	}
	if c.RequestTTL < 10*time.Second {
		p = append(p, "REQUEST_TTL must be at least 10s")
	}
	if c.ReminderBeforeExpiry < 0 {
		p = append(p, "REMINDER_BEFORE_EXPIRY must not be negative")
	}
	if c.MetabaseURL == "" {
		p = append(p, "METABASE_URL is required (e.g. https://metabase.example.com)")
	} else if u, err := url.Parse(c.MetabaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p = append(p, "METABASE_URL must be an http(s) URL like https://metabase.example.com")
	}
	switch {
	case c.MetabaseAPIKey != "" && (c.MetabaseUsername != "" || c.MetabasePassword != ""):
		p = append(p, "METABASE_API_KEY and METABASE_USERNAME/METABASE_PASSWORD are both set: use one")
	case c.MetabaseAPIKey == "" && (c.MetabaseUsername == "" || c.MetabasePassword == ""):
		p = append(p, "METABASE_API_KEY (or METABASE_USERNAME and METABASE_PASSWORD) is required")
	case c.MetabaseAPIKey != "" && !strings.HasPrefix(c.MetabaseAPIKey, "mb_"):
		p = append(p, "METABASE_API_KEY must start with mb_ (create it under Admin settings → Authentication → API keys)")
	}
	if c.MetabaseTimeout <= 0 {
		p = append(p, "METABASE_TIMEOUT must be positive")
	}
	if err := store.CheckURL(c.DatabaseURL); err != nil {
		p = append(p, err.Error())
	}
	lvl, err := logrus.ParseLevel(c.LogLevel)
	if err != nil {
		p = append(p, "LOG_LEVEL must be one of debug, info, warn, error")
	}
	c.logLevel = lvl
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p = append(p, "LOG_FORMAT must be json or text")
	}
	loc, err := time.LoadLocation(c.ReturnTimezone)
	if err != nil {
		p = append(p, "RETURN_TIMEZONE must be an IANA zone like Europe/Paris")
	}
	c.returnLocation = loc
	if c.MaxReturnAhead <= 0 {
		p = append(p, "MAX_RETURN_AHEAD must be positive")
	}
	if c.BulkConcurrency < 1 || c.BulkConcurrency > 64 {
		p = append(p, "BULK_CONCURRENCY must be between 1 and 64")
	}
	if c.ShutdownTimeout <= 0 {
		p = append(p, "SHUTDOWN_TIMEOUT must be positive")
	}
	if c.ExecutionLease < 5*time.Second {
		p = append(p, "EXECUTION_LEASE must be at least 5s (longer than one Metabase call)")
	}
	return p
}
