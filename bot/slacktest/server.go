// Package slacktest is an in-process fake Slack for end-to-end tests.
//
// The real slack-go client talks to it over real HTTP and a real WebSocket:
//
//	fs := slacktest.New(t)
//	api := slack.New("xoxb-test", slack.OptionAppLevelToken("xapp-test"), slack.OptionAPIURL(fs.APIURL()))
//	client := socketmode.New(api)
//
// It serves apps.connections.open and the Socket Mode WebSocket at /link/ (hello first, WebSocket pings more often
// than the client's ping watchdog, acks matched to envelopes), the Web API methods a chat-ops bot uses
// (form-encoded as slack-go sends them; JSON with a Bearer token is accepted too), response_url endpoints, and
// Block Kit limit checks. Tests inject slash commands, button clicks and view submissions, observe messages,
// ephemerals, views and acks, and inject faults (HTTP 429, ok:false errors, disconnects, raw frames).
//
// It is as strict as Slack by default, for every test, so that a test cannot pass where production would fail:
//
//   - Scopes: the bot token has exactly the bot scopes of the repository's slack-app-manifest.yaml (read from the
//     file; Options.BotScopes overrides), each method checks the scope its page names and answers missing_scope with
//     needed and provided, and every answer carries the x-oauth-scopes header (scopes.go; docs/slack.md#scopes).
//   - Membership: the bot posts only in channels a test added it to (not_in_channel, or channel_not_found for a
//     private channel), and an ephemeral reaches only a member (user_not_in_channel); response_url works anywhere
//     (docs/slack.md#channel-membership).
//   - Rate limits: each method's tier, and chat.postMessage per channel and per workspace, as token buckets that
//     answer HTTP 429 with Retry-After or rate_limited (rate.go; docs/slack.md#rate-limits). Options.NoRateLimits
//     and Options.LiftRateLimits lift them for tests that measure the bot.
//   - Escaping: a slash command's text is what the person typed, sent as Slack sends it with should_escape
//     (escape.go; docs/slack.md#web-api-calls).
//   - Events: ChangeUser sends user_change over Socket Mode only when the manifest subscribes to it
//     and the token has its scope (events.go; docs/slack.md#deactivations).
//   - Notifications: each posted message records whom it notified, counting mentions in its text and section
//     blocks only (mentions.go; docs/slack.md#mentions).
//   - Home tab: views.publish answers not_enabled while the manifest (or SetHomeTab) has the Home tab off, and
//     app_home_opened is delivered only when the manifest subscribes to it (home.go; docs/slack.md#home-tab).
//
// The facts it models are written down, with their sources, in docs/slack.md; where this fake deviates from or
// simplifies Slack, the relevant doc comment says so. Production code never imports this package.
package slacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults used by New for zero Options fields.
const (
	defaultBotToken     = "xoxb-test"
	defaultAppToken     = "xapp-test"
	defaultTeamID       = "T1"
	defaultBotUserID    = "UBOT"
	defaultPingInterval = 2 * time.Second
	// Slack: a trigger_id expires 3 s after it is issued and can be exchanged once.
	defaultTriggerTTL = 3 * time.Second

	appID     = "A1"
	botID     = "B1"
	botName   = "metabase-bot"
	teamName  = "Fake Team"
	teamDom   = "fake"
	verifyTok = "fake-verification-token"
)

// errClosed is returned by waits and injectors once the server has been shut down.
var errClosed = errors.New("slacktest: server closed")

// Options configures a Server. Zero fields take the defaults documented on each field.
type Options struct {
	BotToken     string        // xoxb token accepted by Web API methods; default "xoxb-test"
	AppToken     string        // xapp token accepted by apps.connections.open; default "xapp-test"
	TeamID       string        // default "T1"
	BotUserID    string        // the bot's user ID (auth.test, message authors); default "UBOT"
	PingInterval time.Duration // WebSocket PING period; default 2s, keep it below the client's (30s default)
	// TriggerTTL is how long a trigger_id stays valid for views.open; default 3s as in Slack.
	TriggerTTL time.Duration
	// Now is the clock for ts values, Message.Posted, trigger and response_url expiry; default time.Now.
	// Ack latencies and rate limits always use the real clock.
	Now func() time.Time
	// BotScopes are the bot token's scopes. Nil reads them from the repository's
	// slack-app-manifest.yaml (see FindManifest), so a scope the manifest lacks fails the tests
	// that need it; a test that models a misconfigured app sets fewer.
	BotScopes []string
	// BotEvents are the bot events the app subscribes to. Nil reads them from the repository's
	// slack-app-manifest.yaml (settings.event_subscriptions.bot_events), so an event the manifest
	// does not subscribe to is never delivered (events.go).
	BotEvents []string
	// AppScopes are the app-level token's scopes; nil means connections:write, as the README's
	// set-up creates it.
	AppScopes []string
	// Manifest, when set, is the app's Home tab switch and event subscriptions; nil reads them
	// from the repository's slack-app-manifest.yaml, as BotScopes.
	Manifest *Manifest
	// NoRateLimits lifts Slack's documented rate limits (rate.go) for every method, for load tests
	// that measure the bot rather than Slack. RateLimit still forces 429s.
	NoRateLimits bool
	// LiftRateLimits lifts the documented rate limits of the named methods only.
	LiftRateLimits []string
}

