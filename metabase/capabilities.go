package metabase

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotSupported reports that this Metabase lacks an endpoint or an
// action. Metabase answers a route it does not have with a 404 from its
// not-found handler (src/metabase/api_routes/routes.clj), whose message is
// translated; the client recognises it by the route instead: a 404 of a
// route without an object id can only mean the route is missing (see
// markNoRoute). Such an *APIError matches both ErrNotSupported and
// ErrNotFound, so test ErrNotSupported first. The notification methods
// also return it, without calling Metabase, when Capabilities says the
// action is unavailable, or when a 404 of a route with an id comes from a
// Metabase whose capabilities changed.
var ErrNotSupported = errors.New("metabase: not supported by this Metabase version")

// alertsMovedFeature is the feature version whose alerts are notifications
// ("API changelog", Metabase 0.54.0); before it they are pulses served by
// /api/alert.
const alertsMovedFeature = 54

// capabilitiesTTL is how long what Capabilities found counts as fresh: after
// it the next caller still gets the remembered answer at once while a new
// one is learned in the background (facts.go), so an upgrade of Metabase is
// noticed within about this time, or at once when an endpoint answers
// ErrNotSupported.
const capabilitiesTTL = 10 * time.Minute

// Version is a Metabase version as its tag gives it: "v0.56.3" is the open
// source edition and "v1.56.3" the Enterprise build of the same release
// (feature version 56).
type Version struct {
	Tag     string // as Metabase reports it; "" when it did not say
	Edition int    // 0 open source, 1 Enterprise
	Feature int    // the release, e.g. 56; 0 when the tag is not a release
	Patch   int
}

// ParseVersion reads a version tag such as "v0.56.3", "v1.57.3.1" or
// "v0.58.0-beta". A tag that is not a release (a development build's
// "vUNKNOWN", or "") gives a Version with Feature 0.
func ParseVersion(tag string) Version {
	v := Version{Tag: tag}
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(tag), "v"), ".")
	nums := make([]int, 0, 3)
	for _, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(p[:end])
		if err != nil {
			break
		}
		nums = append(nums, n)
		if end < len(p) || len(nums) == 3 { // a suffix such as "-beta" ends the numbers
			break
		}
	}
	if len(nums) < 2 || nums[1] == 0 {
		return v
	}
	v.Edition, v.Feature = nums[0], nums[1]
	if len(nums) > 2 {
		v.Patch = nums[2]
	}
	return v
}

// Known reports whether the tag named a release.
func (v Version) Known() bool { return v.Feature > 0 }

// AtLeast reports whether this is a known release of at least the given
// feature version, whatever the edition.
func (v Version) AtLeast(feature int) bool { return v.Known() && v.Feature >= feature }

// String returns the tag, or "unknown".
func (v Version) String() string {
	if v.Tag == "" {
		return "unknown"
	}
	return v.Tag
}

// AlertSource names the endpoint that lists alerts.
type AlertSource string

// Where alerts are listed, newest first.
const (
	// AlertsFromNotificationAdmin is GET /api/notification/admin, of the
	// newest Metabase: each alert with its creator's is_active and its last
	// run and send (src/metabase/notification/api/admin.clj).
	AlertsFromNotificationAdmin AlertSource = "notification-admin"
	// AlertsFromNotification is GET /api/notification, from v0.54 on.
	AlertsFromNotification AlertSource = "notification"
	// AlertsFromAlertAPI is GET /api/alert, before v0.54, when alerts were
	// pulses.
	AlertsFromAlertAPI AlertSource = "alert"
)

// Capabilities is what the connected Metabase can do with what a user
// leaves running. Dashboard subscriptions can never change creator:
// PUT /api/pulse/:id does not accept creator_id in any version.
type Capabilities struct {
	Version Version
	// Alerts is where Notifications lists alerts.
	Alerts AlertSource
	// MoveAlerts: ChangeAlertCreator works (the bulk change-creator action).
	MoveAlerts bool
	// ArchiveAlerts: ArchiveAlerts works: the bulk archive action with the
	// admin API, PUT /api/notification/:id from v0.54 until then, PUT
	// /api/alert/:id before v0.54.
	ArchiveAlerts bool
	// ArchiveAlertsEmails: archiving an alert makes Metabase mail each of
	// its email recipients that they were removed (notification versions:
	// the PUT and the bulk action both end in notify-notification-updates!
	// of src/metabase/notification/api/notification.clj). Tell the people
	// who approve before it happens.
	ArchiveAlertsEmails bool
	// AlertRunStatus: alerts carry LastCheck and LastSend.
	AlertRunStatus bool
	// ArchiveSubscriptions: ArchiveSubscription works (PUT /api/pulse/:id).
	ArchiveSubscriptions bool
}

