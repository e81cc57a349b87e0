package metabasetest

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Well-known ids and values of the fake.
const (
	// AdminAPIKey is the API key of the seeded admin user (47 characters,
	// "mb_" plus 44 base64 characters, like a real key).
	AdminAPIKey = "mb_bWV0YWJhc2UtYm90IGZha2UgYWRtaW4gQVBJIGtleSE="
	// AdminUserID, AdminEmail: the seeded admin, the bot's own account.
	AdminUserID = 1
	AdminEmail  = "bot@example.com"
	// InternalUserID is Metabase's internal user; it is never listed and
	// cannot be modified.
	InternalUserID = 13371338
	// AllUsersGroupID and AdministratorsGroupID are Metabase's magic groups.
	AllUsersGroupID       = 1
	AdministratorsGroupID = 2
	// AllTenantUsersGroupID is the "All tenant users" group, which tenant
	// users belong to instead of All Users. Metabase creates it in a
	// migration, so its id differs between instances; the fake keeps it
	// out of the way of the small ids tests give their own groups.
	AllTenantUsersGroupID = 1000
	// Version is the tag of the default era (EraNotificationAdmin), sent in
	// the x-metabase-version header; WithEra changes it.
	Version = "v0.61.0"
)

// Request is one request the fake received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	// Auth is the credential presented: "session" (X-Metabase-Session),
	// "api-key" (X-API-Key) or "none".
	Auth string
	// Status is the response status, 0 while the request is in flight or
	// when the client went away first (except under HoldReply or a
	// latency profile, where the request was handled before the wait:
	// then it is the status of the reply never sent).
	Status int
}

// Option configures a Server in New.
type Option func(*config)

type config struct {
	admin     User
	keys      map[string]int
	passwords []credential
	advanced  bool
	latency   *LatencyProfile
	era       Era    // see WithEra
	locale    string // see WithLocale
	tag       string // see WithVersionTag
	oldAdmin  bool   // see WithLastAdminBefore68198
}

type credential struct{ email, password string }

// WithAdminUser replaces the seeded admin user (default: id 1,
// bot@example.com, superuser), who owns AdminAPIKey.
func WithAdminUser(u User) Option {
	return func(c *config) { c.admin = u }
}

// WithAPIKey registers an API key acting as the user with userID. Keys are
// valid only if they look like Metabase keys (mb_ prefix, 12–254 chars).
func WithAPIKey(key string, userID int) Option {
	return func(c *config) { c.keys[key] = userID }
}

// WithPasswordUser sets the password of the user with this email, creating
// an active non-admin user when there is none, for session auth.
func WithPasswordUser(email, password string) Option {
	return func(c *config) { c.passwords = append(c.passwords, credential{email, password}) }
}

// WithAdvancedPermissions makes the fake a Pro or Enterprise Metabase with
// the advanced-permissions feature: user_group_memberships carry
// is_group_manager, and a PUT whose entries lack it fails as Metabase's
// enterprise set-user-group-memberships! does
// (docs/metabase.md#advanced-permissions).
func WithAdvancedPermissions() Option {
	return func(c *config) { c.advanced = true }
}

// WithLatencyProfile makes every reply take as long as p says, for tests
// that measure (see RealisticLatency). The default is no latency, so the
// suite stays fast.
func WithLatencyProfile(p LatencyProfile) Option {
	return func(c *config) { c.latency = &p }
}

