package access

import (
	"context"
	"errors"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// InstanceUser is a Metabase user of one instance.
type InstanceUser struct {
	// Instance is the instance's name (approval.DefaultInstance for the single form).
	Instance string
	User     metabase.User
}

// found is what looking one named user up in one instance gave: the user, not found (both nil),
// or no answer (Unreachable).
type found struct {
	Instance string
	User     *metabase.User
	// Unreachable is why the instance did not answer; the target is looked up again at
	// execution.
	Unreachable error
	// ref is what the requester named.
	ref TargetRef
	// email is the user's email as named (a mention's profile email), for notes and for
	// targets whose instance did not answer.
	email string
}

// resolveAll looks every target up, several at once (lookupConcurrency, or BulkConcurrency when
// larger), each once: a form naming
// thirty people must be answered within Slack's few seconds even when Metabase takes a tenth of a
// second per search. With several instances each ref is looked up in all of them at the same
// time, so three instances cost the slowest one's time, not the sum. Refusals come back
// together, in the order the targets were named. The result lists, per ref in order, what each
// instance answered, in configured order.
func (s validator) resolveAll(ctx context.Context, refs []TargetRef) ([]found, error) {
	per := make([][]found, len(refs))
	problems := make([]*Refusal, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.exec.BulkConcurrency, lookupConcurrency))
	lookIn := s.lookUpIn
	if listed := s.listedUsers(gctx, refs); listed != nil {
		lookIn = listed.lookUpIn
	}
	for i, ref := range refs {
		g.Go(func() error {
			fs, err := s.lookUpRefWith(gctx, ref, lookIn)
			var rf *Refusal
			switch {
			case errors.As(err, &rf):
				problems[i] = rf
			case err != nil:
				return err
			default:
				per[i] = fs
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var refused []*Refusal
	for _, rf := range problems {
		if rf != nil {
			refused = append(refused, rf)
		}
	}
	if len(refused) > 0 {
		return nil, &Refusals{Items: refused}
	}
	var out []found
	for _, fs := range per {
		out = append(out, fs...)
	}
	return out, nil
}

// lookUpRef looks one named user up in the instances the ref allows: the one it names, or
// every instance. It refuses when nobody was found anywhere, and returns the error when no
// instance answered at all, as a single Metabase that does not answer always did.
func (s validator) lookUpRef(ctx context.Context, ref TargetRef) ([]found, error) {
	return s.lookUpRefWith(ctx, ref, s.lookUpIn)
}

// lookUpRefWith is lookUpRef looking each instance up with lookIn.
func (s validator) lookUpRefWith(ctx context.Context, ref TargetRef, lookIn func(ctx context.Context, instance string, ref TargetRef, email string) (*metabase.User, error)) ([]found, error) {
	names, err := s.instancesFor(ref)
	if err != nil {
		return nil, err
	}
	email := ref.Email
	if ref.Kind == ByChatUser {
		if email, err = s.dir.Email(ctx, ref.ChatUser); err != nil {
			return nil, err
		}
	}
	if ref.Kind != ByID && metabase.IsAPIKeyEmail(email) {
		// Metabase never lists an API key's user, so the look-up would say "no such user":
		// say what it is instead (docs/metabase.md#api-key-users).
		return nil, refuse(APIKeyUser, email)
	}
	fs := make([]found, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			fs[i] = found{Instance: name, ref: ref, email: email}
			u, err := lookIn(ctx, name, ref, email)
			switch {
			case errors.Is(err, metabase.ErrNotFound):
			case err != nil:
				fs[i].Unreachable = err
			default:
				fs[i].User = u
			}
		})
	}
	wg.Wait()
	var firstErr error
	answered := false
	for _, f := range fs {
		if f.User != nil {
			return fs, nil
		}
		if f.Unreachable == nil {
			answered = true
		} else if firstErr == nil {
			firstErr = f.Unreachable
		}
	}
	if !answered {
		return nil, firstErr
	}
	for _, f := range fs {
		if f.Unreachable != nil {
			// Not found where answered, but an instance that did not answer may have them.
			return fs, nil
		}
	}
	switch ref.Kind {
	case ByID:
		return nil, refuse(UnknownUserID, ref.Raw)
	case ByChatUser:
		return nil, &Refusal{Code: ChatEmailNoAccount, Subject: ref.ChatUser, Other: email}
	default:
		return nil, refuse(UnknownEmail, ref.Raw)
	}
}

// instancesFor names the instances ref is looked up in, refusing a bare id among several
// instances (user 42 of one instance is somebody else in another) and an unknown instance.
func (s validator) instancesFor(ref TargetRef) ([]string, error) {
	if ref.Instance != "" {
		if _, ok := s.in.get(ref.Instance); !ok {
			return nil, &Refusal{Code: UnknownInstance, Subject: ref.Instance, Other: strings.Join(s.in.names(), ", ")}
		}
		return []string{ref.Instance}, nil
	}
	if ref.Kind == ByID && s.in.multi() {
		return nil, &Refusal{Code: IDNeedsInstance, Subject: ref.Raw, Other: strings.Join(s.in.names(), ", ")}
	}
	return s.in.names(), nil
}

// lookUpIn looks ref up in one instance; email is a mention's profile email.
func (s validator) lookUpIn(ctx context.Context, instance string, ref TargetRef, email string) (*metabase.User, error) {
	mb := s.in.mb(instance)
	if ref.Kind == ByID {
		return mb.User(ctx, ref.ID)
	}
	return mb.UserByEmail(ctx, email)
}

// resolve looks a target up for a command about one user (status, history): in the instance it
// names, or the only one.
func (s validator) resolve(ctx context.Context, ref TargetRef) (*metabase.User, error) {
	f, err := s.resolveFound(ctx, ref)
	if err != nil {
		return nil, err
	}
	return f.User, nil
}

// resolveFound is resolve with the instance the user was found in: the first, in configured
// order, where they exist.
func (s validator) resolveFound(ctx context.Context, ref TargetRef) (found, error) {
	fs, err := s.lookUpRef(ctx, ref)
	if err != nil {
		return found{}, err
	}
	for _, f := range fs {
		if f.User != nil {
			return f, nil
		}
	}
	for _, f := range fs {
		if f.Unreachable != nil {
			return found{}, f.Unreachable
		}
	}
	return found{}, refuse(UnknownEmail, ref.Raw)
}

// resolveIn looks ref up in instance only, refusing as a single instance would.
func (s validator) resolveIn(ctx context.Context, instance string, ref TargetRef) (*metabase.User, error) {
	ref.Instance = instance
	return s.resolve(ctx, ref)
}

// targetInstance is what a target stores as its instance: nothing for the default one, so a
// single-instance bot stores requests exactly as before.
func targetInstance(name string) string {
	if name == approval.DefaultInstance {
		return ""
	}
	return name
}

// allUsersLister is a Metabase that lists every user in one listing (package metabase:
// Client.AllUsers).
type allUsersLister interface {
	AllUsers(ctx context.Context) ([]metabase.User, error)
}

// userListing is every user of some instances, listed once for a request naming many people, so
// it costs one listing per instance rather than one search per person.
type userListing struct {
	s       validator
	byEmail map[string]map[string]*metabase.User // instance → lower-cased email → user
	errs    map[string]error                     // instance → why it could not be listed
}

// listedUsers lists the users of every instance the refs may be in, at the same time, when the
// refs are more than one round of searches and all name people by email or mention; nil
// otherwise (searching each is then as quick).
func (s validator) listedUsers(ctx context.Context, refs []TargetRef) *userListing {
	if len(refs) <= lookupConcurrency {
		return nil
	}
	names := map[string]bool{}
	for _, ref := range refs {
		if ref.Kind == ByID {
			return nil
		}
		in, err := s.instancesFor(ref)
		if err != nil {
			continue // refused when the ref is looked up
		}
		for _, n := range in {
			if _, ok := s.in.mb(n).(allUsersLister); !ok {
				return nil
			}
			names[n] = true
		}
	}
	l := &userListing{s: s, byEmail: map[string]map[string]*metabase.User{}, errs: map[string]error{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name := range names {
		wg.Go(func() {
			users, err := s.in.mb(name).(allUsersLister).AllUsers(ctx)
			m := make(map[string]*metabase.User, len(users))
			for i := range users {
				m[strings.ToLower(users[i].Email)] = &users[i]
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				l.errs[name] = err
				return
			}
			l.byEmail[name] = m
		})
	}
	wg.Wait()
	return l
}

// lookUpIn finds ref in instance's listing. Someone missing from it is searched for on their own:
// a listing read in pages can miss a user created while it was read, and a refusal must not rest
// on that.
func (l *userListing) lookUpIn(ctx context.Context, instance string, ref TargetRef, email string) (*metabase.User, error) {
	if err, ok := l.errs[instance]; ok {
		return nil, err
	}
	if u, ok := l.byEmail[instance][strings.ToLower(strings.TrimSpace(email))]; ok {
		cp := *u
		return &cp, nil
	}
	return l.s.lookUpIn(ctx, instance, ref, email)
}
