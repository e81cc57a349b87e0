package metabasetest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file models what a user leaves running in Metabase: dashboard
// subscriptions (pulses), alerts and the items of personal collections, in
// the three generations of Metabase's API. The rules and their sources are
// in docs/metabase-notifications.md; each handler (pulse_handlers.go,
// alert_handlers.go, notification_api_handlers.go, collection_handlers.go)
// names the upstream file it follows.

// Era selects which generation of the notification API the fake imitates.
// Choose it with WithEra; the zero value is the newest.
type Era int

const (
	// EraNotificationAdmin is the newest Metabase: alerts are notifications
	// (GET /api/notification), and the admin API of
	// src/metabase/notification/api/admin.clj exists: GET
	// /api/notification/admin (filters creator_id, creatorless, active; each
	// row with last_check and last_send) and POST
	// /api/notification/admin/bulk (archive, change-creator). The release
	// that first shipped it is not pinned (its docs page came with
	// metabase/metabase#75478 in 2026); the fake reports v0.61.0.
	EraNotificationAdmin Era = iota
	// EraNotification is v0.54 up to the admin API: alerts moved from pulses
	// to notifications ("API changelog", Metabase 0.54.0), GET
	// /api/notification lists them, /api/alert keeps only its read
	// endpoints (GET /, GET /:id) in the old shape, and
	// /api/notification/admin answers 404 "API endpoint does not exist.".
	// The fake reports v0.56.0.
	EraNotification
	// EraPulseAlerts is before v0.54: alerts are pulses with an
	// alert_condition, listed by GET /api/alert and archived by PUT
	// /api/alert/:id (src/metabase/api/alert.clj); /api/notification
	// answers 404. The fake reports v0.53.0.
	EraPulseAlerts
)

// Tag returns the version tag the fake reports in this era, in the
// x-metabase-version header and GET /api/session/properties.
func (e Era) Tag() string {
	switch e {
	case EraNotification:
		return "v0.56.0"
	case EraPulseAlerts:
		return "v0.53.0"
	}
	return Version
}

// String names the era.
func (e Era) String() string {
	switch e {
	case EraNotificationAdmin:
		return "notification-admin"
	case EraNotification:
		return "notification"
	case EraPulseAlerts:
		return "pulse-alerts"
	}
	return fmt.Sprintf("Era(%d)", int(e))
}

// WithEra makes the fake imitate the given generation of Metabase's
// notification API (default EraNotificationAdmin).
func WithEra(e Era) Option {
	return func(c *config) { c.era = e }
}

// Subscription is a dashboard subscription (a pulse) of the fake, as given
// to AddSubscription and returned by SubscriptionByID.
type Subscription struct {
	ID int // 0 in AddSubscription: the next free id
	// Name is the subscription's name; GET /api/pulse sorts by it,
	// ignoring case.
	Name string
	// DashboardID is the dashboard it sends; 0 makes a legacy pulse of
	// cards, which GET /api/pulse still lists for admins.
	DashboardID int
	// DashboardArchived hides the subscription from GET /api/pulse, which
	// only returns subscriptions of unarchived dashboards
	// (src/metabase/pulse/models/pulse.clj, retrieve-pulses).
	DashboardArchived bool
	CreatorID         int
	// UserIDs are Metabase users on the email channel. Deactivated users
	// are dropped, as Metabase deletes their recipient rows (see
	// prunePulseRecipientsLocked).
	UserIDs []int
	// Emails are other addresses on the email channel.
	Emails []string
	// SlackChannels are the Slack channels it posts to, one channel each,
	// e.g. "#sales".
	SlackChannels []string
	CardIDs       []int
	Archived      bool
	SkipIfEmpty   bool
}

// Run is the outcome of an alert's latest run or send, as GET
// /api/notification/admin reports it in last_check and last_send.
type Run struct {
	At     time.Time
	Failed bool
	Error  string // with Failed: the reason Metabase recorded
}

// Alert is an alert on a question of the fake, as given to AddAlert and
// returned by AlertByID.
type Alert struct {
	ID       int // 0 in AddAlert: the next free id
	CardID   int
	CardName string
	// CreatorID is the creator; 0 means none (notification.creator_id is
	// nullable, and the admin API counts such alerts as creatorless).
	CreatorID     int
	UserIDs       []int
	Emails        []string
	SlackChannels []string
	// Archived is active=false in the notification eras and archived=true
	// when alerts are pulses.
	Archived bool
	// LastCheck and LastSend are reported by GET /api/notification/admin
	// only; nil means no run in the last 90 days.
	LastCheck *Run
	LastSend  *Run
}