// Server is a fake Metabase. It is safe for concurrent use.
type Server struct {
	tb  testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	users    map[int]*user
	sorted   []*user // personal users in list order
	byEmail  map[string]*user
	nextID   int
	keys     map[string]int
	sessions map[string]int
	failures map[string][]time.Time // lower(username) -> failed logins
	groups   map[int]bool           // permissions groups that exist
	tenants  map[int]bool           // tenant id -> active
	advanced bool                   // WithAdvancedPermissions
	profile  *LatencyProfile        // WithLatencyProfile

	requests []Request
	spans    []span        // parallel to requests, for MaxInFlight
	events   int64         // counts arrivals and completions, ordering spans
	arrived  chan struct{} // closed and replaced on each arrival
	latency  []latencyRule
	fails    []*failRule
	holds    []*holdRule

	notif  notifState  // subscriptions, alerts and collections (notifications.go)
	access accessState // API keys, public links and settings (access.go)

	legacyDelete bool
	tr           map[string]string // WithLocale's catalogue; nil is English
	versionTag   string            // WithVersionTag; "" is the era's
	oldLastAdmin bool              // WithLastAdminBefore68198
	healthStatus int
	healthBody   string
	now          func() time.Time
}

// New starts a fake Metabase, seeded with the admin user owning
// AdminAPIKey and the internal user. It is closed by tb.Cleanup.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	cfg := &config{
		admin: User{ID: AdminUserID, Email: AdminEmail, FirstName: "Metabase", LastName: "Bot", Active: true, Superuser: true},
		keys:  map[string]int{},
	}
	for _, o := range opts {
		o(cfg)
	}
	s := &Server{
		tb:           tb,
		users:        map[int]*user{},
		byEmail:      map[string]*user{},
		nextID:       1,
		keys:         map[string]int{},
		sessions:     map[string]int{},
		failures:     map[string][]time.Time{},
		groups:       map[int]bool{AllUsersGroupID: true, AdministratorsGroupID: true, AllTenantUsersGroupID: true},
		tenants:      map[int]bool{},
		advanced:     cfg.advanced,
		profile:      cfg.latency,
		arrived:      make(chan struct{}),
		healthStatus: http.StatusOK,
		healthBody:   `{"status":"ok"}`,
		now:          time.Now,
	}
	s.notif.init(cfg.era)
	s.access.init()
	s.tr = s.catalogue(cfg.locale)
	s.versionTag, s.oldLastAdmin = cfg.tag, cfg.oldAdmin
	admin := s.AddUser(cfg.admin)
	s.keys[AdminAPIKey] = admin.ID
	s.mu.Lock()
	s.insertLocked(&user{User: User{
		ID: InternalUserID, Email: "internal@metabase.com", FirstName: "Metabase", LastName: "Internal",
		Active: true, Superuser: true, DateJoined: s.now().UTC(),
	}, kind: "internal", groups: []int{AllUsersGroupID}})
	for k, id := range cfg.keys {
		s.keys[k] = id
	}
	s.mu.Unlock()
	for _, c := range cfg.passwords {
		s.mu.Lock()
		u := s.byEmail[strings.ToLower(c.email)]
		s.mu.Unlock()
		id := 0
		if u != nil {
			id = u.ID
		} else {
			id = s.AddUser(User{Email: c.email, Active: true}).ID
		}
		s.SetPassword(id, c.password)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	tb.Cleanup(s.srv.Close)
	return s
}

// URL returns the base URL, without a trailing slash.
func (s *Server) URL() string { return s.srv.URL }

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many requests with this method ("" for any) have a
// path starting with pathPrefix.
func (s *Server) Count(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countLocked(method, pathPrefix)
}

