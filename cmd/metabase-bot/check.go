package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// checkTimeout bounds the whole preflight: every check is one or two calls.
const checkTimeout = 2 * time.Minute

// checklist prints one line per check: ✓ and what was found, or ✗, what is wrong and the fix.
type checklist struct {
	w              io.Writer
	passed, failed int
}

func (c *checklist) pass(what, found string) {
	c.passed++
	fmt.Fprintf(c.w, "✓ %s: %s\n", what, found)
}

func (c *checklist) fail(what, problem, fix string) {
	c.failed++
	fmt.Fprintf(c.w, "✗ %s: %s. Fix: %s\n", what, strings.TrimSuffix(problem, "."), fix)
}

// scopeRecorder keeps the x-oauth-scopes header of Slack's answers: auth.test reports the bot
// token's scopes there, not in its body (docs/slack.md#scopes).
type scopeRecorder struct {
	base http.RoundTripper

	mu     sync.Mutex
	scopes string
	seen   bool
}

func (r *scopeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/auth.test") {
		if v, ok := resp.Header[http.CanonicalHeaderKey("x-oauth-scopes")]; ok {
			r.mu.Lock()
			r.scopes, r.seen = strings.Join(v, ","), true
			r.mu.Unlock()
		}
	}
	return resp, err
}

func (r *scopeRecorder) granted() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range strings.Split(r.scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, r.seen
}

// runCheck is `metabase-bot check`: every start-up check once, and a few the bot only meets
// later (scopes, channel membership, group members), as a checklist. It exits 0 only when every
// item passes. It opens the store as the bot does, which creates and migrates it.
func runCheck(ctx context.Context, environ map[string]string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(environ)
	if err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			for _, p := range ce.problems {
				fmt.Fprintf(stdout, "✗ configuration: %s\n", p)
			}
		} else {
			fmt.Fprintf(stdout, "✗ configuration: %v\n", err)
		}
		fmt.Fprintln(stdout, "Fix the configuration first; nothing else was checked.")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c := &checklist{w: stdout}
	rec := &scopeRecorder{base: http.DefaultTransport}
	api := slack.New(cfg.SlackBotToken, slack.OptionAppLevelToken(cfg.SlackAppToken), slack.OptionAPIURL(cfg.SlackAPIURL),
		slack.OptionHTTPClient(&http.Client{Transport: rec, Timeout: 15 * time.Second}))

	botOK := checkBotToken(ctx, c, api)
	checkAppToken(ctx, c, api)
	if botOK {
		checkScopes(c, rec)
		checkApprovers(ctx, c, cfg, api)
		checkRequesters(ctx, c, cfg, api)
		checkResponders(ctx, c, cfg, api)
		checkChannels(ctx, c, cfg, api)
		checkDeactivations(ctx, c, cfg, api, rec)
	} else {
		c.fail("Slack scopes, groups and channels", "not checked: the bot token does not work", "fix SLACK_BOT_TOKEN first")
	}
	checkMetabase(ctx, c, cfg)
	checkStore(ctx, c, cfg)

	if c.failed > 0 {
		fmt.Fprintf(stdout, "%d of %d checks failed.\n", c.failed, c.failed+c.passed)
		return 1
	}
	fmt.Fprintf(stdout, "All %d checks passed.\n", c.passed)
	return 0
}

// slackFix is the fix for a Slack error, or fallback when the error says nothing specific.
func slackFix(err error, fallback string) string {
	if h := bot.SlackHint(err); h != "" {
		return h
	}
	return fallback
}

func checkBotToken(ctx context.Context, c *checklist, api *slack.Client) bool {
	const what = "Slack bot token (SLACK_BOT_TOKEN)"
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		c.fail(what, "auth.test failed: "+err.Error(), slackFix(err, "check SLACK_BOT_TOKEN and SLACK_API_URL"))
		return false
	}
	c.pass(what, fmt.Sprintf("workspace %s (%s), bot user %s", auth.Team, auth.TeamID, auth.UserID))
	return true
}

