package metabase

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// notificationPageSize is the page size of GET /api/notification/admin.
// Metabase sets no upper bound on limit (offset paging), so one page holds
// every alert of all but the largest instances and listing them stays one
// call.
const notificationPageSize = 10000

// NotificationKind tells a dashboard subscription from an alert.
type NotificationKind string

// Values of NotificationKind.
const (
	// KindSubscription is a dashboard subscription: a pulse, listed by
	// GET /api/pulse. A legacy pulse of cards has no dashboard.
	KindSubscription NotificationKind = "subscription"
	// KindAlert is an alert on a question (a card).
	KindAlert NotificationKind = "alert"
)

// Creator is the user who created a subscription or an alert, who runs it:
// Metabase runs its queries with the creator's permissions, which is why the
// items of a deactivated creator may fail (metabase/metabase#52407).
type Creator struct {
	ID    int // 0: the item has no creator
	Email string
	Name  string
	// Active is set only where Metabase reports it (the admin alert list);
	// elsewhere it is nil and the caller must look the user up.
	Active *bool
}

// RunStatus is the latest run or send of an alert, as GET
// /api/notification/admin reports it (last 90 days).
type RunStatus struct {
	At     time.Time
	Failed bool
	Error  string // Metabase's reason, when Failed
}

// Notification is a dashboard subscription or an alert, with what it
// reaches. Deactivated users are not counted among the recipients: Metabase
// no longer sends to them.
type Notification struct {
	Kind NotificationKind
	ID   int
	// Name is the subscription's name, or the alert's question name.
	Name    string
	Creator Creator
	// DashboardID is the subscription's dashboard (0 for a legacy pulse).
	DashboardID int
	// CardID is the alert's question; 0 when Metabase did not say.
	CardID int
	// EmailUsers, EmailAddresses and EmailGroups count the email
	// recipients: Metabase users, other addresses, and permission groups.
	EmailUsers     int
	EmailAddresses int
	EmailGroups    int
	// SlackChannels are the Slack channels it posts to, e.g. "#sales".
	SlackChannels []string
	// Webhooks counts webhook (http) channels.
	Webhooks int
	// LastCheck (the whole run) and LastSend (the delivery) are nil unless
	// Capabilities.AlertRunStatus, and nil when nothing ran lately.
	LastCheck *RunStatus
	LastSend  *RunStatus
}

// Recipients counts every destination: email users, addresses and groups,
// Slack channels and webhooks.
func (n *Notification) Recipients() int {
	return n.EmailUsers + n.EmailAddresses + n.EmailGroups + len(n.SlackChannels) + n.Webhooks
}

// Failing reports whether Metabase says the last run or send failed. It is
// false where Metabase does not say.
func (n *Notification) Failing() bool {
	return (n.LastCheck != nil && n.LastCheck.Failed) || (n.LastSend != nil && n.LastSend.Failed)
}

// Path returns where the item leads in Metabase, relative to its base URL:
// "/dashboard/ID" for a subscription, "/question/ID" for an alert, or ""
// when there is nothing to link to.
func (n *Notification) Path() string {
	switch {
	case n.Kind == KindSubscription && n.DashboardID > 0:
		return "/dashboard/" + strconv.Itoa(n.DashboardID)
	case n.Kind == KindAlert && n.CardID > 0:
		return "/question/" + strconv.Itoa(n.CardID)
	}
	return ""
}

// Inventory is every active subscription and alert of a Metabase, listed
// with one call per kind; group it in memory with CreatedBy or ByCreator.
type Inventory struct {
	Capabilities  Capabilities
	Subscriptions []Notification // in Metabase's order (by name)
	Alerts        []Notification
}

// CreatedBy returns the items each of the given users created,
// subscriptions first. A user who created nothing has no key. Id 0 selects
// nothing: it is how an item without a creator reads (Creator.ID), not a user.
func (inv *Inventory) CreatedBy(userIDs ...int) map[int][]Notification {
	want := make(map[int]bool, len(userIDs))
	for _, id := range userIDs {
		if id != 0 {
			want[id] = true
		}
	}
	out := map[int][]Notification{}
	for _, list := range [][]Notification{inv.Subscriptions, inv.Alerts} {
		for _, n := range list {
			if want[n.Creator.ID] {
				out[n.Creator.ID] = append(out[n.Creator.ID], n)
			}
		}
	}
	return out
}

