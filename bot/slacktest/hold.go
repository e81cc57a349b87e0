package slacktest

import (
	"context"
	"slices"
)

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
	return s.hold(&s.holds, method)
}

// HoldReply lets every call to the Web API method take effect at once and parks only its reply, until release is
// called: Slack has accepted the message, and its answer has not reached the client yet. A parked reply whose
// client goes away first (the bot process was killed) is never written, so the call took effect and its client
// never learnt it, which is the window between a post and the client recording its ts. WaitHeld counts parked
// replies too. Holding the replies of a method already held replaces the earlier rule for new calls.
func (s *Server) HoldReply(method string) (release func()) {
	return s.hold(&s.replyHold, method)
}

func (s *Server) hold(rules *map[string]*holdRule, method string) (release func()) {
	h := &holdRule{}
	s.mu.Lock()
	if *rules == nil {
		*rules = map[string]*holdRule{}
	}
	(*rules)[method] = h
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		h.released = true
		if (*rules)[method] == h {
			delete(*rules, method)
		}
		s.broadcastLocked()
	}
}

// WaitHeld blocks until exactly n calls to method are parked by Hold or HoldReply (n = 0: until every parked call
// was released or dropped).
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
	return s.parkOn(ctx, &s.holds, method)
}

// parkReply waits while a HoldReply applies to method, after the call took effect. It reports whether the reply
// should be written: false when the client went away or the server is closing.
func (s *Server) parkReply(ctx context.Context, method string) bool {
	return s.parkOn(ctx, &s.replyHold, method)
}

func (s *Server) parkOn(ctx context.Context, rules *map[string]*holdRule, method string) bool {
	s.mu.Lock()
	h := (*rules)[method]
	if h == nil {
		s.mu.Unlock()
		return true
	}
	h.parked++
	if s.parked == nil {
		s.parked = map[string][]*holdRule{}
	}
	// Listed once however often it parks: a rule whose earlier calls all left parks again later.
	if !slices.Contains(s.parked[method], h) {
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