// Server is a fake Slack workspace with one app installed. All methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server
	wg   sync.WaitGroup // socket goroutines

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	closed  bool
	seq     int
	lastTS  int64 // microseconds of the last ts handed out

	users    map[string]User
	updated  map[string]int64 // user id -> the user object's "updated" (events.go)
	groups   map[string][]string
	channels map[string]*channel

	messages   []*Message
	ephemerals []*Message
	views      []*viewState
	homes      map[string]*HomeView // user -> Home view (home.go)
	homeTab    bool                 // the app's Home tab is on
	botEvents  []string             // the events the app subscribes to
	triggers   map[string]*trigger
	responses  map[string]*responseURL

	calls   map[string]int
	limits  map[string]rateLimit
	buckets map[string]*bucket // rate.go
	// rateClock, when set (by this package's tests), is the rate limiter's clock: a limit is tested
	// against a clock that stands still, not against how fast the machine happens to be.
	rateClock func() time.Time
	refused   map[string]int // calls the documented rate limits refused
	lifted    map[string]bool
	failures  map[string]failure
	holds     map[string]*holdRule   // method -> active Hold rule
	replyHold map[string]*holdRule   // method -> active HoldReply rule
	parked    map[string][]*holdRule // method -> rules that parked calls (see hold.go)

	tickets     map[string]bool // ticket -> used
	conns       []*wsConn       // sockets that receive envelopes
	allConns    map[*wsConn]bool
	rr          int
	connections int
	pongs       int
	envelopes   map[string]*envelope
	acks        []Ack
	badFrames   []string
}

// New starts a fake Slack on an httptest server. tb.Cleanup closes every socket and the server.
func New(tb testing.TB, opts ...Options) *Server {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.BotToken == "" {
		o.BotToken = defaultBotToken
	}
	if o.AppToken == "" {
		o.AppToken = defaultAppToken
	}
	if o.TeamID == "" {
		o.TeamID = defaultTeamID
	}
	if o.BotUserID == "" {
		o.BotUserID = defaultBotUserID
	}
	if o.PingInterval <= 0 {
		o.PingInterval = defaultPingInterval
	}
	if o.TriggerTTL <= 0 {
		o.TriggerTTL = defaultTriggerTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BotScopes == nil {
		path, err := FindManifest()
		if err == nil {
			o.BotScopes, err = ReadManifestScopes(path)
		}
		if err != nil {
			tb.Fatalf("slacktest: the bot token's scopes: %v", err)
		}
	}
	if o.Manifest == nil {
		path, err := FindManifest()
		var m Manifest
		if err == nil {
			m, err = ReadManifest(path)
		}
		if err != nil {
			tb.Fatalf("slacktest: the app manifest: %v", err)
		}
		o.Manifest = &m
	}
	if o.BotEvents == nil {
		o.BotEvents = slices.Clone(o.Manifest.BotEvents)
	}
	if o.AppScopes == nil {
		o.AppScopes = []string{appTokenScope}
	}
	s := &Server{
		opts:      o,
		changed:   make(chan struct{}),
		users:     map[string]User{},
		updated:   map[string]int64{},
		groups:    map[string][]string{},
		channels:  map[string]*channel{},
		triggers:  map[string]*trigger{},
		responses: map[string]*responseURL{},
		calls:     map[string]int{},
		limits:    map[string]rateLimit{},
		buckets:   map[string]*bucket{},
		refused:   map[string]int{},
		lifted:    map[string]bool{},
		failures:  map[string]failure{},
		tickets:   map[string]bool{},
		allConns:  map[*wsConn]bool{},
		envelopes: map[string]*envelope{},
		homes:     map[string]*HomeView{},
		homeTab:   o.Manifest.HomeTab,
		botEvents: slices.Clone(o.BotEvents),
	}
	for _, m := range o.LiftRateLimits {
		s.lifted[m] = true
	}
	s.users[o.BotUserID] = User{ID: o.BotUserID, Name: botName, RealName: botName, IsBot: true}
	mux := http.NewServeMux()
	mux.HandleFunc("/link/", s.serveSocket)
	mux.HandleFunc(responsePath, s.serveResponseURL)
	mux.HandleFunc("/", s.serveAPI)
	s.srv = httptest.NewServer(mux)
	tb.Cleanup(s.close)
	return s
}

// APIURL is the base URL for slack.OptionAPIURL, with the trailing "/" slack-go requires.
func (s *Server) APIURL() string { return s.srv.URL + "/" }

// URL is the server's base URL without a trailing slash.
func (s *Server) URL() string { return s.srv.URL }

// TeamID is the workspace ID the fake reports.
func (s *Server) TeamID() string { return s.opts.TeamID }

// BotUserID is the bot user's ID the fake reports.
func (s *Server) BotUserID() string { return s.opts.BotUserID }

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*wsConn, 0, len(s.allConns))
	for c := range s.allConns {
		conns = append(conns, c)
	}
	s.broadcastLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.srv.Close()
	s.wg.Wait()
}

// broadcastLocked wakes every waiter. s.mu must be held.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor calls check under s.mu until it reports done, waking on state changes, until ctx ends.
func (s *Server) waitFor(ctx context.Context, check func() bool) error {
	for {
		s.mu.Lock()
		if check() {
			s.mu.Unlock()
			return nil
		}
		if s.closed {
			s.mu.Unlock()
			return errClosed
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// nextIDLocked returns prefix followed by a per-server sequence number.
func (s *Server) nextIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%d", prefix, s.seq)
}

// newTSLocked returns a unique, strictly increasing Slack timestamp "<unix>.<6 digits>".
func (s *Server) newTSLocked() string {
	us := s.opts.Now().UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// uuid returns a random RFC 4122 version 4 UUID, the shape of Slack's envelope IDs.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return strings.Join([]string{h[:8], h[8:12], h[12:16], h[16:20], h[20:]}, "-")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
