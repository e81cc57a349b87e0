package slacktest

import "context"

// holdRule parks the calls to one Web API method until released.
type holdRule struct {
	released bool
	parked   int
}

// Hold parks every call to the Web API method (e.g. "chat.update", "chat.postMessage") after it is authenticated
// and parsed and before it takes effect, until release is called; calls that arrive after release pass. A parked
// call whose client goes away first (the bot process was killed) is dropped without effect and without a reply,
// as when the process dies before Slack received its request. Use WaitHeld to know that a call is parked. Holding
// a method that is already held replaces the earlier rule for new calls.
func (s *Server) Hold(method string) (release func()) {
	h := &holdRule{}
	s.mu.Lock()
	if s.holds == nil {
		s.holds = map[string]*holdRule{}
	}
	s.holds[method] = h
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		h.released = true
		if s.holds[method] == h {
			delete(s.holds, method)
		}
		s.broadcastLocked()
	}
}

// WaitHeld blocks until exactly n calls to method are parked by Hold (n = 0: until every parked call was
// released or dropped).
func (s *Server) WaitHeld(ctx context.Context, method string, n int) error {
	return s.waitFor(ctx, func() bool { return s.heldLocked(method) == n })
}

func (s *Server) heldLocked(method string) int {
	n := 0
	for _, h := range s.parked[method] {
		n += h.parked
	}
	return n
}

// park waits while a hold applies to method. It reports whether the call should proceed: false when the client
// went away (ctx done) or the server is closing.
func (s *Server) park(ctx context.Context, method string) bool {
	s.mu.Lock()
	h := s.holds[method]
	if h == nil {
		s.mu.Unlock()
		return true
	}
	h.parked++
	if s.parked == nil {
		s.parked = map[string][]*holdRule{}
	}
	if h.parked == 1 {
		s.parked[method] = append(s.parked[method], h)
	}
	s.broadcastLocked()
	s.mu.Unlock()
	err := s.waitFor(ctx, func() bool { return h.released })
	s.mu.Lock()
	h.parked--
	s.broadcastLocked()
	s.mu.Unlock()
	return err == nil && ctx.Err() == nil
}
