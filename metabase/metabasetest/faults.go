package metabasetest

import (
	"strings"
	"sync"
	"time"
)

type latencyRule struct {
	method, pattern string
	d               time.Duration
}

type failRule struct {
	method, pattern string
	n               int // remaining; <0 = always
	status          int
	body            string
}

type holdRule struct {
	method, pattern string
	ch              chan struct{}
	// reply: the request is handled at once and only its reply is parked (HoldReply).
	reply bool
}

// matchPath reports whether path matches pattern segment by segment, where
// a ":id" segment matches any run of digits. method "" matches any method.
func matchPath(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if p == ":id" {
			if !isDigits(xs[i]) {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return true
}

func matchRule(ruleMethod, pattern, method, path string) bool {
	return (ruleMethod == "" || ruleMethod == method) && matchPath(pattern, path)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SetLatency delays requests matching method and pathPattern (":id"
// matches a numeric segment) by d before they are handled; d = 0 removes
// the delay. A client that gives up is not kept waiting.
func (s *Server) SetLatency(method, pathPattern string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range s.latency {
		if l.method == method && l.pattern == pathPattern {
			s.latency = append(s.latency[:i], s.latency[i+1:]...)
			break
		}
	}
	if d > 0 {
		s.latency = append(s.latency, latencyRule{method, pathPattern, d})
	}
}

func (s *Server) latencyLocked(method, path string) time.Duration {
	for _, l := range s.latency {
		if matchRule(l.method, l.pattern, method, path) {
			return l.d
		}
	}
	return 0
}

// FailNext makes the next n requests matching method and pathPattern get
// status and body instead of being handled (n < 0: all of them). The body
// is sent as JSON if it starts with '{', else as text/plain.
func (s *Server) FailNext(method, pathPattern string, n int, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, &failRule{method, pathPattern, n, status, body})
}

// ClearFailures removes every rule set by FailNext, as when Metabase recovers.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = nil
}

func (s *Server) failLocked(method, path string) *failRule {
	for i, f := range s.fails {
		if !matchRule(f.method, f.pattern, method, path) {
			continue
		}
		if f.n > 0 {
			f.n--
			if f.n == 0 {
				s.fails = append(s.fails[:i], s.fails[i+1:]...)
			}
		}
		return f
	}
	return nil
}

// Hold parks requests matching method and pathPattern until release is
// called (or their client goes away). Requests that arrive after release
// pass. Use WaitForRequests to know that a request is parked.
func (s *Server) Hold(method, pathPattern string) (release func()) {
	return s.hold(&holdRule{method: method, pattern: pathPattern, ch: make(chan struct{})})
}

// HoldReply handles requests matching method and pathPattern at once (a
// DELETE deactivates the user) but parks their replies until release is
// called. If the client goes away first, the change stays and the reply is
// never sent: the case of a bot that died after Metabase acted but before it
// learned so. Requests that arrive after release pass.
func (s *Server) HoldReply(method, pathPattern string) (release func()) {
	return s.hold(&holdRule{method: method, pattern: pathPattern, ch: make(chan struct{}), reply: true})
}

func (s *Server) hold(h *holdRule) (release func()) {
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			for i, x := range s.holds {
				if x == h {
					s.holds = append(s.holds[:i], s.holds[i+1:]...)
					break
				}
			}
			s.mu.Unlock()
			close(h.ch)
		})
	}
}

func (s *Server) holdLocked(method, path string) *holdRule {
	for _, h := range s.holds {
		if matchRule(h.method, h.pattern, method, path) {
			return h
		}
	}
	return nil
}
