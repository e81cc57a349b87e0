package access

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// handoverFixture is a core over the real Metabase client and the fake Metabase, with jane (who
// created two subscriptions and one alert), bob (her successor) and carl (who created nothing).
type handoverFixture struct {
	t          *testing.T
	fake       *metabasetest.Server
	client     *metabase.Client
	st         *store.Store
	notes      *recordingNotifier
	jane, bob  metabasetest.User
	carl       metabasetest.User
	subs       []metabasetest.Subscription
	alert      metabasetest.Alert
	newService func(id string) *Service
}

func newHandoverFixture(t *testing.T, era metabasetest.Era, tune func(*Config)) *handoverFixture {
	t.Helper()
	f := &handoverFixture{t: t, fake: metabasetest.New(t, metabasetest.WithEra(era)), notes: &recordingNotifier{}}
	f.jane = f.fake.AddUser(metabasetest.User{Email: "jane@example.com", FirstName: "Jane", Active: true})
	f.bob = f.fake.AddUser(metabasetest.User{Email: "bob@example.com", FirstName: "Bob", Active: true})
	f.carl = f.fake.AddUser(metabasetest.User{Email: "carl@example.com", FirstName: "Carl", Active: true})
	f.subs = []metabasetest.Subscription{
		f.fake.AddSubscription(metabasetest.Subscription{Name: "Weekly sales", DashboardID: 7, CreatorID: f.jane.ID,
			UserIDs: []int{f.bob.ID}, Emails: []string{"team@example.org"}, SlackChannels: []string{"#sales"}}),
		f.fake.AddSubscription(metabasetest.Subscription{Name: "Daily ops", DashboardID: 8, CreatorID: f.jane.ID, SlackChannels: []string{"#ops"}}),
	}
	f.alert = f.fake.AddAlert(metabasetest.Alert{CardID: 12, CardName: "Revenue drop", CreatorID: f.jane.ID, Emails: []string{"cfo@example.org"}})
	for range 3 {
		f.fake.AddCollectionItem(f.jane.ID, metabasetest.CollectionItem{})
	}
	c, err := metabase.New(f.fake.URL(), metabase.WithAPIKey(metabasetest.AdminAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	f.st, err = store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.newService = func(id string) *Service {
		cfg := Config{
			Policy: Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequireReason: true, RequestTTL: time.Hour,
				FinalReminder: time.Minute, ReturnLocation: time.UTC, MaxReturnAhead: 366 * 24 * time.Hour},
			Execution: Execution{InstanceID: id, BulkConcurrency: 4, ExecLease: 2 * time.Minute, OutboxLease: 30 * time.Second, Tick: 20 * time.Millisecond},
		}
		if tune != nil {
			tune(&cfg)
		}
		s, err := New(cfg, Deps{Store: f.st, Metabase: c, Notifications: c,
			Directory: stubDirectory{approvers: map[string]bool{"UAPP": true}}, Notifier: f.notes})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return f
}

func (f *handoverFixture) disable(s *Service, hv *HandoverRequest, emails ...string) approval.Request {
	f.t.Helper()
	c := ChangeRequest{Action: approval.Disable, Reason: "Left", Requester: "UREQ", Channel: "COPS", Handover: hv}
	for _, e := range emails {
		c.Targets = append(c.Targets, TargetRef{Kind: ByEmail, Email: e, Raw: e})
	}
	r, err := s.Submit(f.t.Context(), c)
	if err != nil {
		f.t.Fatalf("submit: %v", err)
	}
	return r
}

func handoverTo(email string, archive bool) *HandoverRequest {
	return &HandoverRequest{Successor: &TargetRef{Kind: ByEmail, Email: email, Raw: email}, Archive: archive}
}

// exactCount counts the fake's requests with exactly this method and path.
func (f *handoverFixture) exactCount(method, path string) int {
	n := 0
	for _, r := range f.fake.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

func TestSubmitRecordsWhatTargetsLeaveRunning(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	s := f.newService("A")
	r := f.disable(s, nil, "jane@example.com", "carl@example.com")
	jane, carl := r.Targets[0].Consequences, r.Targets[1].Consequences
	if jane.Subscriptions != 2 || jane.Alerts != 1 || jane.CollectionItems != 3 || len(jane.Items) != 3 {
		t.Fatalf("jane's consequences %+v, want 2 subscriptions, 1 alert, 3 collection items, 3 items listed", jane)
	}
	weekly := jane.Items[1] // GET /api/pulse sorts by name: "Daily ops", then "Weekly sales"
	if weekly.Name != "Weekly sales" || weekly.DashboardID != 7 || weekly.Recipients != 2 || len(weekly.SlackChannels) != 1 {
		t.Errorf("the weekly subscription is stored as %+v", weekly)
	}
	if alert := jane.Items[2]; alert.Kind != approval.Alert || alert.CardID != 12 || alert.Recipients != 1 {
		t.Errorf("the alert is stored as %+v", alert)
	}
	if !carl.Empty() {
		t.Errorf("carl created nothing, but his consequences are %+v", carl)
	}
	if lk := r.Lookup; lk == nil || lk.Error != "" || !lk.MoveAlerts || !lk.RunStatus {
		t.Errorf("lookup %+v, want the newest Metabase's capabilities and no error", lk)
	}
	stored, err := f.st.Get(t.Context(), r.ID)
	if err != nil || stored.Targets[0].Consequences.Alerts != 1 {
		t.Fatalf("the stored request lost the consequences (err %v)", err)
	}
}

// Looking up adds one call per kind per request: one subscription listing and one alert listing,
// whatever the number of targets or items.
func TestSubmitLookupCallBudget(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	f.fake.SeedSubscriptions(500, []int{f.jane.ID, f.carl.ID})
	s := f.newService("A")
	f.disable(s, nil, "jane@example.com", "carl@example.com", "bob@example.com")
	if n := f.exactCount("GET", "/api/pulse"); n != 1 {
		t.Errorf("GET /api/pulse called %d times for one request, want 1", n)
	}
	if n := f.exactCount("GET", "/api/notification/admin"); n != 2 { // the capability probe, then the listing
		t.Errorf("GET /api/notification/admin called %d times, want 2 (probe and listing)", n)
	}
}

func TestHandoverMovesAlertsAndListsOrArchivesSubscriptions(t *testing.T) {
	for _, archive := range []bool{false, true} {
		t.Run(map[bool]string{false: "list", true: "archive"}[archive], func(t *testing.T) {
			f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
			s := f.newService("A")
			r := f.disable(s, handoverTo("bob@example.com", archive), "jane@example.com")
			if r.Handover == nil || r.Handover.SuccessorID != f.bob.ID || r.Handover.Archive != archive {
				t.Fatalf("hand-over stored as %+v", r.Handover)
			}
			done, err := s.Approve(t.Context(), r.ID, "UAPP")
			if err != nil {
				t.Fatal(err)
			}
			if done.State != approval.Succeeded {
				t.Fatalf("request %s: %+v", done.State, done.Targets[0].Result)
			}
			if a, _ := f.fake.AlertByID(f.alert.ID); a.CreatorID != f.bob.ID || a.Archived {
				t.Errorf("the alert is created by %d (archived %v), want bob %d", a.CreatorID, a.Archived, f.bob.ID)
			}
			for _, sub := range f.subs {
				if got, _ := f.fake.SubscriptionByID(sub.ID); got.Archived != archive || got.CreatorID != f.jane.ID {
					t.Errorf("subscription %d archived %v (creator %d), want archived %v and still jane's", sub.ID, got.Archived, got.CreatorID, archive)
				}
			}
			c := done.HandoverCounts()
			want := approval.HandoverCounts{Moved: 1, Left: 2}
			if archive {
				want = approval.HandoverCounts{Moved: 1, Archived: 2}
			}
			if c != want {
				t.Errorf("hand-over counts %+v, want %+v", c, want)
			}
			if n := f.exactCount("POST", "/api/notification/admin/bulk"); n != 1 {
				t.Errorf("%d bulk calls, want 1", n)
			}
			if !done.Targets[0].HandedOver.UserDone {
				t.Error("the hand-over does not record that the request disabled jane")
			}
		})
	}
}

// A takeover after the process died in the middle of the hand-over finds the alert moved and
// jane deactivated: it records both as done without calling Metabase's writes again.
func TestHandoverTakeoverDoesNotRepeat(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	a := f.newService("A")
	r := f.disable(a, handoverTo("bob@example.com", true), "jane@example.com")
	_, err := f.st.Update(t.Context(), r.ID, func(r *approval.Request) ([]store.Outbox, error) {
		if _, err := r.Approve("UAPP", time.Now(), approval.Policy{}); err != nil {
			return nil, err
		}
		return nil, r.Start("A", time.Now().Add(-time.Hour), time.Minute) // A's lease ran out long ago
	})
	if err != nil {
		t.Fatal(err)
	}
	// What A did before it died: the DELETE, the move and one of the two archives.
	if err := f.client.DisableUser(t.Context(), f.jane.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.ChangeAlertCreator(t.Context(), []int{f.alert.ID}, f.bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.client.ArchiveSubscription(t.Context(), f.subs[0].ID); err != nil {
		t.Fatal(err)
	}
	before := len(f.fake.Requests())
	b := f.newService("B")
	timers{b}.runDue(t.Context())
	b.work.Wait()
	got, err := f.st.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != approval.Succeeded || got.Targets[0].Result.Message != "confirmed inactive after a restart" {
		t.Fatalf("after the takeover: %s, %+v", got.State, got.Targets[0].Result)
	}
	if c := got.HandoverCounts(); c != (approval.HandoverCounts{Moved: 1, Archived: 2}) {
		t.Errorf("hand-over counts %+v, want the alert moved and both subscriptions archived", c)
	}
	var writes []string
	for _, req := range f.fake.Requests()[before:] {
		if req.Method != "GET" {
			writes = append(writes, req.Method+" "+req.Path)
		}
	}
	want := []string{"PUT /api/pulse/" + strconv.Itoa(f.subs[1].ID)}
	if strings.Join(writes, ",") != strings.Join(want, ",") {
		t.Errorf("the takeover wrote %v, want only %v", writes, want)
	}
	for _, it := range got.Targets[0].HandedOver.Items {
		if it.Kind == approval.Alert && !strings.Contains(it.Message, "confirmed after a restart") {
			t.Errorf("the moved alert's line says %q", it.Message)
		}
	}
}

// A failed hand-over fails the target after its disable; the retry finishes the hand-over, keeps
// the disable as done and repeats nothing.
func TestHandoverFailureThenRetry(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	s := f.newService("A")
	r := f.disable(s, handoverTo("bob@example.com", false), "jane@example.com")
	f.fake.FailNext("POST", "/api/notification/admin/bulk", 1, 500, "database is down")
	done, err := s.Approve(t.Context(), r.ID, "UAPP")
	if err != nil {
		t.Fatal(err)
	}
	res := done.Targets[0].Result
	if done.State != approval.Failed || !strings.HasPrefix(res.Message, "disabled, but 1 of 3 items of the hand-over failed") {
		t.Fatalf("after a failed move: %s, %+v", done.State, res)
	}
	retried, err := s.Retry(t.Context(), r.ID, "UAPP")
	if err != nil {
		t.Fatal(err)
	}
	res = retried.Targets[0].Result
	if retried.State != approval.Succeeded || res.Outcome != approval.Done || res.Message != "disabled by an earlier attempt" {
		t.Fatalf("after the retry: %s, %+v", retried.State, res)
	}
	if c := retried.HandoverCounts(); c != (approval.HandoverCounts{Moved: 1, Left: 2}) {
		t.Errorf("hand-over counts %+v", c)
	}
	if n := f.fake.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("%d DELETE calls, want 1", n)
	}
	if a, _ := f.fake.AlertByID(f.alert.ID); a.CreatorID != f.bob.ID {
		t.Errorf("the alert belongs to %d after the retry, want bob", a.CreatorID)
	}
}

func TestHandoverOnOlderMetabase(t *testing.T) {
	tests := []struct {
		era          metabasetest.Era
		archive      bool
		wantAlert    approval.ItemOutcome
		wantArchived bool
	}{
		{metabasetest.EraNotification, false, approval.ItemLeft, false},
		// 0.54 until the admin API: no move, but PUT /api/notification/:id archives.
		{metabasetest.EraNotification, true, approval.ItemArchived, true},
		{metabasetest.EraPulseAlerts, false, approval.ItemLeft, false},
		{metabasetest.EraPulseAlerts, true, approval.ItemArchived, true},
	}
	for _, tt := range tests {
		t.Run(tt.era.String()+map[bool]string{false: "/list", true: "/archive"}[tt.archive], func(t *testing.T) {
			f := newHandoverFixture(t, tt.era, nil)
			s := f.newService("A")
			r := f.disable(s, handoverTo("bob@example.com", tt.archive), "jane@example.com")
			if r.Lookup.MoveAlerts {
				t.Fatalf("%s claims it can move alerts", tt.era)
			}
			done, err := s.Approve(t.Context(), r.ID, "UAPP")
			if err != nil || done.State != approval.Succeeded {
				t.Fatalf("approve: %v, %s %+v", err, done.State, done.Targets[0].Result)
			}
			var alert approval.ItemResult
			for _, it := range done.Targets[0].HandedOver.Items {
				if it.Kind == approval.Alert {
					alert = it
				}
			}
			if alert.Outcome != tt.wantAlert {
				t.Errorf("the alert's outcome is %s (%s), want %s", alert.Outcome, alert.Message, tt.wantAlert)
			}
			if tt.wantAlert == approval.ItemLeft && !strings.Contains(alert.Message, "cannot") {
				t.Errorf("the alert left in place does not say why: %q", alert.Message)
			}
			if a, _ := f.fake.AlertByID(f.alert.ID); a.CreatorID != f.jane.ID || a.Archived != tt.wantArchived {
				t.Errorf("the alert: creator %d archived %v", a.CreatorID, a.Archived)
			}
			if n := f.fake.Count("POST", "/api/notification/admin/bulk"); n != 0 {
				t.Errorf("%d bulk calls on an era without them", n)
			}
			if got := len(f.fake.RemovalEmails()); tt.era == metabasetest.EraNotification && got != map[bool]int{false: 0, true: 1}[tt.archive] {
				t.Errorf("%d rounds of removal emails, want one when archived", got)
			}
			if tt.era == metabasetest.EraNotification && r.Lookup.ArchiveAlertsEmails != true {
				t.Errorf("the lookup does not know archiving an alert emails its recipients")
			}
		})
	}
}

func TestHandoverDryRunWritesNothing(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, func(c *Config) { c.Policy.DryRun = true })
	s := f.newService("A")
	r := f.disable(s, handoverTo("bob@example.com", true), "jane@example.com")
	done, err := s.Approve(t.Context(), r.ID, "UAPP")
	if err != nil || done.State != approval.Succeeded {
		t.Fatalf("approve: %v %s", err, done.State)
	}
	for _, req := range f.fake.Requests() {
		if req.Method != "GET" {
			t.Errorf("a dry run called %s %s", req.Method, req.Path)
		}
	}
	for _, it := range done.Targets[0].HandedOver.Items {
		if it.Message != "dry run: not changed" {
			t.Errorf("item %s %d says %q in a dry run", it.Kind, it.ID, it.Message)
		}
	}
	if c := done.HandoverCounts(); c != (approval.HandoverCounts{Moved: 1, Archived: 2}) {
		t.Errorf("a dry run counts %+v, want what it would do", c)
	}
}

func TestHandoverSuccessorChecks(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	f.fake.AddUser(metabasetest.User{Email: "gone@example.com", FirstName: "Gone", Active: false})
	s := f.newService("A")
	tests := []struct {
		name string
		hv   *HandoverRequest
		want Code
	}{
		{"inactive successor", handoverTo("gone@example.com", false), SuccessorInactive},
		{"successor is a target", handoverTo("jane@example.com", false), SuccessorIsTarget},
		{"unknown successor", handoverTo("nobody@example.com", false), UnknownEmail},
		{"neither successor nor archive", &HandoverRequest{}, HandoverNeedsSuccessor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ChangeRequest{Action: approval.Disable, Reason: "Left", Requester: "UREQ", Channel: "COPS", Handover: tt.hv,
				Targets: []TargetRef{{Kind: ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}}
			for name, call := range map[string]func() error{
				"prepare": func() error { _, err := s.Prepare(t.Context(), c); return err },
				"submit":  func() error { _, err := s.Submit(t.Context(), c); return err },
			} {
				var rf *Refusal
				if err := call(); !errors.As(err, &rf) || rf.Code != tt.want || !errors.Is(err, ErrSuccessor) {
					t.Errorf("%s: %v, want refusal %s of the successor", name, err, tt.want)
				}
			}
		})
	}
	if rs, err := f.st.List(t.Context()); err != nil || len(rs) != 0 {
		t.Errorf("refused hand-overs stored %d requests (%v)", len(rs), err)
	}
	c := ChangeRequest{Action: approval.Enable, Reason: "Back", Requester: "UREQ", Channel: "COPS", Handover: handoverTo("bob@example.com", false),
		Targets: []TargetRef{{Kind: ByEmail, Email: "gone@example.com", Raw: "gone@example.com"}}}
	var rf *Refusal
	if _, err := s.Prepare(t.Context(), c); !errors.As(err, &rf) || rf.Code != HandoverOnlyDisable {
		t.Errorf("a hand-over with an enable: %v", err)
	}
}

// The orphans report finds what a user deactivated outside the bot left running, and its request
// hands it over without touching the user.
func TestOrphansRequestHandsOver(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	s := f.newService("A")
	if err := f.client.DisableUser(context.Background(), f.jane.ID); err != nil {
		t.Fatal(err)
	}
	o, err := s.Orphans(t.Context(), "UREQ", "COPS")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Groups) != 1 || o.Groups[0].User.ID != f.jane.ID || len(o.Groups[0].Items) != 3 || o.Items != 3 {
		t.Fatalf("orphans %+v, want jane's 3 items", o)
	}
	c := ChangeRequest{Reason: "Clean-up", Requester: "UREQ", Channel: "COPS", SourceKey: "orphans:V1",
		Handover: handoverTo("bob@example.com", false)}
	r, n, err := s.SubmitOrphans(t.Context(), c)
	if err != nil || n != 3 || r.Action != approval.HandOver || len(r.Targets) != 1 {
		t.Fatalf("submit: %v, %d items, %+v", err, n, r)
	}
	if _, _, err := s.SubmitOrphans(t.Context(), c); !errors.Is(err, ErrRedelivered) {
		t.Errorf("a redelivered orphans form: %v, want ErrRedelivered", err)
	}
	done, err := s.Approve(t.Context(), r.ID, "UAPP")
	if err != nil || done.State != approval.Succeeded {
		t.Fatalf("approve: %v %s %+v", err, done.State, done.Targets)
	}
	if a, _ := f.fake.AlertByID(f.alert.ID); a.CreatorID != f.bob.ID {
		t.Errorf("the alert belongs to %d, want bob", a.CreatorID)
	}
	if n := f.fake.Count("DELETE", "/api/user/"); n != 1 {
		t.Errorf("%d DELETE calls, want only the one that deactivated jane beforehand", n)
	}
	if n := f.fake.Count("PUT", "/api/user/"); n != 0 {
		t.Errorf("the hand-over changed a user (%d PUT calls)", n)
	}
}

// A takeover of an archive-only hand-over whose dead process archived the alert does not archive
// it again (that would mail its recipients again): the alert is confirmed archived.
func TestHandoverTakeoverConfirmsArchivedAlert(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	if err := f.client.DisableUser(t.Context(), f.jane.ID); err != nil {
		t.Fatal(err)
	}
	a := f.newService("A")
	r, _, err := a.SubmitOrphans(t.Context(), ChangeRequest{Reason: "Clean-up", Requester: "UREQ", Channel: "COPS",
		Handover: &HandoverRequest{Archive: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.st.Update(t.Context(), r.ID, func(r *approval.Request) ([]store.Outbox, error) {
		if _, err := r.Approve("UAPP", time.Now(), approval.Policy{}); err != nil {
			return nil, err
		}
		return nil, r.Start("A", time.Now().Add(-time.Hour), time.Minute)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.ArchiveAlerts(t.Context(), []int{f.alert.ID}); err != nil { // what A did before it died
		t.Fatal(err)
	}
	b := f.newService("B")
	timers{b}.runDue(t.Context())
	b.work.Wait()
	got, err := f.st.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.HandoverCounts(); got.State != approval.Succeeded || c != (approval.HandoverCounts{Archived: 3}) {
		t.Fatalf("after the takeover: %s, counts %+v; want succeeded with 3 archived", got.State, c)
	}
	if n := f.exactCount("POST", "/api/notification/admin/bulk"); n != 1 {
		t.Errorf("%d bulk calls in all, want only the dead process's", n)
	}
}

// TestHandoverNotDoneWhenTheCardCouldNotList: when the listing failed as the request was made, the
// card could not show what jane leaves running, so the approval disables her only and the
// hand-over ends "not done: could not be read", moving and archiving nothing.
func TestHandoverNotDoneWhenTheCardCouldNotList(t *testing.T) {
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	s := f.newService("A")
	f.fake.FailNext("GET", "/api/pulse", 4, 500, "database is down")
	r := f.disable(s, handoverTo("bob@example.com", true), "jane@example.com")
	if r.Lookup == nil || r.Lookup.Error == "" {
		t.Fatalf("lookup %+v, want the listing's failure", r.Lookup)
	}
	f.fake.ClearFailures()
	done, err := s.Approve(t.Context(), r.ID, "UAPP")
	if err != nil {
		t.Fatal(err)
	}
	res := done.Targets[0].Result
	if done.State != approval.Succeeded || res.Outcome != approval.Done || res.Message != handoverUnread {
		t.Fatalf("request %s, jane %+v; want disabled with %q", done.State, res, handoverUnread)
	}
	if u, _ := f.fake.UserByID(f.jane.ID); u.Active {
		t.Error("jane is still active")
	}
	if a, _ := f.fake.AlertByID(f.alert.ID); a.CreatorID != f.jane.ID || a.Archived {
		t.Errorf("the alert is created by %d (archived %v), want jane's and in place", a.CreatorID, a.Archived)
	}
	for _, sub := range f.subs {
		if got, _ := f.fake.SubscriptionByID(sub.ID); got.Archived {
			t.Errorf("subscription %d archived from a list nobody saw", sub.ID)
		}
	}
}
