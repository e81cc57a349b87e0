package access

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// Instance is one Metabase the bot manages. A company may run several (production and staging,
// one per region); offboarding someone means disabling them in each, and a target is a user of
// one instance: the same id in two instances is two people.
type Instance struct {
	// Name is how people and storage name the instance; the single-instance configuration is
	// approval.DefaultInstance.
	Name     string
	Metabase Metabase
	// Notifications, when set, shows what targets leave running in this instance and carries
	// out hand-overs there.
	Notifications Notifications
	// Leftovers, when set, shows on the card what outlives a disable in this instance: API
	// keys, public links, secrets and sign-ins that re-activate (revoke.go).
	Leftovers LeftoverSource
	// BotUserID returns the bot's own account in this instance, always protected; zero while
	// unknown (the instance has not answered since start-up). Nil means none.
	BotUserID func() int
}

// instanceSet is the configured instances in their configured order, with lookup by name.
type instanceSet struct {
	list   []Instance
	byName map[string]int
}

func newInstanceSet(list []Instance) (instanceSet, error) {
	set := instanceSet{list: slices.Clone(list), byName: make(map[string]int, len(list))}
	for i, in := range list {
		if in.Name == "" || in.Metabase == nil {
			return instanceSet{}, fmt.Errorf("access: instance %d needs a name and a Metabase client", i+1)
		}
		if _, dup := set.byName[in.Name]; dup {
			return instanceSet{}, fmt.Errorf("access: instance %q configured twice", in.Name)
		}
		set.byName[in.Name] = i
	}
	return set, nil
}

// multi reports whether there are several instances: only then do ids need an instance name and
// do cards name instances, so a single-instance bot reads exactly as before.
func (s instanceSet) multi() bool { return len(s.list) > 1 }

// get returns the named instance; "" is approval.DefaultInstance.
func (s instanceSet) get(name string) (Instance, bool) {
	if name == "" {
		name = approval.DefaultInstance
	}
	i, ok := s.byName[name]
	if !ok {
		return Instance{}, false
	}
	return s.list[i], true
}

// mb returns the Metabase client of the named instance. An instance that is not configured (the
// start-up check refuses to run with work bound to one) answers every call with an error, so a
// target there fails visibly instead of reaching another instance's user with the same id.
func (s instanceSet) mb(name string) Metabase {
	if in, ok := s.get(name); ok {
		return in.Metabase
	}
	return missingInstance(name)
}

// nb returns the named instance's Notifications, nil when it has none.
func (s instanceSet) nb(name string) Notifications {
	in, _ := s.get(name)
	return in.Notifications
}

// names lists the configured instances in order.
func (s instanceSet) names() []string {
	out := make([]string, len(s.list))
	for i, in := range s.list {
		out[i] = in.Name
	}
	return out
}

// Instances names the configured Metabase instances, in configured order.
func (s *Service) Instances() []string { return s.in.names() }

// MultiInstance reports whether several Metabase instances are configured.
func (s *Service) MultiInstance() bool { return s.in.multi() }

// missingInstance is the Metabase of an instance that is not configured.
type missingInstance string

func (m missingInstance) err() error {
	return fmt.Errorf("Metabase instance %q is not configured", string(m))
}

func (m missingInstance) User(context.Context, int) (*metabase.User, error) { return nil, m.err() }

func (m missingInstance) UserByEmail(context.Context, string) (*metabase.User, error) {
	return nil, m.err()
}

func (m missingInstance) DisableUser(context.Context, int) error { return m.err() }

func (m missingInstance) ReactivateUser(context.Context, int) (*metabase.User, error) {
	return nil, m.err()
}

func (m missingInstance) UpdateUser(context.Context, int, metabase.UserUpdate) (*metabase.User, error) {
	return nil, m.err()
}

func (m missingInstance) ListUsers(context.Context, metabase.UserStatus) ([]metabase.User, error) {
	return nil, m.err()
}

// targetUser reads target t's user as Metabase has them now: by id, or by email for a target
// whose instance did not answer when the request was made (its id is not known yet).
func targetUser(ctx context.Context, mb Metabase, t approval.Target) (*metabase.User, error) {
	if t.Unresolved && t.UserID == 0 {
		return mb.UserByEmail(ctx, t.Email)
	}
	return mb.User(ctx, t.UserID)
}

// UnboundInstances returns, for each instance named by open requests or scheduled returns that
// is not among configured, the ids of those requests: such work must never run against another
// instance's users, so the bot refuses to start until the instance is configured again or the
// requests are settled.
func UnboundInstances(open []approval.Request, configured []string) map[string][]string {
	out := map[string][]string{}
	for _, r := range open {
		if !r.State.Open() {
			continue
		}
		seen := map[string]bool{}
		for _, t := range r.Targets {
			name := t.InstanceName()
			if slices.Contains(configured, name) || seen[name] {
				continue
			}
			seen[name] = true
			out[name] = append(out[name], r.ID)
		}
	}
	return out
}

// DescribeUnbound words UnboundInstances for a start-up error.
func DescribeUnbound(unbound map[string][]string) string {
	names := make([]string, 0, len(unbound))
	for name := range unbound {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("instance %q (requests %s)", name, strings.Join(unbound[name], ", "))
	}
	return strings.Join(parts, "; ")
}
