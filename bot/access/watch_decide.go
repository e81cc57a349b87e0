package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// finding reads the watch row of user about basis, refusing when it is gone or about another
// disable (the button is from an older report).
func (s *Service) finding(ctx context.Context, user approval.UserKey, basis string) (store.WatchRow, Finding, error) {
	if s.watch.st == nil {
		return store.WatchRow{}, Finding{}, &Refusal{Code: NoFinding, Subject: user.String()}
	}
	row, ok, err := s.watch.st.WatchRow(ctx, user)
	if err != nil {
		return row, Finding{}, err
	}
	if !ok || row.Basis != basis {
		return row, Finding{}, &Refusal{Code: NoFinding, Subject: user.String()}
	}
	var f Finding
	if err := json.Unmarshal(row.Data, &f); err != nil {
		return row, f, err
	}
	return row, f, nil
}

// NoFinding: a button of a reactivation report that no longer applies (decided already, or the
// user was disabled again since).
const NoFinding Code = "no_finding"

// KeepActive is an approver's decision to keep a reactivated user active: the watch stops
// reporting them until the bot disables them again. Others are refused.
func (s *Service) KeepActive(ctx context.Context, actor string, user approval.UserKey, basis string) (Finding, error) {
	if err := s.mustApprove(ctx, actor); err != nil {
		return Finding{}, err
	}
	row, f, err := s.finding(ctx, user, basis)
	if err != nil {
		return f, err
	}
	if row.State != watchReported && row.State != watchRefused {
		return f, &Refusal{Code: NoFinding, Subject: f.Email}
	}
	req, err := s.st.Get(ctx, f.RequestID)
	if err != nil {
		return f, err
	}
	f.AcceptedBy, f.AcceptedAt = actor, s.now()
	row.State = watchAccepted
	won, err := s.putFinding(ctx, row, f, s.watchEvent(ReactivationAccepted, req, f, actor, ""))
	if err == nil && !won {
		err = &Refusal{Code: NoFinding, Subject: f.Email}
	}
	return f, err
}

// DisableAgain is an approver's request to disable a reactivated user again: a normal disable
// request for that user, its card in the original request's channel, its reason naming the
// original, and the usual approval. Others are refused.
func (s *Service) DisableAgain(ctx context.Context, actor string, user approval.UserKey, basis string) (approval.Request, error) {
	if err := s.mustApprove(ctx, actor); err != nil {
		return approval.Request{}, err
	}
	row, f, err := s.finding(ctx, user, basis)
	if err != nil {
		return approval.Request{}, err
	}
	if row.State != watchReported && row.State != watchRefused {
		return approval.Request{}, &Refusal{Code: NoFinding, Subject: f.Email}
	}
	if f.FollowUp != "" {
		// One request at a time: a second click while the first request is open is refused; once
		// it ended without disabling them (denied, expired), another may be opened.
		prev, err := s.st.Get(ctx, f.FollowUp)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return approval.Request{}, err
		}
		if err == nil && prev.State.Open() {
			return approval.Request{}, &Refusal{Code: OpenRequest, Subject: f.Email, Other: prev.ID}
		}
	}
	orig, err := s.st.Get(ctx, f.RequestID)
	if err != nil {
		return approval.Request{}, err
	}
	reason := fmt.Sprintf("Disable again: reactivated outside the bot after %s", orig.ID)
	if orig.Reason != "" {
		reason += " (" + orig.Reason + ")"
	}
	r, err := s.Submit(ctx, ChangeRequest{Action: approval.Disable, Reason: reason, Requester: actor, Channel: orig.ChannelID,
		SourceKey: fmt.Sprintf("watch:%s:%s:%d:%s", user, basis, f.Count, f.FollowUp),
		Targets:   []TargetRef{{Kind: ByID, ID: user.ID, Instance: user.Instance, Raw: f.Email}}})
	if err != nil {
		return r, err
	}
	f.FollowUp = r.ID
	if _, err := s.putFinding(ctx, row, f, s.watchEvent(DisableAgainRequested, orig, f, actor, r.ID)); err != nil {
		s.log.WithError(err).WithField("request_id", r.ID).Error("Could not note the follow-up request on the reactivation report")
	}
	return r, nil
}

// mustApprove refuses actor unless they are an approver.
func (s *Service) mustApprove(ctx context.Context, actor string) error {
	ok, err := s.dir.IsApprover(ctx, actor)
	if err != nil {
		return errors.Join(ErrDirectory, err)
	}
	if !ok {
		return refuse(NotApprover, actor)
	}
	return nil
}

// WatchStatus is what the watch knows of one user, for /metabase status.
type WatchStatus struct {
	// On says the watch runs.
	On bool
	// CheckedAt is when the user's instance was last checked (zero: never).
	CheckedAt time.Time
	// Finding is the newest thing the watch found about the user, nil for nothing.
	Finding *Finding
	// State is the finding's state: "reported", "accepted", "disabled again", "could not disable again".
	State string
}

// WatchStatusOf returns what the watch knows of user.
func (s *Service) WatchStatusOf(ctx context.Context, user approval.UserKey) (WatchStatus, error) {
	if s.watch.st == nil {
		return WatchStatus{}, nil
	}
	if user.Instance == "" {
		user.Instance = approval.DefaultInstance
	}
	at, err := s.watch.st.WatchCheckedAt(ctx, user.Instance)
	if err != nil {
		return WatchStatus{}, err
	}
	ws := WatchStatus{On: true, CheckedAt: at}
	row, ok, err := s.watch.st.WatchRow(ctx, user)
	if err != nil || !ok {
		return ws, err
	}
	var f Finding
	if err := json.Unmarshal(row.Data, &f); err != nil {
		return ws, err
	}
	ws.Finding = &f
	ws.State = map[string]string{watchReported: "reported", watchAccepted: "accepted", watchDisabling: "being disabled again",
		watchRedisabled: "disabled again", watchRefused: "could not disable again", watchInactive: "inactive again"}[row.State]
	return ws, nil
}

// watchStatus is WatchStatusOf for status, nil when the watch is off or could not be read (logged).
func (s *Service) watchStatus(ctx context.Context, user approval.UserKey) *WatchStatus {
	if s.watch.st == nil {
		return nil
	}
	ws, err := s.WatchStatusOf(ctx, user)
	if err != nil {
		s.log.WithError(err).Error("Could not read the reactivation watch for status")
		return nil
	}
	return &ws
}

// watchAuditName is the audit name of a watch event.
func watchAuditName(e Event) string {
	switch e.Type {
	case ReactivationAccepted:
		return "reactivation accepted"
	case DisableAgainRequested:
		return "disable again requested"
	}
	return "reactivated outside the bot"
}

// watchAuditDetail is what the audit log says about a watch event besides its name.
func watchAuditDetail(e Event) string {
	f := e.Watch
	switch e.Type {
	case ReactivationAccepted:
		return "reactivation accepted by " + e.Actor
	case DisableAgainRequested:
		return "request " + e.By
	}
	d := fmt.Sprintf("%s in %s, admin now: %t, sso_source: %q", f.Email, f.Instance, f.Superuser, f.WayBack.SSOSource)
	for _, k := range slices.Sorted(maps.Keys(f.WayBack.Settings)) {
		d += fmt.Sprintf(", %s: %s", k, f.WayBack.Settings[k])
	}
	switch {
	case f.DisabledAgain != nil:
		d += "; disabled again automatically"
	case f.NotDisabledAgain != "":
		d += "; could not disable again: " + f.NotDisabledAgain
	}
	return d
}
