package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// setWaiting records what start-up waits for, for /readyz; "" clears it.
func (rd *readiness) setWaiting(what string) { rd.waiting.Store(what) }

// waitingForMetabase says why start-up is still waiting for Metabase, naming its host and the
// cause of the last failure. It shows neither credentials nor the URL's user info: /readyz is
// open to anyone who can reach HTTP_ADDR.
func waitingForMetabase(metabaseURL string, err error) string {
	host := "METABASE_URL"
	if u, perr := url.Parse(metabaseURL); perr == nil && u.Host != "" {
		host = u.Host
	}
	return fmt.Sprintf("waiting for Metabase at %s (%s); retrying", host, waitCause(err))
}

// waitCause is the short reason a Metabase call failed, from its typed error.
func waitCause(err error) string {
	var apiErr *metabase.APIError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &apiErr):
		msg := apiErr.Message
		if r := []rune(msg); len(r) > 200 {
			msg = string(r[:200]) + "…"
		}
		return fmt.Sprintf("it answered %d: %s", apiErr.StatusCode, msg)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		return "its host name does not resolve"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer within METABASE_TIMEOUT"
	default:
		return "unreachable"
	}
}

// storeWritable is the store's part of /readyz beyond a ping: a ping passes on a read-only file
// or a full disk, so once a call has failed because of the database the store counts as down
// until a write goes through again (a probe write, at most ReplyTimeout, tells when). A restart
// would not help, so /healthz stays up meanwhile (docs/faults.md).
func storeWritable(ctx context.Context, st *store.Store) error {
	h := st.Health()
	if !h.Failing {
		return nil
	}
	if err := st.Probe(store.WithCallTimeout(ctx, store.ReplyTimeout)); err == nil {
		return nil
	}
	return fmt.Errorf("store: %s (since %s, first in %s); nothing can be recorded",
		h.Cause, h.Since.UTC().Format(time.RFC3339), h.Op)
}

// storeErrors exports the store's count of calls the database could not serve, by operation.
type storeErrors struct {
	st   *store.Store
	desc *prometheus.Desc
}

func newStoreErrors(st *store.Store) storeErrors {
	return storeErrors{st: st, desc: prometheus.NewDesc("metabase_bot_store_errors_total",
		"Store calls that failed because of the database (down, unreachable, read-only, disk full, no answer within the call's budget), by operation.",
		[]string{"operation"}, nil)}
}

// Describe implements prometheus.Collector.
func (c storeErrors) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: every operation, at zero until it fails.
func (c storeErrors) Collect(ch chan<- prometheus.Metric) {
	counts := c.st.Errors()
	for _, op := range store.Operations() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(counts[op]), op)
	}
}
