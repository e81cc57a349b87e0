package metabasetest

import (
	"slices"
	"strings"
)

// span is when a request was in flight, as positions in the server's sequence of arrivals and
// completions (end 0: still in flight).
type span struct{ start, end int64 }

// MaxInFlight returns the largest number of requests with this method ("" for any) and a path
// starting with pathPrefix that the fake was handling at the same time, from arrival (before any
// latency, hold or failure) to the end of the response. Use it to check a client's concurrency
// bound.
func (s *Server) MaxInFlight(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	type event struct {
		at    int64
		delta int
	}
	var evs []event
	for i, r := range s.requests {
		if (method != "" && r.Method != method) || !strings.HasPrefix(r.Path, pathPrefix) {
			continue
		}
		evs = append(evs, event{s.spans[i].start, +1})
		if s.spans[i].end != 0 {
			evs = append(evs, event{s.spans[i].end, -1})
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	cur, peak := 0, 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}
