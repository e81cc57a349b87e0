package access

import (
	"context"
	"sync"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// Create looks up what outlives a disable for each target whose instance can say
// (Instance.Leftovers), beside lookUp and like it when the request is created. A target already
// looked up (a repeat of Create) is left as it is. A failed lookup is recorded on the target, so
// the card says it could not look, instead of saying nothing.

// leftoversFor looks up what outlives the disable for each target that needs it, by target
// index. It reads r only, so it can run beside lookUp, which takes about as long.
func (s lookups) leftoversFor(ctx context.Context, r approval.Request) map[int]*approval.Leftovers {
	if r.Action != approval.Disable {
		return nil
	}
	var idx []int
	for i, t := range r.Targets {
		if in, ok := s.in.get(t.InstanceName()); ok && in.Leftovers != nil && !t.Unresolved && t.Leftovers == nil && t.UserID > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	// One snapshot per instance, read at once across instances, then each target's share of it.
	snaps := map[string]*snapshotRead{}
	for _, i := range idx {
		name := r.Targets[i].InstanceName()
		if snaps[name] == nil {
			snaps[name] = &snapshotRead{}
		}
	}
	var wg sync.WaitGroup
	for name, sr := range snaps {
		wg.Go(func() {
			in, _ := s.in.get(name)
			sr.snap, sr.err = readLeftovers(ctx, in.Leftovers)
		})
	}
	wg.Wait()
	out := make(map[int]*approval.Leftovers, len(idx))
	for _, i := range idx {
		t := r.Targets[i]
		sr := snaps[t.InstanceName()]
		if sr.err != nil {
			out[i] = &approval.Leftovers{Error: FailureText(sr.err)}
			continue
		}
		out[i] = sr.snap.of(metabase.User{ID: t.UserID, Email: t.Email, IsSuperuser: t.Superuser, SSOSource: t.SSOSource}).record()
	}
	for name, sr := range snaps {
		if sr.err != nil {
			s.log.WithError(sr.err).WithField("instance", name).Warn("Could not look up what outlives the disable")
		}
	}
	return out
}

// snapshotRead is one instance's leftover snapshot, or why it could not be read.
type snapshotRead struct {
	snap leftoverSnapshot
	err  error
}

// withLeftovers returns r with the leftovers found put on their targets.
func withLeftovers(r approval.Request, found map[int]*approval.Leftovers) approval.Request {
	if len(found) == 0 {
		return r
	}
	r = r.Clone()
	for i, l := range found {
		if i < len(r.Targets) && r.Targets[i].Leftovers == nil {
			r.Targets[i].Leftovers = l
		}
	}
	return r
}

// record is the stored form of l.
func (l Leftovers) record() *approval.Leftovers {
	out := &approval.Leftovers{
		OwnKey: l.OwnKeyByTarget, PublicLinks: l.PublicLinks, UnknownSharer: l.UnknownSharer,
		SharingOff: l.SharingOff, AdminMayReturn: l.AdminMayReturn,
	}
	for _, k := range l.Keys {
		out.Keys = append(out.Keys, approval.LeftKey{ID: k.ID, Name: truncateRunes(k.Name, maxItemName), Group: k.Group, Admin: k.Admin})
	}
	if l.AdminKeys >= 0 {
		n := l.AdminKeys
		out.AdminKeys = &n
	}
	for _, link := range l.Links {
		out.Links = append(out.Links, approval.LeftLink{Kind: link.Kind, ID: link.ID, Name: truncateRunes(link.Name, maxItemName)})
	}
	for _, sec := range l.Secrets {
		out.Secrets = append(out.Secrets, string(sec))
	}
	for _, h := range l.Hold {
		out.Holds = append(out.Holds, string(h))
	}
	return out
}