// CollectionItem is an item of a personal collection, as given to
// AddCollectionItem.
type CollectionItem struct {
	ID int // 0 in AddCollectionItem: the next free id
	// Model is Metabase's model name: "card", "dataset", "dashboard",
	// "collection", … (default "card").
	Model    string
	Name     string
	Archived bool
}

// personalCollectionID is the id of a user's personal collection. It is the
// same rule the fake's GET /api/user rows use for personal_collection_id.
func personalCollectionID(userID int) int { return userID + 1000 }

// systemEventNotificationID is the seeded system-event notification: real
// Metabase seeds such notifications (src/metabase/notification/seed.clj),
// and GET /api/notification returns them to admins unless payload_type is
// given, so a client must not take every notification for an alert.
const systemEventNotificationID = 1

// notifState holds the fake's subscriptions, alerts and collection items.
// It is guarded by Server.mu.
type notifState struct {
	era       Era
	pulses    map[int]*Subscription
	alerts    map[int]*Alert
	items     map[int][]CollectionItem // by collection id
	nextPulse int
	nextNotif int // alert ids in the notification eras
	nextItem  int
	removals  []RemovalEmail // sent by PUT /api/notification/:id (notification_put.go)
}

func (n *notifState) init(era Era) {
	n.era = era
	n.pulses = map[int]*Subscription{}
	n.alerts = map[int]*Alert{}
	n.items = map[int][]CollectionItem{}
	n.nextPulse, n.nextNotif, n.nextItem = 1, systemEventNotificationID+1, 1
}

// alertsArePulses reports whether alerts live in the pulse table, sharing
// its ids (before v0.54).
func (n *notifState) alertsArePulses() bool { return n.era == EraPulseAlerts }

func (n *notifState) takeID(id int, next *int, used func(int) bool) (int, error) {
	if id == 0 {
		for used(*next) {
			*next++
		}
		id = *next
	}
	if used(id) {
		return 0, fmt.Errorf("id %d already in use", id)
	}
	if id >= *next {
		*next = id + 1
	}
	return id, nil
}

func (n *notifState) pulseIDUsed(id int) bool {
	_, p := n.pulses[id]
	_, a := n.alerts[id]
	return p || (a && n.alertsArePulses())
}

func (n *notifState) alertIDUsed(id int) bool {
	if n.alertsArePulses() {
		return n.pulseIDUsed(id)
	}
	_, a := n.alerts[id]
	return a || id == systemEventNotificationID
}

func cloneSubscription(p *Subscription) Subscription {
	x := *p
	x.UserIDs = slices.Clone(p.UserIDs)
	x.Emails = slices.Clone(p.Emails)
	x.SlackChannels = slices.Clone(p.SlackChannels)
	x.CardIDs = slices.Clone(p.CardIDs)
	return x
}

func cloneRun(r *Run) *Run {
	if r == nil {
		return nil
	}
	x := *r
	return &x
}

func cloneAlert(a *Alert) Alert {
	x := *a
	x.UserIDs = slices.Clone(a.UserIDs)
	x.Emails = slices.Clone(a.Emails)
	x.SlackChannels = slices.Clone(a.SlackChannels)
	x.LastCheck, x.LastSend = cloneRun(a.LastCheck), cloneRun(a.LastSend)
	return x
}

// AddSubscription adds a dashboard subscription and returns it as stored.
// A taken id fails the test. The creator need not exist, as after a user
// row is gone; tests normally use users added with AddUser.
func (s *Server) AddSubscription(p Subscription) Subscription {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.notif.takeID(p.ID, &s.notif.nextPulse, s.notif.pulseIDUsed)
	if err != nil {
		s.tb.Fatalf("metabasetest: AddSubscription: %v", err)
	}
	p.ID = id
	if p.Name == "" {
		p.Name = fmt.Sprintf("Subscription %d", id)
	}
	x := cloneSubscription(&p)
	s.notif.pulses[id] = &x
	return cloneSubscription(&x)
}

// SeedSubscriptions adds n dashboard subscriptions (for benchmarks), named
// "Subscription <id>", each created by creators[i%len(creators)], sent to
// one user, one other address and one Slack channel.
func (s *Server) SeedSubscriptions(n int, creators []int) {
	s.tb.Helper()
	if len(creators) == 0 {
		s.tb.Fatalf("metabasetest: SeedSubscriptions: no creators")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		id, err := s.notif.takeID(0, &s.notif.nextPulse, s.notif.pulseIDUsed)
		if err != nil {
			s.tb.Fatalf("metabasetest: SeedSubscriptions: %v", err)
		}
		c := creators[i%len(creators)]
		s.notif.pulses[id] = &Subscription{
			ID: id, Name: fmt.Sprintf("Subscription %d", id), DashboardID: 1 + i%100, CreatorID: c,
			UserIDs: []int{c}, Emails: []string{fmt.Sprintf("list%d@example.org", i%7)},
			SlackChannels: []string{"#reports"},
		}
	}
}