func checkAppToken(ctx context.Context, c *checklist, api *slack.Client) {
	const what = "Slack app token and Socket Mode (SLACK_APP_TOKEN)"
	if _, _, err := api.StartSocketModeContext(ctx); err != nil {
		fix := bot.SocketModeHint(err)
		if fix == "" {
			fix = "retry; if it persists, check SLACK_API_URL and Slack's status"
		}
		c.fail(what, "apps.connections.open failed: "+err.Error(), fix)
		return
	}
	c.pass(what, "apps.connections.open gave a Socket Mode URL")
}

func checkScopes(c *checklist, rec *scopeRecorder) {
	granted, seen := rec.granted()
	if !seen {
		c.fail("Slack scopes", "auth.test did not say which scopes the bot token has (no x-oauth-scopes header)",
			"compare the app's Bot Token Scopes under OAuth & Permissions with slack-app-manifest.yaml")
		return
	}
	for _, s := range bot.RequiredScopes {
		what := "Slack scope " + s.Name
		if slices.Contains(granted, s.Name) {
			c.pass(what, "granted ("+s.Why+")")
			continue
		}
		c.fail(what, "the bot token lacks it; it is needed for "+s.Why,
			"add it under OAuth & Permissions → Bot Token Scopes (or update the app from slack-app-manifest.yaml), reinstall the app and copy the new xoxb- token if it changed")
	}
}

func checkApprovers(ctx context.Context, c *checklist, cfg config, api *slack.Client) {
	approvers, failed := 0, c.failed
	if cfg.ApproverGroup != "" {
		what := "Approver group (APPROVER_GROUP " + cfg.ApproverGroup + ")"
		members, err := api.GetUserGroupMembersContext(ctx, cfg.ApproverGroup)
		switch {
		case err != nil:
			c.fail(what, "usergroups.users.list failed: "+err.Error(), slackFix(err, "check the group id (S…)"))
		case len(members) == 0:
			c.fail(what, "the group has no members, so nobody could approve", "add the approvers to the group in Slack (People → User groups)")
		default:
			approvers += len(members)
			c.pass(what, plural(len(members), "member"))
		}
	}
	if len(cfg.ApproverUsers) > 0 {
		const what = "Approver users (APPROVER_USERS)"
		var unknown []string
		for _, u := range cfg.ApproverUsers {
			if info, err := api.GetUserInfoContext(ctx, u); err != nil || info.Deleted {
				unknown = append(unknown, u)
			}
		}
		if len(unknown) > 0 {
			c.fail(what, "Slack has no active user "+strings.Join(unknown, ", "), "use member ids (profile → ⋮ → Copy member ID) of people still in the workspace")
		} else {
			approvers += len(cfg.ApproverUsers)
			c.pass(what, plural(len(cfg.ApproverUsers), "user"))
		}
	}
	if c.failed > failed {
		return // the quorum cannot be judged without the approvers; their line says why
	}
	const what = "Quorum (REQUIRED_APPROVALS)"
	need := cfg.RequiredApprovals + boolInt(!cfg.AllowSelfApproval)
	if approvers < need {
		problem := fmt.Sprintf("%s needed from %s", plural(cfg.RequiredApprovals, "approval"), plural(approvers, "approver"))
		if !cfg.AllowSelfApproval {
			problem += ", and an approver's own request needs someone else"
		}
		c.fail(what, problem, "add approvers, or lower REQUIRED_APPROVALS")
		return
	}
	c.pass(what, fmt.Sprintf("%s needed, %s", plural(cfg.RequiredApprovals, "approval"), plural(approvers, "approver")))
}

func checkRequesters(ctx context.Context, c *checklist, cfg config, api *slack.Client) {
	if cfg.RequesterGroup == "" {
		c.pass("Requester group (REQUESTER_GROUP)", "not set: anyone in an allowed channel may make requests")
		return
	}
	what := "Requester group (REQUESTER_GROUP " + cfg.RequesterGroup + ")"
	members, err := api.GetUserGroupMembersContext(ctx, cfg.RequesterGroup)
	switch {
	case err != nil:
		c.fail(what, "usergroups.users.list failed: "+err.Error(), slackFix(err, "check the group id (S…)"))
	case len(members) == 0:
		c.fail(what, "the group has no members, so nobody could make requests", "add the requesters to the group in Slack (People → User groups)")
	default:
		c.pass(what, plural(len(members), "member"))
	}
}

