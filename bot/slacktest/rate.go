package slacktest

import (
	"math"
	"time"
)

// Slack's rate-limit tiers (https://api.slack.com/docs/rate-limits), per method and workspace, in
// calls per minute. Slack states each as a floor ("20+ per minute") and tolerates short bursts; the
// fake allows a burst of one minute's worth and then refills evenly, so a steady caller at the
// tier's rate is never refused and a flood is.
const (
	tier1 = 1
	tier2 = 20
	tier3 = 50
	tier4 = 100
)

// tier is one rate limit: a token bucket of burst calls refilled at perMinute.
type tier struct {
	perMinute float64
	burst     float64
}

func perMinute(n int) tier { return tier{perMinute: float64(n), burst: float64(n)} }

// methodTiers are the tiers of the methods the fake serves, each from its method page
// (https://api.slack.com/methods/<method>, "Rate limits"). auth.test and the response_url are not
// limited here: Slack documents auth.test as "special" (generous) and response_url by uses, not
// rate.
var methodTiers = map[string]tier{
	// Tier 1, but reconnecting replicas open several sockets within a minute, which Slack
	// tolerates as a burst: the fake allows ten.
	"apps.connections.open": {perMinute: tier1, burst: 10},
	"usergroups.users.list": perMinute(tier2),
	"usergroups.list":       perMinute(tier2),
	"users.list":            perMinute(tier2),
	"chat.update":           perMinute(tier3),
	"chat.delete":           perMinute(tier3),
	"users.lookupByEmail":   perMinute(tier3),
	"conversations.info":    perMinute(tier3),
	"conversations.join":    perMinute(tier3),
	"chat.postEphemeral":    perMinute(tier4),
	"users.info":            perMinute(tier4),
	"views.open":            perMinute(tier4),
	"views.update":          perMinute(tier4),
	"views.publish":         perMinute(tier4),
	"conversations.members": perMinute(tier4),
}

// chat.postMessage has its own limits (https://api.slack.com/methods/chat.postMessage#rate_limiting):
// about one message per second per channel, with short bursts allowed (answered HTTP 429), and
// several hundred a minute per workspace, which the page lists as the error rate_limited.
var (
	postPerChannel   = tier{perMinute: 60, burst: 5}
	postPerWorkspace = tier{perMinute: 300, burst: 300}
)

// bucket is the state of one token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// take spends one token of the bucket named key under t at now. When none is left it returns how
// long until one is, rounded up to whole seconds as Retry-After is.
func (s *Server) takeLocked(key string, t tier, now time.Time) (retryAfter int, ok bool) {
	b, seen := s.buckets[key]
	if !seen {
		b = &bucket{tokens: t.burst, at: now}
		s.buckets[key] = b
	}
	b.tokens = math.Min(t.burst, b.tokens+now.Sub(b.at).Minutes()*t.perMinute)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := (1 - b.tokens) / t.perMinute * 60
	return max(1, int(math.Ceil(wait))), false
}

// limitedLocked applies the documented limits to one call of method. It returns the Retry-After of
// an HTTP 429, or the code of an ok:false answer, or neither.
func (s *Server) limitedLocked(method string, p params) (retryAfter int, code string) {
	if s.opts.NoRateLimits || s.lifted[method] {
		return 0, ""
	}
	now := time.Now() // real time: Options.Now may stand still or jump
	if s.rateClock != nil {
		now = s.rateClock()
	}
	if method == "chat.postMessage" {
		if ra, ok := s.takeLocked("chat.postMessage#"+p.get("channel"), postPerChannel, now); !ok {
			return ra, ""
		}
		if _, ok := s.takeLocked("chat.postMessage", postPerWorkspace, now); !ok {
			return 0, "rate_limited"
		}
		return 0, ""
	}
	t, ok := methodTiers[method]
	if !ok {
		return 0, ""
	}
	if ra, ok := s.takeLocked(method, t, now); !ok {
		return ra, ""
	}
	return 0, ""
}

// Refused reports how many calls to method the documented rate limits refused (HTTP 429 or
// rate_limited), not counting those forced by RateLimit or FailNext.
func (s *Server) Refused(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[method]
}

// RateLimit returns the limit the fake applies to method (per minute, and the burst it allows
// before refusing), for a caller that wants to compute the least time a workload can take under
// Slack's tiers. ok is false for methods the fake does not limit. chat.postMessage is limited per
// channel; see PostMessageChannelLimit.
func RateLimit(method string) (perMinute, burst float64, ok bool) {
	if method == "chat.postMessage" {
		return postPerWorkspace.perMinute, postPerWorkspace.burst, true
	}
	t, ok := methodTiers[method]
	return t.perMinute, t.burst, ok
}

// PostMessageChannelLimit is chat.postMessage's limit per channel (per minute, and the burst).
func PostMessageChannelLimit() (perMinute, burst float64) {
	return postPerChannel.perMinute, postPerChannel.burst
}
