package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"

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
