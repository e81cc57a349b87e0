package access

import (
	"context"
	"encoding/json"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// found records that e's user is active. A reactivation is recorded (and reported) once: the
// watch row is written by compare-and-set, with the messages in the same transaction.
func (s watcher) found(ctx context.Context, e expectation, u metabase.User, row store.WatchRow, admins []int, listedAt time.Time) error {
	var prev Finding
	if row.Version > 0 && row.Basis == e.basis {
		if err := json.Unmarshal(row.Data, &prev); err != nil {
			return err
		}
		switch row.State {
		case watchRedisabled, watchInactive:
			// Disabled again (by the bot, or someone else), and back again: a new reactivation.
		case watchDisabling:
			if listedAt.Sub(prev.FoundAt) < staleDisabling {
				return nil
			}
			// The replica disabling them died: take the finding over.
			prev.Count--
		default:
			return nil
		}
	}
	f := Finding{Instance: e.target.InstanceName(), UserID: u.ID, Email: u.Email, RequestID: e.req.ID, FoundAt: listedAt,
		Superuser: u.IsSuperuser, SSOSource: u.SSOSource, WayBack: s.watch.cfg.WayBack(e.target.InstanceName(), u),
		Count: prev.Count + 1, Basis: e.basis}
	next := store.WatchRow{Instance: f.Instance, UserID: u.ID, Basis: e.basis, Version: row.Version}
	if s.watch.cfg.Policy != ReactivationDisable || s.policy.DryRun {
		next.State = watchReported
		_, err := s.putFinding(ctx, next, f, s.reactivatedEvent(e.req, f, ""))
		return err
	}
	// Claim the re-disable first, so one replica calls Metabase.
	next.State = watchDisabling
	won, err := s.putFinding(ctx, next, f)
	if err != nil || !won {
		return err
	}
	next.Version = row.Version + 1
	// The claim is spent: the DELETE and its report are finished even when the process is
	// stopping, within a bound shorter than the time after which another replica takes over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), staleDisabling/2)
	defer cancel()
	if why := s.disableAgain(ctx, e, u, admins, listedAt); why != "" {
		f.NotDisabledAgain = why
		next.State = watchRefused
	} else {
		at := s.now()
		f.DisabledAgain = &at
		next.State = watchRedisabled
	}
	_, err = s.putFinding(ctx, next, f, s.reactivatedEvent(e.req, f, ""))
	return err
}

// inactiveAgain settles the row of a user found reactivated who is inactive again: a reported
// user someone disabled since is watched afresh (their next reactivation is a new report), and
// a re-disable whose replica died after its DELETE took effect is reported as done.
func (s watcher) inactiveAgain(ctx context.Context, e expectation, w store.WatchRow, listedAt time.Time) error {
	var f Finding
	if err := json.Unmarshal(w.Data, &f); err != nil {
		return err
	}
	switch {
	case w.State == watchReported || w.State == watchRefused:
		w.State = watchInactive
		_, err := s.putFinding(ctx, w, f)
		return err
	case w.State == watchDisabling && listedAt.Sub(f.FoundAt) >= staleDisabling:
		at := listedAt
		f.DisabledAgain = &at
		w.State = watchRedisabled
		_, err := s.putFinding(ctx, w, f, s.reactivatedEvent(e.req, f, ""))
		return err
	}
	return nil
}

// disableAgain deactivates u again with the checks any disable gets: never a protected account,
// never the last admin who can sign in. It returns why it did not, or "". Nothing is recorded
// that an enable or a return would restore admin from: the original disable's record stands.
func (s watcher) disableAgain(ctx context.Context, e expectation, u metabase.User, admins []int, listedAt time.Time) string {
	instance := e.target.InstanceName()
	if s.ProtectedIn(instance, u) {
		return "protected: the bot never changes this account"
	}
	if u.IsSuperuser {
		// The check's listing was read before any mark, so the admins are read again after one,
		// as every disable of an admin does (a reservation made since may not show in it).
		ok, err := reserveAdminDisable(ctx, s.st, s.in.mb(instance), e.req.ID, instance, u.ID)
		if err != nil {
			return FailureText(err)
		}
		if !ok {
			return LastAdminText
		}
	}
	if err := s.in.mb(instance).DisableUser(ctx, u.ID); err != nil {
		if isLastAdminRefusal(err) {
			return LastAdminText
		}
		return FailureText(err)
	}
	return ""
}

// reactivatedEvent is the report of f in the thread of req and the audit trail. The event's
// request names only f's user, so the audit record is about them alone.
func (s watcher) reactivatedEvent(req approval.Request, f Finding, actor string) []store.Outbox {
	return s.watchEvent(Reactivated, req, f, actor, "")
}

func (s *Service) watchEvent(typ EventType, req approval.Request, f Finding, actor, by string) []store.Outbox {
	r := req.Clone()
	r.Targets = nil
	for _, t := range req.Targets {
		if t.Key() == f.Key() {
			r.Targets = append(r.Targets, t)
		}
	}
	fc := f
	return s.tell(Event{Type: typ, Actor: actor, At: s.now(), By: by, Request: r, Watch: &fc}, ToThread, ToAudit)
}

// putFinding stores f on row next with out, and reports whether this replica won.
func (s *Service) putFinding(ctx context.Context, next store.WatchRow, f Finding, out ...[]store.Outbox) (bool, error) {
	data, err := json.Marshal(f)
	if err != nil {
		return false, err
	}
	next.Data = data
	var rows []store.Outbox
	for _, o := range out {
		rows = append(rows, o...)
	}
	won, err := s.watch.st.PutWatchRow(ctx, next, rows...)
	if won && len(rows) > 0 {
		s.kick()
	}
	return won, err
}