// checkResponders checks INCIDENT_GROUP as the approver group is checked: the responders of
// break-glass must be readable and not empty.
func checkResponders(ctx context.Context, c *checklist, cfg config, api *slack.Client) {
	if cfg.IncidentGroup == "" {
		c.pass("Incident group (INCIDENT_GROUP)", "not set: break-glass (disable now) is off")
		return
	}
	what := "Incident group (INCIDENT_GROUP " + cfg.IncidentGroup + ")"
	members, err := api.GetUserGroupMembersContext(ctx, cfg.IncidentGroup)
	switch {
	case err != nil:
		c.fail(what, "usergroups.users.list failed: "+err.Error(), slackFix(err, "check the group id (S…)"))
	case len(members) == 0:
		c.fail(what, "the group has no members, so nobody could use break-glass", "add the incident responders to the group in Slack (People → User groups), or unset INCIDENT_GROUP")
	default:
		c.pass(what, plural(len(members), "member"))
	}
}

func checkChannels(ctx context.Context, c *checklist, cfg config, api *slack.Client) {
	if cfg.AuditChannel == "" {
		c.pass("Audit channel (AUDIT_CHANNEL)", "not set: events go to the log only")
	} else {
		checkMembership(ctx, c, api, "Audit channel (AUDIT_CHANNEL "+cfg.AuditChannel+")", cfg.AuditChannel)
	}
	if len(cfg.AllowedChannels) == 0 {
		c.pass("Allowed channels (ALLOWED_CHANNELS)", "not set: requests may be made in any channel the bot is in")
	}
	for _, ch := range cfg.AllowedChannels {
		checkMembership(ctx, c, api, "Allowed channel (ALLOWED_CHANNELS "+ch+")", ch)
	}
}

// checkMembership checks that channel exists and the bot is a member, where it must post.
func checkMembership(ctx context.Context, c *checklist, api *slack.Client, what, channel string) {
	info, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
	switch {
	case err != nil:
		c.fail(what, "conversations.info failed: "+err.Error(), slackFix(err, "check the channel id (C…)"))
	case !info.IsMember:
		c.fail(what, "the bot is not a member of #"+info.Name, "type /invite @metabase-bot in #"+info.Name)
	default:
		c.pass(what, "#"+info.Name+", the bot is a member")
	}
}

// checkMetabase checks each configured instance: reachable, and the bot an admin there.
func checkMetabase(ctx context.Context, c *checklist, cfg config) {
	for _, in := range cfg.instances {
		checkMetabaseInstance(ctx, c, in, len(cfg.instances) > 1)
	}
}

func checkMetabaseInstance(ctx context.Context, c *checklist, in metabaseInstance, named bool) {
	reach, admin, keyVar := "Metabase (METABASE_URL)", "Metabase admin rights (METABASE_API_KEY)", "METABASE_API_KEY"
	if named {
		keyVar = instanceVar(in.Name, "API_KEY")
		reach, admin = "Metabase "+in.Name+" ("+in.urlVar+")", "Metabase "+in.Name+" admin rights ("+keyVar+")"
	}
	mb, err := newMetabaseFor(in)
	if err != nil {
		c.fail(reach, err.Error(), "set "+in.urlVar+" to the address people open Metabase at")
		return
	}
	if err := mb.Health(ctx); err != nil {
		c.fail(reach, "not reachable: "+waitCause(err), "start Metabase, or correct "+in.urlVar)
		c.fail(admin, "not checked: Metabase is not reachable", "make Metabase reachable first")
		return
	}
	version := metabaseVersion(ctx, in.URL)
	c.pass(reach, "reachable, version "+version)

	me, err := mb.CurrentUser(ctx)
	switch {
	case errors.Is(err, metabase.ErrUnauthorized):
		c.fail(admin, "Metabase rejected the credentials (401)", "create an API key under Admin settings → Authentication → API keys and put it in "+keyVar)
	case errors.Is(err, metabase.ErrForbidden):
		c.fail(admin, "Metabase refused the bot (403)", "put the API key in the Administrators group")
	case err != nil:
		c.fail(admin, "reading the bot's own account failed: "+err.Error(), "retry; check METABASE_TIMEOUT if Metabase is slow")
	case !me.IsSuperuser:
		c.fail(admin, "the account "+me.Email+" is not an admin", "put the API key in the Administrators group (user endpoints need it)")
	default:
		c.pass(admin, fmt.Sprintf("the bot acts as %s (id %d), an admin", me.Email, me.ID))
	}
}

