package access

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// MaxOrphanTargets bounds the deactivated creators one hand-over request names, like a typed
// command's targets; the report says when there are more.
const MaxOrphanTargets = 100

// OrphanGroup is one deactivated user and the subscriptions and alerts they still run.
type OrphanGroup struct {
	User  metabase.User
	Items []metabase.Notification
}

// Orphans is what `orphans` reports: what users deactivated outside the bot left running.
type Orphans struct {
	// Groups are the deactivated creators, by email, protected users left out.
	Groups []OrphanGroup
	// Items counts the items of all Groups.
	Items int
	// Creatorless counts items with no creator at all; no request can hand them over.
	Creatorless  int
	Capabilities metabase.Capabilities
}

// Orphans reports, for requester in channel, the subscriptions and alerts whose creator is
// deactivated. It shows recipients and names people, so it follows the requester rules, as
// status does.
func (s *Service) Orphans(ctx context.Context, requester, channel string) (Orphans, error) {
	if err := s.dir.MayRequest(ctx, requester, channel); err != nil {
		return Orphans{}, err
	}
	nb, err := (lookups{s}).orphansNotifications()
	if err != nil {
		return Orphans{}, err
	}
	rep, err := nb.Orphaned(ctx)
	if err != nil {
		return Orphans{}, fmt.Errorf("%w: %w", ErrListNotifications, err)
	}
	return (lookups{s}).orphansOf(rep), nil
}

// orphansNotifications is the instance the orphans report reads. It reads the only instance:
// with several, a report and its hand-over would each need one instance named, which the
// command does not take yet, so it is refused rather than read from an arbitrary instance.
func (s lookups) orphansNotifications() (Notifications, error) {
	if s.in.multi() {
		return nil, refuse(HandoverOneInstance, strings.Join(s.in.names(), ", "))
	}
	nb := s.in.nb(approval.DefaultInstance)
	if nb == nil {
		return nil, refuse(HandoverUnavailable, "")
	}
	return nb, nil
}

// orphansOf groups a report by creator and leaves protected users out: the bot never touches
// anything of theirs.
func (s lookups) orphansOf(rep *metabase.OrphanReport) Orphans {
	o := Orphans{Capabilities: rep.Capabilities, Creatorless: len(rep.ByCreator[0])}
	for id, u := range rep.Creators {
		if id == 0 || s.Protected(u) || len(rep.ByCreator[id]) == 0 {
			continue
		}
		o.Groups = append(o.Groups, OrphanGroup{User: u, Items: rep.ByCreator[id]})
		o.Items += len(rep.ByCreator[id])
	}
	slices.SortFunc(o.Groups, func(a, b OrphanGroup) int {
		return strings.Compare(strings.ToLower(a.User.Email), strings.ToLower(b.User.Email))
	})
	return o
}

// ValidateOrphans runs SubmitOrphans' checks that need no listing, so a form can show problems
// next to its fields within Slack's 3 s.
func (s *Service) ValidateOrphans(ctx context.Context, c ChangeRequest) error {
	_, err := (lookups{s}).orphanChecks(ctx, c)
	return err
}

func (s lookups) orphanChecks(ctx context.Context, c ChangeRequest) (*approval.Handover, error) {
	if err := s.dir.MayRequest(ctx, c.Requester, c.Channel); err != nil {
		return nil, err
	}
	if s.policy.RequireReason && strings.TrimSpace(c.Reason) == "" {
		return nil, &Refusal{Code: ReasonRequired, Subject: string(approval.HandOver)}
	}
	if c.Handover == nil {
		return nil, refuse(HandoverNeedsSuccessor, "")
	}
	return validator(s).handover(ctx, approval.HandOver, *c.Handover, nil)
}

// SubmitOrphans turns the orphans report into one hand-over request, listing again so it reflects
// Metabase at the moment of the request: one target per deactivated creator (at most
// MaxOrphanTargets), approved like any request. It returns the request and how many items it
// covers; nothing to hand over creates nothing.
func (s *Service) SubmitOrphans(ctx context.Context, c ChangeRequest) (approval.Request, int, error) {
	hv, err := (lookups{s}).orphanChecks(ctx, c)
	if err != nil {
		return approval.Request{}, 0, err
	}
	nb, err := (lookups{s}).orphansNotifications()
	if err != nil {
		return approval.Request{}, 0, err
	}
	rep, err := nb.Orphaned(ctx)
	if err != nil {
		return approval.Request{}, 0, fmt.Errorf("%w: %w", ErrListNotifications, err)
	}
	o := (lookups{s}).orphansOf(rep)
	if len(o.Groups) > MaxOrphanTargets {
		o.Groups = o.Groups[:MaxOrphanTargets]
	}
	if len(o.Groups) == 0 {
		return approval.Request{}, 0, nil
	}
	var (
		problems []*Refusal
		targets  []approval.Target
		known    []metabase.User
		items    int
	)
	for _, g := range o.Groups {
		u := g.User
		if hv.SuccessorID == u.ID {
			return approval.Request{}, 0, refuse(SuccessorIsTarget, u.Email)
		}
		history, err := s.st.ByTarget(ctx, approval.UserKey{Instance: approval.DefaultInstance, ID: u.ID})
		if err != nil {
			return approval.Request{}, 0, fmt.Errorf("look up the requests of user %d: %w", u.ID, err)
		}
		if c.SourceKey != "" && slices.ContainsFunc(history, func(r approval.Request) bool { return r.SourceKey == c.SourceKey }) {
			return approval.Request{}, 0, ErrRedelivered
		}
		if open := openRequestIn(history, ""); open != "" {
			problems = append(problems, &Refusal{Code: OpenRequest, Subject: u.Email, Other: open})
			continue
		}
		targets = append(targets, approval.Target{UserID: u.ID, Email: u.Email, Name: u.Name(),
			SSOSource: u.SSOSource, LastLogin: u.LastLogin, Consequences: ConsequencesOf(g.Items)})
		known = append(known, u)
		items += len(g.Items)
	}
	if len(problems) > 0 {
		return approval.Request{}, 0, &Refusals{Items: problems, Validated: true}
	}
	now := s.now()
	lk := &approval.Lookup{At: now, Version: rep.Capabilities.Version.Tag, RunStatus: rep.Capabilities.AlertRunStatus,
		MoveAlerts: rep.Capabilities.MoveAlerts, ArchiveAlerts: rep.Capabilities.ArchiveAlerts}
	lk.CollectionsNotCounted = (lookups{s}).countCollections(ctx, nb, targets, known)
	r := approval.Request{
		ID: newRequestID(), SourceKey: c.SourceKey, Action: approval.HandOver, State: approval.Pending,
		Requester: c.Requester, Targets: targets, Reason: c.Reason, ChannelID: c.Channel,
		RequiredApprovals: s.policy.RequiredApprovals, CreatedAt: now, ExpiresAt: now.Add(s.policy.RequestTTL),
		FinalReminder: validator{s}.finalReminder(), DryRun: s.policy.DryRun, Handover: hv, Lookup: lk,
	}
	if err := s.Create(ctx, r); err != nil {
		return r, 0, err
	}
	return r, items, nil
}
