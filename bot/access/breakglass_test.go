package access

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// stubResponders answers from a fixed set, or fails with err.
type stubResponders struct {
	set map[string]bool
	err error
}

func (r stubResponders) IsResponder(_ context.Context, user string) (bool, error) {
	return r.set[user], r.err
}

// breakGlassCore is testCore with UINC as the one responder, a one-hour review window and a
// limit of maxUsers, on a clock the test moves.
func breakGlassCore(t *testing.T, mb Metabase, resp stubResponders, maxUsers int, clock *atomic.Pointer[time.Time], tune ...func(*Config)) (*Service, *store.Store, *recordingNotifier) {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := &recordingNotifier{}
	cfg := Config{
		Policy: Policy{RequiredApprovals: 1, AdminRequiredApprovals: 2, RequireReason: true, RequestTTL: time.Hour,
			FinalReminder: time.Minute, ReturnLocation: time.UTC, MaxReturnAhead: 366 * 24 * time.Hour,
			ReviewWindow: time.Hour, IncidentMaxUsers: maxUsers},
		Execution: Execution{InstanceID: "A", BulkConcurrency: 4, ExecLease: 2 * time.Minute, OutboxLease: 30 * time.Second, Tick: 20 * time.Millisecond},
		Now:       func() time.Time { return *clock.Load() },
	}
	for _, f := range tune {
		f(&cfg)
	}
	s, err := New(cfg, Deps{Store: st, Metabase: mb, Directory: stubDirectory{approvers: map[string]bool{"UAPP": true, "UAPP2": true, "UINC": true}},
		Notifier: n, Responders: resp})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, n
}

func nowClock() *atomic.Pointer[time.Time] {
	var c atomic.Pointer[time.Time]
	now := time.Now().UTC().Truncate(time.Millisecond)
	c.Store(&now)
	return &c
}

func disableNow(s *Service, who string, ids ...int) (approval.Request, error) {
	var refs []TargetRef
	for _, id := range ids {
		refs = append(refs, TargetRef{Kind: ByID, ID: id, Raw: "x"})
	}
	return s.SubmitNow(context.Background(), ChangeRequest{Action: approval.Disable, Targets: refs, Reason: "stolen laptop",
		Requester: who, Channel: "COPS", SourceKey: "cmd:" + who + RandomID(4)})
}

// TestBreakGlassDisablesAtOnce: a responder's command disables before SubmitNow returns, with no
// vote, and tells card and audit it was break-glass; a non-responder is refused and nothing is
// stored; an unreadable group turns the command into a pending request.
func TestBreakGlassDisablesAtOnce(t *testing.T) {
	t.Parallel()
	mb := newUsersMetabase(activeUsers(5, 6)...)
	s, st, n := breakGlassCore(t, mb, stubResponders{set: map[string]bool{"UINC": true}}, 5, nowClock())
	r, err := disableNow(s, "UINC", 5)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != approval.Succeeded || !r.IsBreakGlass() || len(r.Approvals) != 0 || mb.active(5) || mb.disables.Load() != 1 {
		t.Fatalf("after disable now: %s, break-glass %v, %d approvals, active %v, %d disables", r.State, r.IsBreakGlass(), len(r.Approvals), mb.active(5), mb.disables.Load())
	}
	s.Drain(t.Context())
	if got, want := n.events(), []string{"card:break_glass", "audit:break_glass", "card_update:finished", "thread:finished", "audit:finished"}; !slices.Equal(got, want) {
		t.Fatalf("notices = %v, want %v", got, want)
	}

	if _, err := disableNow(s, "UREQ", 6); !isRefusal(err, NotResponder) {
		t.Fatalf("a non-responder: err = %v, want NotResponder", err)
	}
	if rs, _ := st.ByTarget(t.Context(), approval.UserKey{Instance: approval.DefaultInstance, ID: 6}); len(rs) != 0 || !mb.active(6) {
		t.Fatalf("a non-responder's command stored %d requests (active %v)", len(rs), mb.active(6))
	}

	broken, _, _ := breakGlassCore(t, mb, stubResponders{err: errors.New("usergroups.users.list: ratelimited")}, 5, nowClock())
	p, err := disableNow(broken, "UINC", 6)
	if err != nil || p.State != approval.Pending || p.BreakGlass == nil || p.BreakGlass.FellBack != FellBackUnreadable || !mb.active(6) {
		t.Fatalf("unreadable group: %+v, err %v; want a pending request saying why", p, err)
	}
}

