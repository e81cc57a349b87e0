package metabasetest

import (
	"net/http"
	"strings"
	"time"
)

// LatencyProfile is how long the fake takes to answer each kind of
// request, for tests that measure (WithLatencyProfile). The request takes
// effect at once; its reply is written after the delay.
type LatencyProfile struct {
	// APIKeyCheck is added to every request presenting an X-API-Key that
	// looks like a Metabase key (and no session): Metabase verifies the
	// key against its bcrypt hash on every request, and hashes anyway
	// when no key has that prefix.
	APIKeyCheck time.Duration
	// Search is GET /api/user; PerRow is added for each row it returns
	// (the hydration of group ids and personal collections).
	Search time.Duration
	PerRow time.Duration
	// Read is GET /api/user/:id and /api/user/current.
	Read time.Duration
	// Write is PUT, POST and DELETE under /api/user, and logout.
	Write time.Duration
	// Login is POST /api/session, which verifies the password's bcrypt
	// hash and writes a session.
	Login time.Duration
	// Health is GET /api/health.
	Health time.Duration
}

// RealisticLatency is a profile like a real Metabase with a few thousand
// users, called with an API key: a user search takes about 60 ms, most of
// it the bcrypt check of the key. The basis is in
// docs/metabase.md#latency: Metabase hashes API keys with bcrypt at cost
// 10 (util/password.clj) and verifies the key on every request
// (api_keys/auth_provider.clj); one cost-10 verification took 50 ms on a
// core of the machine that wrote this profile. The database parts are
// estimates for an app database of that size, not measurements.
func RealisticLatency() LatencyProfile {
	return LatencyProfile{
		APIKeyCheck: 50 * time.Millisecond,
		Search:      10 * time.Millisecond,
		PerRow:      20 * time.Microsecond,
		Read:        5 * time.Millisecond,
		Write:       15 * time.Millisecond,
		Login:       60 * time.Millisecond,
		Health:      time.Millisecond,
	}
}

// rowsKey carries, in a request's context, where listUsers reports how
// many rows it returned.
type rowsKey struct{}

func reportRows(r *http.Request, n int) {
	if p, ok := r.Context().Value(rowsKey{}).(*int); ok {
		*p = n
	}
}

// delay is how long the reply to r waits; rows is the number of rows a
// user list returned.
func (p LatencyProfile) delay(r *http.Request, rows int) time.Duration {
	var d time.Duration
	if r.Header.Get("X-Metabase-Session") == "" && validAPIKey(r.Header.Get("X-API-Key")) {
		d += p.APIKeyCheck
	}
	path := r.URL.Path
	switch {
	case path == "/api/health":
		d += p.Health
	case path == "/api/session" && r.Method == http.MethodPost:
		d += p.Login
	case path == "/api/user" && r.Method == http.MethodGet:
		d += p.Search + time.Duration(rows)*p.PerRow
	case r.Method == http.MethodGet:
		d += p.Read
	case strings.HasPrefix(path, "/api/"):
		d += p.Write
	}
	return d
}