// Version returns the version of the connected Metabase from the public
// "version" setting, which every version serves without credentials
// (src/metabase/version/settings.clj, formerly public_settings.clj). The
// newest versions also send it in an x-metabase-version header; older ones
// do not, so the client does not rely on the header.
//
// GET /api/session/properties
func (c *Client) Version(ctx context.Context) (Version, error) {
	var props struct {
		Version struct {
			Tag string `json:"tag"`
		} `json:"version"`
	}
	err := c.do(ctx, request{
		method: "GET", route: "/api/session/properties", path: "api/session/properties", retry: true, noAuth: true,
	}, &props)
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(props.Version.Tag), nil
}

// Capabilities returns what the connected Metabase can do with
// subscriptions and alerts: the Capabilities of its Facts (facts.go), which
// are learned once and then refreshed in the background, so a caller waits
// for Metabase only the first time, or after an endpoint they chose turned
// out to be missing. Learning them reads the version and, from v0.54 on,
// probes GET /api/notification/admin once (a 404 of that route, whatever its
// words, means the admin API is missing); a version that is not a release
// (vLOCAL_DEV of a build without its version file) is probed the same way,
// never guessed.
func (c *Client) Capabilities(ctx context.Context) (Capabilities, error) {
	f, err := c.Facts(ctx)
	if err != nil {
		return Capabilities{}, err
	}
	return f.Capabilities, nil
}

func (c *Client) detectCapabilities(ctx context.Context) (Capabilities, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return Capabilities{}, fmt.Errorf("metabase: capabilities: %w", err)
	}
	caps := Capabilities{Version: v, ArchiveSubscriptions: true}
	legacy := Capabilities{Version: v, ArchiveSubscriptions: true, Alerts: AlertsFromAlertAPI, ArchiveAlerts: true}
	if v.Known() && !v.AtLeast(alertsMovedFeature) {
		return legacy, nil
	}
	admin, err := c.endpointExists(ctx, request{
		method: "GET", route: "/api/notification/admin", path: "api/notification/admin", retry: true,
		query: url.Values{"active": {"true"}, "sort_column": {"id"}, "limit": {"1"}},
	})
	if err != nil {
		return Capabilities{}, fmt.Errorf("metabase: capabilities: %w", err)
	}
	if admin {
		caps.Alerts, caps.MoveAlerts, caps.ArchiveAlerts, caps.AlertRunStatus = AlertsFromNotificationAdmin, true, true, true
		caps.ArchiveAlertsEmails = true
		return caps, nil
	}
	// From v0.54 until the admin API, PUT /api/notification/:id archives.
	caps.ArchiveAlerts, caps.ArchiveAlertsEmails = true, true
	if v.Known() {
		caps.Alerts = AlertsFromNotification
		return caps, nil
	}
	// A build that does not say its release: the notification list exists
	// from v0.54 on. The filter keeps the probe's answer empty.
	list, err := c.endpointExists(ctx, request{
		method: "GET", route: "/api/notification", path: "api/notification", retry: true,
		query: url.Values{"payload_type": {"notification/card"}, "card_id": {"2147483647"}},
	})
	if err != nil {
		return Capabilities{}, fmt.Errorf("metabase: capabilities: %w", err)
	}
	if !list {
		return legacy, nil
	}
	caps.Alerts = AlertsFromNotification
	return caps, nil
}

// endpointExists runs r and reports false when Metabase does not have the
// endpoint.
func (c *Client) endpointExists(ctx context.Context, r request) (bool, error) {
	err := c.do(ctx, r, nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotSupported):
		return false, nil
	}
	return false, err
}