// TestBreakGlassLimitFallsBack: the sixth user in an hour becomes a pending request; an hour
// later the responder may break glass again.
func TestBreakGlassLimitFallsBack(t *testing.T) {
	t.Parallel()
	mb := newUsersMetabase(activeUsers(1, 2, 3, 4, 5, 6, 7)...)
	clock := nowClock()
	s, _, _ := breakGlassCore(t, mb, stubResponders{set: map[string]bool{"UINC": true}}, 5, clock)
	if r, err := disableNow(s, "UINC", 1, 2, 3, 4, 5); err != nil || r.State != approval.Succeeded {
		t.Fatalf("five users: %s, %v", r.State, err)
	}
	r, err := disableNow(s, "UINC", 6)
	if err != nil || r.State != approval.Pending || r.BreakGlass.FellBack != FellBackLimit || !mb.active(6) {
		t.Fatalf("the sixth: %s %+v, err %v, active %v; want a pending request", r.State, r.BreakGlass, err, mb.active(6))
	}
	later := clock.Load().Add(61 * time.Minute)
	clock.Store(&later)
	if r, err := disableNow(s, "UINC", 7); err != nil || r.State != approval.Succeeded {
		t.Fatalf("an hour later: %s, %v", r.State, err)
	}
}

// TestBreakGlassReview: the responder's own Confirm is refused; Reverse takes the quorum of an
// admin enable, re-enables once and restores admin from the bot's record; a Confirm after it is
// refused; the window's end flags an unreviewed action once.
func TestBreakGlassReview(t *testing.T) {
	t.Parallel()
	users := activeUsers(5, 6, 7)
	users[0].IsSuperuser, users[2].IsSuperuser = true, true // 7 stays: never the last admin
	mb := newUsersMetabase(users...)
	var reactivations, promotions atomic.Int32
	plainDisable := mb.DisableFn
	mb.DisableFn = func(ctx context.Context, id int) error {
		err := plainDisable(ctx, id)
		mb.mu.Lock()
		defer mb.mu.Unlock()
		u := mb.users[id]
		u.UpdatedAt = "stamp-" + RandomID(4) // what the bot records, so an enable may restore admin
		mb.users[id] = u
		return err
	}
	mb.ReactivateFn = func(_ context.Context, id int) (*metabase.User, error) {
		reactivations.Add(1)
		mb.mu.Lock()
		defer mb.mu.Unlock()
		u := mb.users[id]
		u.IsActive, u.IsSuperuser = true, false
		mb.users[id] = u
		return &u, nil
	}
	mb.UpdateFn = func(_ context.Context, id int, up metabase.UserUpdate) (*metabase.User, error) {
		promotions.Add(1)
		mb.mu.Lock()
		defer mb.mu.Unlock()
		u := mb.users[id]
		if up.IsSuperuser != nil {
			u.IsSuperuser = *up.IsSuperuser
		}
		mb.users[id] = u
		return &u, nil
	}
	clock := nowClock()
	s, st, n := breakGlassCore(t, mb, stubResponders{set: map[string]bool{"UINC": true}}, 5, clock)
	r, err := disableNow(s, "UINC", 5)
	if err != nil || r.State != approval.Succeeded {
		t.Fatalf("disable now: %s, %v", r.State, err)
	}
	if _, err := s.Confirm(t.Context(), r.ID, "UINC"); !isRefusal(err, SelfReview) {
		t.Fatalf("the responder's own Confirm: %v, want SelfReview", err)
	}
	if _, err := s.Reverse(t.Context(), r.ID, "UINC"); !isRefusal(err, SelfReview) {
		t.Fatalf("the responder's own Reverse: %v, want SelfReview", err)
	}
	if _, err := s.Reverse(t.Context(), r.ID, "UREQ"); !isRefusal(err, NotApprover) {
		t.Fatalf("a non-approver's Reverse: %v, want NotApprover", err)
	}
	one, err := s.Reverse(t.Context(), r.ID, "UAPP")
	if err != nil || one.BreakGlass.Review != approval.ReviewOpen || mb.active(5) {
		t.Fatalf("one reverse vote of an admin's two: %+v, %v", one.BreakGlass, err)
	}
	if _, err := s.Reverse(t.Context(), r.ID, "UAPP"); !isRefusal(err, AlreadyVoted) {
		t.Fatalf("the same vote twice: %v", err)
	}
	two, err := s.Reverse(t.Context(), r.ID, "UAPP2")
	if err != nil || two.BreakGlass.Review != approval.ReviewReversed {
		t.Fatalf("second reverse vote: %+v, %v", two.BreakGlass, err)
	}
	mb.mu.Lock()
	back := mb.users[5]
	mb.mu.Unlock()
	if !back.IsActive || !back.IsSuperuser || reactivations.Load() != 1 || promotions.Load() != 1 {
		t.Fatalf("after Reverse: active %v admin %v, %d reactivations; want one, admin restored", back.IsActive, back.IsSuperuser, reactivations.Load())
	}
	if e, err := st.Get(t.Context(), ReversalID(r.ID)); err != nil || e.State != approval.Succeeded || e.Action != approval.Enable {
		t.Fatalf("reversal %s: %s, %v", ReversalID(r.ID), e.State, err)
	}
	if _, err := s.Confirm(t.Context(), r.ID, "UAPP"); !isRefusal(err, AlreadyReviewed) {
		t.Fatalf("Confirm after Reverse: %v, want AlreadyReviewed", err)
	}

	// Another action nobody reviews: reminded at half the window and a minute before its end,
	// flagged once at its end, still confirmable after.
	r2, err := disableNow(s, "UINC", 6)
	if err != nil {
		t.Fatal(err)
	}
	start := *clock.Load()
	for _, at := range []time.Duration{10 * time.Minute, 30 * time.Minute, 31 * time.Minute, 59 * time.Minute, 60 * time.Minute, 61 * time.Minute, 3 * time.Hour} {
		next := start.Add(at)
		clock.Store(&next)
		timers{s}.runDue(t.Context())
	}
	s.Drain(t.Context())
	var review []string
	for _, e := range n.events() {
		if e == "thread:review_reminded" || e == "audit:unreviewed" || e == "card_update:unreviewed" {
			review = append(review, e)
		}
	}
	if want := []string{"thread:review_reminded", "thread:review_reminded", "card_update:unreviewed", "audit:unreviewed"}; !slices.Equal(review, want) {
		t.Fatalf("review notices = %v, want %v", review, want)
	}
	if c, err := s.Confirm(t.Context(), r2.ID, "UAPP"); err != nil || c.BreakGlass.Review != approval.ReviewConfirmed || mb.active(6) {
		t.Fatalf("Confirm after the window: %+v, %v", c.BreakGlass, err)
	}
}