// metabaseVersion reads the version from the x-metabase-version header that newer Metabase adds
// to API answers (src/metabase/server/middleware/misc.clj, add-version), else from the public
// /api/session/properties (version.tag), else "unknown".
func metabaseVersion(ctx context.Context, base string) string {
	base = strings.TrimSuffix(base, "/")
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		return http.DefaultClient.Do(req)
	}
	if resp, err := get("/api/health"); err == nil {
		resp.Body.Close()
		if v := resp.Header.Get("X-Metabase-Version"); v != "" {
			return v
		}
	}
	resp, err := get("/api/session/properties")
	if err != nil {
		return "unknown"
	}
	defer resp.Body.Close()
	var props struct {
		Version struct {
			Tag string `json:"tag"`
		} `json:"version"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&props) != nil || props.Version.Tag == "" {
		return "unknown"
	}
	return props.Version.Tag
}

func checkStore(ctx context.Context, c *checklist, cfg config) {
	const what = "Store (DATABASE_URL)"
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		if cause, ok := store.FaultCause(err); ok {
			c.fail(what, cause+": "+err.Error(), "free the disk, make the file writable, or bring the database back, then run check again")
			return
		}
		c.fail(what, err.Error(), "check DATABASE_URL: the database must exist and the user may create tables")
		return
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		c.fail(what, err.Error(), "check DATABASE_URL and that the database is up")
		return
	}
	// A ping passes on a read-only file or a full disk: only a write shows them.
	if err := st.Probe(ctx); err != nil {
		cause, _ := store.FaultCause(err)
		c.fail(what, "cannot record anything ("+cause+"): "+err.Error(), "free the disk, make the file writable, or bring the database back, then run check again")
		return
	}
	if err := st.IntegrityCheck(ctx); err != nil {
		c.fail(what, err.Error(), "stop the bot and restore the file from a backup (docs/faults.md)")
		return
	}
	found := st.Backend() + ", opened and migrated, takes writes"
	if st.Backend() == "sqlite" {
		found += ", integrity check ok"
	}
	c.pass(what, found)
	const bound = "Open requests (METABASE_INSTANCES)"
	if err := checkInstancesBound(ctx, cfg, st); err != nil {
		c.fail(bound, err.Error(), "configure those instances again, or settle the requests first")
	} else if len(cfg.instances) > 1 {
		c.pass(bound, "every open request names a configured instance")
	}
}

// plural is "1 member" or "3 members".
func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// checkDeactivations checks SLACK_DEACTIVATION_CHANNEL: the bot must be a member there to post the
// requests, and the bot token needs users:read, the scope of the user_change event
// (https://api.slack.com/events/user_change). The event subscription itself cannot be read with a
// bot token; slack-app-manifest.yaml declares it, and a test checks that it does.
func checkDeactivations(ctx context.Context, c *checklist, cfg config, api *slack.Client, rec *scopeRecorder) {
	if cfg.SlackDeactivationChannel == "" {
		c.pass("Slack deactivations (SLACK_DEACTIVATION_CHANNEL)", "not set: deactivated Slack accounts open no request")
		return
	}
	checkMembership(ctx, c, api, "Deactivation channel (SLACK_DEACTIVATION_CHANNEL "+cfg.SlackDeactivationChannel+")", cfg.SlackDeactivationChannel)
	const what = "Slack deactivations: scope users:read for the user_change event"
	granted, _ := rec.granted()
	if !slices.Contains(granted, bot.DeactivationScope) {
		c.fail(what, "the bot token lacks users:read, so Slack sends no user_change event",
			"add users:read under OAuth & Permissions → Bot Token Scopes (or update the app from slack-app-manifest.yaml) and reinstall the app")
		return
	}
	c.pass(what, "granted; the event subscription is in slack-app-manifest.yaml (Event Subscriptions → Subscribe to bot events)")
}