// ByCreator returns every item grouped by creator id, subscriptions first;
// key 0 holds the items without a creator.
func (inv *Inventory) ByCreator() map[int][]Notification {
	out := map[int][]Notification{}
	for _, list := range [][]Notification{inv.Subscriptions, inv.Alerts} {
		for _, n := range list {
			out[n.Creator.ID] = append(out[n.Creator.ID], n)
		}
	}
	return out
}

// OrphanReport is what deactivated users left running.
type OrphanReport struct {
	Capabilities Capabilities
	// ByCreator holds the items of each deactivated creator; key 0 holds
	// items with no creator at all.
	ByCreator map[int][]Notification
	// Creators are the deactivated users among the keys of ByCreator.
	Creators map[int]User
}

// Orphaned returns the subscriptions and alerts whose creator is
// deactivated or missing: Notifications plus one listing of the
// deactivated users, made at the same time. The newest Metabase lists only users without a tenant
// unless asked for tenants (src/metabase/users_rest/api.clj), so a
// deactivated tenant user's items are not reported.
//
// GET /api/pulse, an alert listing, GET /api/user?status=deactivated
func (c *Client) Orphaned(ctx context.Context) (*OrphanReport, error) {
	// The two listings do not depend on each other: one round trip, not two.
	var (
		inv   *Inventory
		users []User
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		inv, err = c.Notifications(gctx)
		return err
	})
	g.Go(func() (err error) {
		users, err = c.ListUsers(gctx, StatusDeactivated)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	gone := make(map[int]User, len(users))
	for _, u := range users {
		if !u.IsActive {
			gone[u.ID] = u
		}
	}
	rep := &OrphanReport{Capabilities: inv.Capabilities, ByCreator: map[int][]Notification{}, Creators: map[int]User{}}
	for id, items := range inv.ByCreator() {
		u, deactivated := gone[id]
		switch {
		case id == 0:
			rep.ByCreator[0] = items
		case deactivated:
			rep.ByCreator[id] = items
			rep.Creators[id] = u
		}
	}
	return rep, nil
}

// ----- listing -----

// notArchived asks for unarchived rows explicitly: the newest endpoints
// default archived to false, but older ones passed an absent parameter on
// as nil, and whether their queries then matched unarchived rows could not
// be confirmed (docs/metabase-notifications.md).
var notArchived = url.Values{"archived": {"false"}}

// listSubscriptions returns the active subscriptions.
//
// GET /api/pulse?archived=false
func (c *Client) listSubscriptions(ctx context.Context) ([]Notification, error) {
	var rows []pulseJSON
	err := c.do(ctx, request{method: "GET", route: "/api/pulse", path: "api/pulse", retry: true, query: notArchived}, &rows)
	if err != nil {
		return nil, err
	}
	out := make([]Notification, 0, len(rows))
	for i := range rows {
		if !rows[i].Archived {
			out = append(out, rows[i].notification(KindSubscription))
		}
	}
	return out, nil
}

// listAlerts returns the active alerts from the endpoint caps names.
func (c *Client) listAlerts(ctx context.Context, caps Capabilities) ([]Notification, error) {
	switch caps.Alerts {
	case AlertsFromNotificationAdmin:
		return c.listAdminAlerts(ctx)
	case AlertsFromNotification:
		var rows []notificationJSON
		err := c.do(ctx, request{
			method: "GET", route: "/api/notification", path: "api/notification", retry: true,
			query: url.Values{"payload_type": {"notification/card"}},
		}, &rows)
		if err != nil {
			return nil, err
		}
		inactive, err := c.inactiveRecipients(ctx, rows)
		if err != nil {
			return nil, err
		}
		out := make([]Notification, 0, len(rows))
		for i := range rows {
			// Versions without the payload_type filter return system events too.
			if rows[i].isActiveAlert() {
				out = append(out, rows[i].notification(inactive))
			}
		}
		return out, nil
	case AlertsFromAlertAPI:
		var rows []pulseJSON
		err := c.do(ctx, request{method: "GET", route: "/api/alert", path: "api/alert", retry: true, query: notArchived}, &rows)
		if err != nil {
			return nil, err
		}
		out := make([]Notification, 0, len(rows))
		for i := range rows {
			if !rows[i].Archived {
				out = append(out, rows[i].notification(KindAlert))
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("metabase: list alerts: unknown source %q", caps.Alerts)
}

// listAdminAlerts walks GET /api/notification/admin in pages of
// notificationPageSize, ordered by id so pages do not shift.
//
// GET /api/notification/admin?active=true&sort_column=id&sort_direction=asc&limit=N&offset=N
func (c *Client) listAdminAlerts(ctx context.Context) ([]Notification, error) {
	var out []Notification
	for offset := 0; ; {
		var page struct {
			Data  []notificationJSON `json:"data"`
			Total int                `json:"total"`
		}
		err := c.do(ctx, request{
			method: "GET", route: "/api/notification/admin", path: "api/notification/admin", retry: true,
			query: url.Values{
				"active": {"true"}, "sort_column": {"id"}, "sort_direction": {"asc"},
				"limit": {strconv.Itoa(notificationPageSize)}, "offset": {strconv.Itoa(offset)},
			},
		}, &page)
		if err != nil {
			return nil, err
		}
		for i := range page.Data {
			if page.Data[i].isActiveAlert() {
				out = append(out, page.Data[i].notification(nil))
			}
		}
		offset += len(page.Data)
		if len(page.Data) == 0 || offset >= page.Total {
			return out, nil
		}
	}
}

// ----- JSON shapes (docs/metabase-notifications.md) -----

type creatorJSON struct {
	ID         int     `json:"id"`
	Email      string  `json:"email"`
	FirstName  *string `json:"first_name"`
	LastName   *string `json:"last_name"`
	CommonName string  `json:"common_name"`
	IsActive   *bool   `json:"is_active"`
}

func creatorOf(id *int, j *creatorJSON) Creator {
	var c Creator
	if id != nil {
		c.ID = *id
	}
	if j == nil {
		return c
	}
	if c.ID == 0 {
		c.ID = j.ID
	}
	u := User{Email: j.Email, CommonName: j.CommonName}
	if j.FirstName != nil {
		u.FirstName = *j.FirstName
	}
	if j.LastName != nil {
		u.LastName = *j.LastName
	}
	c.Email, c.Name, c.Active = j.Email, u.Name(), j.IsActive
	return c
}

// pulseJSON is a pulse of GET /api/pulse, or an alert of GET /api/alert
// before v0.54 (a pulse with a single "card").
type pulseJSON struct {
	ID          int           `json:"id"`
	Name        *string       `json:"name"`
	CreatorID   *int          `json:"creator_id"`
	Creator     *creatorJSON  `json:"creator"`
	DashboardID *int          `json:"dashboard_id"`
	Archived    bool          `json:"archived"`
	SkipIfEmpty bool          `json:"skip_if_empty"`
	Card        *cardJSON     `json:"card"`
	Channels    []channelJSON `json:"channels"`
}

type cardJSON struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// channelJSON is a pulse channel: "email" with user recipients (an id) and
// other addresses (an email only), "slack" with details.channel, or "http".
type channelJSON struct {
	ChannelType string          `json:"channel_type"`
	Enabled     *bool           `json:"enabled"`
	Details     json.RawMessage `json:"details"`
	Recipients  []struct {
		ID    *int   `json:"id"`
		Email string `json:"email"`
	} `json:"recipients"`
}

func (p *pulseJSON) notification(kind NotificationKind) Notification {
	n := Notification{Kind: kind, ID: p.ID, Creator: creatorOf(p.CreatorID, p.Creator)}
	if p.Name != nil {
		n.Name = *p.Name
	}
	if p.DashboardID != nil {
		n.DashboardID = *p.DashboardID
	}
	if p.Card != nil {
		n.CardID = p.Card.ID
		if n.Name == "" {
			n.Name = p.Card.Name
		}
	}
	for _, ch := range p.Channels {
		if ch.Enabled != nil && !*ch.Enabled {
			continue // a disabled channel sends nothing
		}
		switch ch.ChannelType {
		case "email":
			for _, r := range ch.Recipients {
				switch {
				case r.ID != nil:
					n.EmailUsers++
				case r.Email != "":
					n.EmailAddresses++
				}
			}
		case "slack":
			var d struct {
				Channel any `json:"channel"`
			}
			if json.Unmarshal(ch.Details, &d) == nil {
				if s, ok := d.Channel.(string); ok && s != "" {
					n.SlackChannels = append(n.SlackChannels, s)
				}
			}
		case "http":
			n.Webhooks++
		}
	}
	return n
}

// notificationJSON is a hydrated notification of GET /api/notification, or
// a row of GET /api/notification/admin (which adds last_check, last_send
// and creator.is_active).
type notificationJSON struct {
	ID          int          `json:"id"`
	Active      *bool        `json:"active"`
	CreatorID   *int         `json:"creator_id"`
	Creator     *creatorJSON `json:"creator"`
	PayloadType string       `json:"payload_type"`
	Payload     *struct {
		CardID int       `json:"card_id"`
		Card   *cardJSON `json:"card"`
	} `json:"payload"`
	Handlers []struct {
		ChannelType string `json:"channel_type"`
		Active      *bool  `json:"active"`
		Recipients  []struct {
			Type    string          `json:"type"`
			UserID  *int            `json:"user_id"`
			User    json.RawMessage `json:"user"`
			Details json.RawMessage `json:"details"`
		} `json:"recipients"`
	} `json:"handlers"`
	LastCheck *runJSON `json:"last_check"`
	LastSend  *runJSON `json:"last_send"`
}

type runJSON struct {
	At     string  `json:"at"`
	Status string  `json:"status"`
	Error  *string `json:"error"`
}

func (r *runJSON) status() *RunStatus {
	if r == nil {
		return nil
	}
	s := &RunStatus{Failed: r.Status == "failing"}
	if t, err := parseTime(r.At); err == nil {
		s.At = t
	}
	if r.Error != nil {
		s.Error = *r.Error
	}
	return s
}

func (j *notificationJSON) isActiveAlert() bool {
	return j.PayloadType == "notification/card" && (j.Active == nil || *j.Active)
}

// rawValue returns details.value of a raw-value recipient when it is a
// string.
func rawValue(details json.RawMessage) string {
	var d struct {
		Value any `json:"value"`
	}
	if json.Unmarshal(details, &d) != nil {
		return ""
	}
	s, _ := d.Value.(string)
	return strings.TrimSpace(s)
}

// notification converts a row. inactive holds the ids of deactivated
// users, for versions that hydrate them like anyone else (see
// inactiveRecipients); nil where "user": null already marks them.
func (j *notificationJSON) notification(inactive map[int]bool) Notification {
	n := Notification{
		Kind: KindAlert, ID: j.ID, Creator: creatorOf(j.CreatorID, j.Creator),
		LastCheck: j.LastCheck.status(), LastSend: j.LastSend.status(),
	}
	if j.Payload != nil {
		n.CardID = j.Payload.CardID
		if j.Payload.Card != nil {
			n.Name = j.Payload.Card.Name
		}
	}
	for _, h := range j.Handlers {
		if h.Active != nil && !*h.Active {
			continue
		}
		switch h.ChannelType {
		case "channel/email":
			for _, r := range h.Recipients {
				switch r.Type {
				case "notification-recipient/user":
					// "user": null marks a deactivated user, who no longer
					// receives (recipients-detail); older versions hydrate
					// them like anyone else, and inactive says who they are.
					if string(r.User) != "null" && (r.UserID == nil || !inactive[*r.UserID]) {
						n.EmailUsers++
					}
				case "notification-recipient/raw-value":
					if rawValue(r.Details) != "" {
						n.EmailAddresses++
					}
				case "notification-recipient/group":
					n.EmailGroups++
				}
			}
		case "channel/slack":
			for _, r := range h.Recipients {
				if v := rawValue(r.Details); r.Type == "notification-recipient/raw-value" && v != "" {
					n.SlackChannels = append(n.SlackChannels, v)
				}
			}
		case "channel/http":
			n.Webhooks++
		}
	}
	return n
}