func (s *Server) countLocked(method, pathPrefix string) int {
	n := 0
	for _, r := range s.requests {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// WaitForRequests blocks until at least n requests matching method and
// pathPrefix (as in Count) have arrived, or ctx is done. Use it instead of
// sleeping, e.g. to know that a request is parked by Hold.
func (s *Server) WaitForRequests(ctx context.Context, method, pathPrefix string, n int) error {
	for {
		s.mu.Lock()
		got := s.countLocked(method, pathPrefix)
		ch := s.arrived
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SetLegacyDelete switches to the behaviour of the toucan2-era users API
// in src/metabase/api/user.clj, before metabase/metabase#66599 was fixed
// (docs/metabase.md#eras): DELETE /api/user/:id answers a missing, already
// inactive or non-personal user with a 500 JSON stack trace instead of 404
// or 200; GET /api/user/:id answers an inactive user 404, as that file
// fetches it with :is_active true, and an API key's user 404 too (from
// PR #36905 until PR #44100 the user endpoints select personal users only:
// docs/metabase.md#api-key-users-in-049050); a PUT naming a group that does not
// exist gets a 500 (the database's foreign key) instead of a 400; and
// GET /api/user ignores tenancy and tenant_id, which did not exist yet.
func (s *Server) SetLegacyDelete(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.legacyDelete = on
}

// ExpireSessions invalidates every session; they then get 401.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// SetHealth sets the reply of GET /api/health (default 200
// {"status":"ok"}); a body starting with '{' is sent as JSON.
func (s *Server) SetHealth(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.healthStatus, s.healthBody = status, body
}

// serveHTTP records the request, applies injected faults, then routes it.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	auth := "none"
	switch {
	case r.Header.Get("X-Metabase-Session") != "":
		auth = "session"
	case r.Header.Get("X-API-Key") != "":
		auth = "api-key"
	}
	s.mu.Lock()
	idx := len(s.requests)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Auth: auth})
	s.events++
	s.spans = append(s.spans, span{start: s.events})
	close(s.arrived)
	s.arrived = make(chan struct{})
	tag := s.tagLocked()
	tr := s.tr
	delay := s.latencyLocked(r.Method, r.URL.Path)
	hold := s.holdLocked(r.Method, r.URL.Path)
	fail := s.failLocked(r.Method, r.URL.Path)
	s.mu.Unlock()

	if tr != nil {
		w = &translatingWriter{ResponseWriter: w, tr: tr}
	}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.requests[idx].Status = rec.status
		s.events++
		s.spans[idx].end = s.events
		s.mu.Unlock()
	}()
	rec.Header().Set("X-Metabase-Version", tag)

	if !waitOrDone(r.Context(), delay) {
		return
	}
	if hold != nil && !hold.reply {
		select {
		case <-hold.ch:
		case <-r.Context().Done():
			return
		}
	}
	if fail != nil {
		writeBody(rec, fail.status, fail.body)
		return
	}
	holdReply := hold != nil && hold.reply
	if !holdReply && s.profile == nil {
		s.route(rec, r)
		return
	}
	// The request takes effect now; only its reply waits, for the latency
	// profile (the service being slow) and then for HoldReply. A client
	// that gives up meanwhile leaves the change in place, as with a real
	// server that does not notice.
	rows := new(int)
	buf := httptest.NewRecorder()
	s.route(buf, r.WithContext(context.WithValue(r.Context(), rowsKey{}, rows)))
	rec.status = buf.Code
	if s.profile != nil {
		if !waitOrDone(r.Context(), s.profile.delay(r, *rows)) {
			return
		}
	}
	if holdReply {
		select {
		case <-hold.ch:
		case <-r.Context().Done():
			return
		}
	}
	maps.Copy(rec.Header(), buf.Header())
	rec.ResponseWriter.WriteHeader(buf.Code)
	_, _ = rec.ResponseWriter.Write(buf.Body.Bytes())
}

// waitOrDone waits d on a timer, and reports false if ctx ends first.
func waitOrDone(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Content types Metabase sends (docs/metabase.md#error-bodies).
const (
	contentTypeText = "text/plain"
	contentTypeJSON = "application/json; charset=utf-8"
)

// writeText writes a plain-text body, as Metabase does for string bodies.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", contentTypeText)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// writeJSON writes v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "Internal server error.")
		return
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeBody writes a literal body: JSON if it starts with '{', else text.
func writeBody(w http.ResponseWriter, status int, body string) {
	ct := contentTypeText
	if strings.HasPrefix(strings.TrimSpace(body), "{") {
		ct = contentTypeJSON
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
