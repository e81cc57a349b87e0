package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// okResp is a successful Web API reply; "ok":true is added when it is written.
type okResp map[string]any

// errResp is an {"ok":false,"error":…} Web API reply, optionally with response_metadata.messages as Slack sends
// for invalid_blocks and invalid_arguments.
type errResp struct {
	code     string
	messages []string
	extra    map[string]any // further top-level fields, such as missing_scope's needed and provided
}

func fail(code string, messages ...string) errResp { return errResp{code: code, messages: messages} }

type rateLimit struct{ n, retryAfter int }

type failure struct {
	n    int
	code string
}

// params are a Web API call's arguments, from a form body (what slack-go sends), the query string, or a JSON body
// (whose non-string values are kept as raw JSON text, so "view" and "blocks" read the same either way).
type params struct {
	values map[string]string
	token  string // the Bearer token, else the token field
	bearer string // the Bearer token only
}

func (p params) get(k string) string { return p.values[k] }

func (p params) has(k string) bool { _, ok := p.values[k]; return ok }

type apiHandler func(*Server, params) any

// apiMethods maps each Web API method the fake models to its handler. Any other path answers HTTP 404, which
// slack-go reports as StatusCodeError ("slack server error: 404 Not Found").
var apiMethods = map[string]apiHandler{
	"apps.connections.open": apiConnectionsOpen,
	"auth.test":             apiAuthTest,
	"chat.postMessage":      apiPostMessage,
	"chat.update":           apiUpdate,
	"chat.getPermalink":     apiGetPermalink,
	"chat.postEphemeral":    apiPostEphemeral,
	"chat.delete":           apiDelete,
	"usergroups.users.list": apiUserGroupsUsersList,
	"users.info":            apiUsersInfo,
	"users.list":            apiUsersList,
	"users.lookupByEmail":   apiUsersLookupByEmail,
	"conversations.info":    apiConversationsInfo,
	"conversations.join":    apiConversationsJoin,
	"views.open":            apiViewsOpen,
	"views.update":          apiViewsUpdate,
	"views.publish":         apiViewsPublish,
}

func parseParams(r *http.Request) (params, error) {
	p := params{values: map[string]string{}}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		p.token = strings.TrimPrefix(h, "Bearer ")
		p.bearer = p.token
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			return p, err
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				return p, err
			}
			for k, v := range m {
				var str string
				if json.Unmarshal(v, &str) == nil {
					p.values[k] = str
				} else {
					p.values[k] = string(v)
				}
			}
		}
		for k, v := range r.URL.Query() {
			if _, ok := p.values[k]; !ok && len(v) > 0 {
				p.values[k] = v[0]
			}
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return p, err
		}
		for k, v := range r.Form {
			if len(v) > 0 {
				p.values[k] = v[0]
			}
		}
	}
	if p.token == "" {
		p.token = p.values["token"]
	}
	return p, nil
}

// serveAPI dispatches /<method>. Order: 404 for unknown methods, count the call, the RateLimit switch
// (429), auth (not_authed / invalid_auth), scopes (missing_scope), the documented rate limits (429 or
// rate_limited, see rate.go), the FailNext switch, Hold, the method, then HoldReply.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/")
	h, ok := apiMethods[method]
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.calls[method]++
	lim := s.limits[method]
	limited := lim.n > 0
	if limited {
		lim.n--
		s.limits[method] = lim
	}
	s.broadcastLocked()
	s.mu.Unlock()
	if limited {
		tooMany(w, lim.retryAfter)
		return
	}
	p, err := parseParams(r)
	if err != nil {
		writeJSON(w, fail("invalid_form_data"))
		return
	}
	want, token, scopes := s.opts.BotToken, p.token, s.opts.BotScopes
	needed := scopeFor(method, p)
	if method == "apps.connections.open" {
		// Only the Authorization header counts here: Slack rejects the app token as a POST parameter
		// (docs/slack.md#socket-mode).
		want, token, scopes, needed = s.opts.AppToken, p.bearer, s.opts.AppScopes, appTokenScope
	}
	switch token {
	case "":
		writeJSON(w, fail("not_authed"))
		return
	case want:
	default:
		writeJSON(w, fail("invalid_auth"))
		return
	}
	// Slack names the token's scopes in this header of every authenticated answer; auth.test is how
	// an app reads them (https://api.slack.com/methods/auth.test).
	w.Header().Set("X-OAuth-Scopes", strings.Join(scopes, ","))
	if needed != "" && !hasScope(scopes, needed) {
		writeJSON(w, missingScope(needed, scopes))
		return
	}
	s.mu.Lock()
	retryAfter, code := s.limitedLocked(method, p)
	if retryAfter > 0 || code != "" {
		s.refused[method]++
		s.broadcastLocked()
	}
	f := s.failures[method]
	if retryAfter == 0 && code == "" && f.n > 0 {
		f.n--
		s.failures[method] = f
		code = f.code
	}
	s.mu.Unlock()
	switch {
	case retryAfter > 0:
		tooMany(w, retryAfter)
		return
	case code != "":
		writeJSON(w, fail(code))
		return
	}
	if !s.park(r.Context(), method) {
		return // the client went away while the call was held: it never took effect
	}
	reply := h(s, p)
	if !s.parkReply(r.Context(), method) {
		return // the client went away while the reply was held: the call took effect all the same
	}
	writeJSON(w, reply)
}

// tooMany answers HTTP 429 with Retry-After in seconds, as Slack does
// (https://api.slack.com/docs/rate-limits); slack-go turns it into *slack.RateLimitedError.
func tooMany(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
}

func writeJSON(w http.ResponseWriter, v any) {
	var body map[string]any
	switch v := v.(type) {
	case okResp:
		body = map[string]any{"ok": true}
		for k, x := range v {
			body[k] = x
		}
	case errResp:
		body = map[string]any{"ok": false, "error": v.code}
		for k, x := range v.extra {
			body[k] = x
		}
		if len(v.messages) > 0 {
			body["response_metadata"] = map[string]any{"messages": v.messages}
		}
	default:
		panic(fmt.Sprintf("slacktest: handler returned %T", v))
	}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// Calls reports how many HTTP requests method (e.g. "chat.postMessage") has received, including rejected ones.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// WaitCalls blocks until method has received at least n calls (e.g. to see a retry after RateLimit).
func (s *Server) WaitCalls(ctx context.Context, method string, n int) error {
	return s.waitFor(ctx, func() bool { return s.calls[method] >= n })
}

// RateLimit makes the next n calls to method answer HTTP 429 with Retry-After: retryAfter (seconds), which
// slack-go turns into *slack.RateLimitedError{RetryAfter: retryAfter*time.Second}.
func (s *Server) RateLimit(method string, n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = rateLimit{n: n, retryAfter: retryAfter}
}

// FailNext makes the next n calls to method (after authentication) answer {"ok":false,"error":slackError}.
func (s *Server) FailNext(method string, n int, slackError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = failure{n: n, code: slackError}
}