// TestBreakGlassCancelsALeavesReturn: a target on leave (inactive, its return scheduled) is
// taken, not refused as already inactive, and the break-glass action cancels the return.
func TestBreakGlassCancelsALeavesReturn(t *testing.T) {
	t.Parallel()
	mb := newUsersMetabase(activeUsers(5)...)
	s, st, _ := breakGlassCore(t, mb, stubResponders{set: map[string]bool{"UINC": true}}, 5, nowClock())
	pendingRequest(t, st, "MB-LEAVE", 1, 5)
	leave, _ := st.Get(t.Context(), "MB-LEAVE")
	back := time.Now().Add(48 * time.Hour)
	leave.ReturnAt = &back
	if _, err := st.Update(t.Context(), leave.ID, updateTo(leave)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(t.Context(), "MB-LEAVE", "UAPP"); err != nil {
		t.Fatal(err)
	}
	if ret, err := st.Get(t.Context(), approval.ReturnID("MB-LEAVE")); err != nil || ret.State != approval.Scheduled || mb.active(5) {
		t.Fatalf("the leave: return %s, %v", ret.State, err)
	}
	r, err := disableNow(s, "UINC", 5)
	if err != nil || r.State != approval.Succeeded || !r.IsBreakGlass() {
		t.Fatalf("disable now of a user on leave: %s, %v", r.State, err)
	}
	ret, err := st.Get(t.Context(), approval.ReturnID("MB-LEAVE"))
	if err != nil || ret.State != approval.Cancelled || ret.SupersededBy != r.ID {
		t.Fatalf("the return after break-glass: %s superseded by %q (%v), want cancelled by %s", ret.State, ret.SupersededBy, err, r.ID)
	}
}

// TestBreakGlassDryRun: in DRY_RUN nothing is written to Metabase, the action says dry run, and it
// still counts towards the limit.
func TestBreakGlassDryRun(t *testing.T) {
	t.Parallel()
	mb := newUsersMetabase(activeUsers(1, 2, 3, 4, 5, 6)...)
	s, _, n := breakGlassCore(t, mb, stubResponders{set: map[string]bool{"UINC": true}}, 5, nowClock(), func(c *Config) { c.Policy.DryRun = true })
	r, err := disableNow(s, "UINC", 1, 2, 3, 4, 5)
	if err != nil || r.State != approval.Succeeded || !r.DryRun || !r.IsBreakGlass() || mb.disables.Load() != 0 || !mb.active(1) {
		t.Fatalf("dry run: %s dry %v, %d disables, err %v", r.State, r.DryRun, mb.disables.Load(), err)
	}
	s.Drain(t.Context())
	for _, no := range n.notices {
		if no.Kind == ToAudit && !no.Event.Request.DryRun {
			t.Errorf("audit %s does not say dry run", no.Event.Type)
		}
	}
	if r, err := disableNow(s, "UINC", 6); err != nil || r.State != approval.Pending || r.BreakGlass.FellBack != FellBackLimit {
		t.Fatalf("the sixth after five dry-run users: %s, %v; want the limit", r.State, err)
	}
}

// TestBreakGlassHandsOverOnConfirm: the hand-over a responder asks for does not run with the
// disable; Confirm runs it once, as a hand-over request of its own; Reverse never does.
func TestBreakGlassHandsOverOnConfirm(t *testing.T) {
	t.Parallel()
	f := newHandoverFixture(t, metabasetest.EraNotificationAdmin, nil)
	cfg := Config{
		Policy: Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequireReason: true, RequestTTL: time.Hour,
			FinalReminder: time.Minute, ReturnLocation: time.UTC, MaxReturnAhead: 366 * 24 * time.Hour, ReviewWindow: time.Hour, IncidentMaxUsers: 5},
		Execution: Execution{InstanceID: "A", BulkConcurrency: 4, ExecLease: 2 * time.Minute, OutboxLease: 30 * time.Second, Tick: 20 * time.Millisecond},
	}
	s, err := New(cfg, Deps{Store: f.st, Metabase: f.client, Notifications: f.client, Notifier: f.notes,
		Directory: stubDirectory{approvers: map[string]bool{"UAPP": true}}, Responders: stubResponders{set: map[string]bool{"UINC": true}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.SubmitNow(t.Context(), ChangeRequest{Action: approval.Disable, Reason: "stolen laptop", Requester: "UINC", Channel: "COPS",
		Targets: []TargetRef{{Kind: ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}, Handover: handoverTo("bob@example.com", false)})
	if err != nil || r.State != approval.Succeeded {
		t.Fatalf("disable now with a hand-over: %s, %v", r.State, err)
	}
	if a, _ := f.fake.AlertByID(f.alert.ID); a.CreatorID != f.jane.ID || r.Handover != nil || r.BreakGlass.Handover == nil {
		t.Fatalf("the hand-over ran before the review (alert creator %d), or was not kept aside: %+v", a.CreatorID, r.BreakGlass)
	}
	if _, err := s.Confirm(t.Context(), r.ID, "UAPP"); err != nil {
		t.Fatal(err)
	}
	h, err := f.st.Get(t.Context(), approval.HandoverID(r.ID))
	if err != nil || h.State != approval.Succeeded || h.Action != approval.HandOver {
		t.Fatalf("hand-over %s: %s %s, %v", approval.HandoverID(r.ID), h.Action, h.State, err)
	}
	if a, _ := f.fake.AlertByID(f.alert.ID); a.CreatorID != f.bob.ID {
		t.Errorf("after Confirm the alert is created by %d, want bob %d", a.CreatorID, f.bob.ID)
	}
	if _, err := s.Confirm(t.Context(), r.ID, "UAPP"); !isRefusal(err, AlreadyReviewed) {
		t.Fatalf("a second Confirm: %v", err)
	}
	if n := f.exactCount("POST", "/api/notification/admin/bulk"); n != 1 {
		t.Errorf("%d hand-over writes, want 1", n)
	}

	// Reverse re-enables and hands nothing over.
	r2, err := s.SubmitNow(t.Context(), ChangeRequest{Action: approval.Disable, Reason: "odd queries", Requester: "UINC", Channel: "COPS",
		Targets: []TargetRef{{Kind: ByEmail, Email: "carl@example.com", Raw: "carl@example.com"}}, Handover: handoverTo("bob@example.com", true)})
	if err != nil || r2.State != approval.Succeeded {
		t.Fatalf("second disable now: %s, %v", r2.State, err)
	}
	if _, err := s.Reverse(t.Context(), r2.ID, "UAPP"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Get(t.Context(), approval.HandoverID(r2.ID)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Reverse created a hand-over: %v", err)
	}
	if u, _ := f.fake.UserByID(f.carl.ID); !u.Active {
		t.Error("Reverse did not re-enable carl")
	}
}

// TestBreakGlassReverseSkipsWhoIsBack: a user someone re-enabled since is left out of the
// reversal rather than refusing it for everyone.
func TestBreakGlassReverseSkipsWhoIsBack(t *testing.T) {
	t.Parallel()
	mb := newUsersMetabase(activeUsers(5, 6)...)
	var reactivated []int
	mb.ReactivateFn = func(_ context.Context, id int) (*metabase.User, error) {
		mb.mu.Lock()
		defer mb.mu.Unlock()
		reactivated = append(reactivated, id)
		u := mb.users[id]
		u.IsActive = true
		mb.users[id] = u
		return &u, nil
	}
	s, st, _ := breakGlassCore(t, mb, stubResponders{set: map[string]bool{"UINC": true}}, 5, nowClock())
	r, err := disableNow(s, "UINC", 5, 6)
	if err != nil || r.State != approval.Succeeded {
		t.Fatalf("disable now: %s, %v", r.State, err)
	}
	mb.mu.Lock()
	u := mb.users[6]
	u.IsActive = true // re-enabled in Metabase by hand
	mb.users[6] = u
	mb.mu.Unlock()
	if _, err := s.Reverse(t.Context(), r.ID, "UAPP"); err != nil {
		t.Fatalf("Reverse with one user back already: %v", err)
	}
	e, err := st.Get(t.Context(), ReversalID(r.ID))
	if err != nil || len(e.Targets) != 1 || e.Targets[0].UserID != 5 || e.State != approval.Succeeded {
		t.Fatalf("reversal: %+v, %v; want user 5 alone", e.Targets, err)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if !slices.Equal(reactivated, []int{5}) {
		t.Fatalf("reactivated %v, want [5]", reactivated)
	}
}