// SubscriptionByID returns the current state of a subscription, for
// assertions.
func (s *Server) SubscriptionByID(id int) (Subscription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prunePulseRecipientsLocked()
	p, ok := s.notif.pulses[id]
	if !ok {
		return Subscription{}, false
	}
	return cloneSubscription(p), true
}

// AddAlert adds an alert and returns it as stored. In EraPulseAlerts its id
// comes from the pulse table, so it never equals a subscription's id. A
// taken id fails the test.
func (s *Server) AddAlert(a Alert) Alert {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	next := &s.notif.nextNotif
	if s.notif.alertsArePulses() {
		next = &s.notif.nextPulse
	}
	id, err := s.notif.takeID(a.ID, next, s.notif.alertIDUsed)
	if err != nil {
		s.tb.Fatalf("metabasetest: AddAlert: %v", err)
	}
	a.ID = id
	if a.CardID == 0 {
		a.CardID = 100 + id
	}
	if a.CardName == "" {
		a.CardName = fmt.Sprintf("Question %d", a.CardID)
	}
	x := cloneAlert(&a)
	s.notif.alerts[id] = &x
	return cloneAlert(&x)
}

// AlertByID returns the current state of an alert, for assertions.
func (s *Server) AlertByID(id int) (Alert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prunePulseRecipientsLocked()
	a, ok := s.notif.alerts[id]
	if !ok {
		return Alert{}, false
	}
	return cloneAlert(a), true
}

// AddCollectionItem puts an item in the personal collection of the user
// with ownerID and returns it as stored. A missing or non-personal user
// fails the test: only personal users have personal collections.
func (s *Server) AddCollectionItem(ownerID int, it CollectionItem) CollectionItem {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[ownerID]
	if u == nil || u.kind != "personal" {
		s.tb.Fatalf("metabasetest: AddCollectionItem: no personal user %d", ownerID)
	}
	if it.ID == 0 {
		it.ID = s.notif.nextItem
	}
	s.notif.nextItem = max(s.notif.nextItem, it.ID+1)
	if it.Model == "" {
		it.Model = "card"
	}
	if it.Name == "" {
		it.Name = fmt.Sprintf("Item %d", it.ID)
	}
	cid := personalCollectionID(ownerID)
	s.notif.items[cid] = append(s.notif.items[cid], it)
	return it
}

// personalCollectionOwnerLocked returns the user whose personal collection
// has id cid, or nil.
func (s *Server) personalCollectionOwnerLocked(cid int) *user {
	u := s.users[cid-1000]
	if u == nil || u.kind != "personal" || personalCollectionID(u.ID) != cid {
		return nil
	}
	return u
}

// prunePulseRecipientsLocked drops deactivated users from the recipients
// of pulses, and of alerts while alerts are pulses: Metabase deletes a
// user's PulseChannelRecipient rows when it deactivates them
// (src/metabase/users/models/user.clj, before-update), so they stay off
// after a reactivation. The fake does it when it next serves a
// notification endpoint or SubscriptionByID/AlertByID, not at the DELETE
// itself: a user deactivated and reactivated with no such call in between
// keeps their subscriptions here.
func (s *Server) prunePulseRecipientsLocked() {
	active := func(id int) bool { return !s.recipientActiveLocked(id) }
	for _, p := range s.notif.pulses {
		p.UserIDs = slices.DeleteFunc(p.UserIDs, active)
	}
	if s.notif.alertsArePulses() {
		for _, a := range s.notif.alerts {
			a.UserIDs = slices.DeleteFunc(a.UserIDs, active)
		}
	}
}

// recipientActiveLocked reports whether a user recipient still receives:
// Metabase drops deactivated users from recipient lists
// (pulse.db/active-recipients-for-channels; recipients-detail in
// src/metabase/notification/models.clj).
func (s *Server) recipientActiveLocked(id int) bool {
	u := s.users[id]
	return u != nil && u.Active
}

// lowerName is the sort key of GET /api/pulse and GET /api/alert.
func lowerName(s string) string { return strings.ToLower(s) }
