package access

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"unicode/utf8"

	"github.com/metabase-bot/metabase-bot/metabase"
)

// FailureText says in one phrase why a Metabase call failed. It is kept on a target's result and
// shown on cards, so it is the one place that turns a Metabase error into words: Metabase's own
// message is passed on verbatim (it is what an admin needs, e.g. the last-admin refusal);
// anything else gets a generic phrase, with the details left to the logs.
func FailureText(err error) string {
	var apiErr *metabase.APIError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "Metabase did not answer in time"
	case errors.Is(err, context.Canceled):
		return "the bot was shutting down"
	case errors.Is(err, metabase.ErrUnauthorized):
		return "Metabase rejected the bot's credentials (401): check METABASE_API_KEY or the bot's password"
	case errors.Is(err, metabase.ErrForbidden):
		return "the bot's Metabase account is not an admin (403): put its API key in the Administrators group"
	case errors.Is(err, metabase.ErrNotFound):
		return "no such Metabase user"
	case errors.Is(err, metabase.ErrFormerAdminNotReactivated) && errors.As(err, &apiErr):
		return FormerAdminText + " (Metabase answered " + strconv.Itoa(apiErr.StatusCode) + ": " + truncateRunes(apiErr.Message, 300) + ")"
	case errors.As(err, &apiErr):
		msg := apiErr.Message
		if msg == "" {
			msg = "no message"
		}
		return fmt.Sprintf("Metabase answered %d: %s", apiErr.StatusCode, truncateRunes(msg, 300))
	}
	var netErr *net.OpError
	if errors.As(err, &netErr) {
		return "Metabase could not be reached"
	}
	return "an unexpected error (details are in the bot's logs)"
}

// NoAnswer reports whether err means a write was sent and no answer came back, so Metabase may
// have applied it: a timeout, as opposed to a refusal or a connection that never opened.
func NoAnswer(err error) bool {
	var netErr *net.OpError
	if errors.As(err, &netErr) && netErr.Op == "dial" {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || isTimeout(err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// truncateRunes cuts s to n runes, marking the cut, so echoing text never breaks a limit.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// FormerAdminText is why reactivating a former admin failed on a Metabase whose last-admin check
// predates metabase/metabase PR #68198 (merged in January 2026): reactivation clears the admin
// flag, and that check counts too few admins while the user is still inactive, so it refuses
// unless two other admins are active (metabase/metabase#59776, docs/metabase.md#reactivate-a-former-admin).
// The refusal changes nothing, so the request stays retryable: the words say what fixes it.
const FormerAdminText = "Metabase releases before January 2026 refuse to reactivate a former admin while only one other admin " +
	"is active (metabase/metabase#59776): add an admin in Metabase or upgrade it, then press Retry"
