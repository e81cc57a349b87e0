package metabase

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
)

const (
	// maxErrorBodySize caps how much of an error body checkResponse reads
	// (go-github uses the same 1 MiB cap).
	maxErrorBodySize = 1 << 20
	// maxMessageLen caps a raw-text fallback message, so an HTML error page
	// or a stack trace cannot flood logs or chat.
	maxMessageLen = 512
)

// Sentinel errors that callers branch on. They are matched by
// (*APIError).Is, so use errors.Is(err, metabase.ErrNotFound).
var (
	// ErrNotFound reports a 404: the user (or endpoint) does not exist.
	ErrNotFound = errors.New("metabase: not found")
	// ErrUnauthorized reports a 401: missing or invalid credentials, an
	// expired session, a failed login or login throttling.
	ErrUnauthorized = errors.New("metabase: unauthorized")
	// ErrForbidden reports a 403: the credential is valid but lacks
	// permission, e.g. an API key outside the Administrators group.
	ErrForbidden = errors.New("metabase: forbidden")
	// ErrAlreadyActive reports that PUT /api/user/:id/reactivate targeted a
	// user who is already active. Callers usually treat it as success.
	// ReactivateUser decides it by re-reading the user after a 400, never
	// by Metabase's message, which is translated.
	ErrAlreadyActive = errors.New("metabase: user is already active")
	// ErrLastAdmin reports that Metabase refused to deactivate an admin
	// because no other active member of the Admin group would remain.
	// DisableUser decides it by re-reading the user after a 400.
	ErrLastAdmin = errors.New("metabase: refused: the last active member of the Admin group")
	// ErrFormerAdminNotReactivated reports that Metabase refused to
	// reactivate a former admin: reactivation clears is_superuser, and
	// Metabase before PR #68198 (merged 2026-01-14) runs its last-admin
	// check as if the user were leaving the Admin group, counting too few
	// admins, so it refuses unless two other active admins exist
	// (metabase/metabase#59776, docs/metabase.md#reactivate-a-former-admin).
	// ReactivateUser decides it by re-reading the user after a 400.
	ErrFormerAdminNotReactivated = errors.New("metabase: refused to reactivate a former admin")
)

// APIError is returned for every non-2xx response from Metabase. Message
// holds Metabase's own message verbatim; Body holds the raw body (at most
// 1 MiB). Neither the request headers nor the credentials are kept.
type APIError struct {
	StatusCode int    // HTTP status code
	Method     string // request method
	Path       string // request path, without query string
	Message    string // Metabase's message, decoded from text or JSON
	Body       []byte // raw response body, capped at 1 MiB
	// noRoute is set on a 404 of a route without an object id: nothing can
	// be "not found" there but the route itself (see markNoRoute).
	noRoute bool
}

// Error formats the error as "metabase: METHOD /path: STATUS message".
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("metabase: %s %s: %d %s", e.Method, e.Path, e.StatusCode, msg)
}

// Is lets errors.Is match the sentinels ErrNotFound (404),
// ErrUnauthorized (401), ErrForbidden (403) and ErrNotSupported (a 404 of
// a route that has no object id). It goes by status and route only:
// Metabase translates its messages (docs/metabase.md#languages), so none
// is compared.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotSupported:
		return e.noRoute
	}
	return false
}

// markNoRoute marks err, when it is a 404 of a route template without an
// object id (no ":" segment, e.g. "/api/notification/admin"), as
// ErrNotSupported: such a route finds no object that could be missing, so
// the 404 can only be Metabase's not-found handler for a route it does not
// have. A 404 of a route with an id stays ErrNotFound alone; callers that
// must tell "gone" from "unsupported" there re-read the capabilities.
func markNoRoute(err error, route string) {
	var e *APIError
	if errors.As(err, &e) && e.StatusCode == http.StatusNotFound && !strings.Contains(route, ":") {
		e.noRoute = true
	}
}

// checkResponse returns nil for a 2xx response and an *APIError otherwise.
// It reads at most 1 MiB of the body and picks the parser from the
// Content-Type: Metabase answers simple errors as text/plain and the rest
// as JSON with "message" or "errors" (docs/metabase.md#error-bodies).
func checkResponse(r *http.Response) error {
	if r.StatusCode >= 200 && r.StatusCode < 300 {
		return nil
	}
	e := &APIError{StatusCode: r.StatusCode}
	if r.Request != nil {
		e.Method = r.Request.Method
		if r.Request.URL != nil {
			e.Path = r.Request.URL.Path
		}
	}
	if r.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBodySize))
		e.Body = body
	}
	e.Message = errorMessage(r.Header.Get("Content-Type"), e.Body)
	return e
}

// errorMessage decodes Metabase's message from an error body.
func errorMessage(contentType string, body []byte) string {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if mediaType == "application/json" || strings.HasSuffix(mediaType, "+json") ||
		(mediaType != "text/plain" && looksLikeJSON(body)) {
		if msg, ok := jsonMessage(body); ok {
			return msg
		}
	}
	return rawMessage(body)
}

func looksLikeJSON(body []byte) bool {
	s := strings.TrimSpace(string(body))
	return strings.HasPrefix(s, "{")
}

// jsonMessage extracts "message", or else the "errors" map joined as
// "key: value" sorted by key.
func jsonMessage(body []byte) (string, bool) {
	var v struct {
		Message any                        `json:"message"`
		Errors  map[string]json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", false
	}
	if s, ok := v.Message.(string); ok && s != "" {
		return s, true
	}
	if len(v.Errors) == 0 {
		return "", false
	}
	keys := make([]string, 0, len(v.Errors))
	for k := range v.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		var s string
		if err := json.Unmarshal(v.Errors[k], &s); err != nil {
			s = string(v.Errors[k])
		}
		parts = append(parts, k+": "+s)
	}
	return strings.Join(parts, "; "), true
}

// rawMessage returns the trimmed body, capped at maxMessageLen bytes.
func rawMessage(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > maxMessageLen {
		s = strings.ToValidUTF8(s[:maxMessageLen], "") + "…"
	}
	return s
}
