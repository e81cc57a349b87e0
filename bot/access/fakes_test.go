package access

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// stubMetabase is a Metabase whose every method is a function field, in the style of
// benbjohnson/wtf's mocks: a test sets only what it needs, and an unset method fails loudly.
type stubMetabase struct {
	UserFn        func(ctx context.Context, id int) (*metabase.User, error)
	UserByEmailFn func(ctx context.Context, email string) (*metabase.User, error)
	DisableFn     func(ctx context.Context, id int) error
	ReactivateFn  func(ctx context.Context, id int) (*metabase.User, error)
	UpdateFn      func(ctx context.Context, id int, u metabase.UserUpdate) (*metabase.User, error)
	ListFn        func(ctx context.Context, status metabase.UserStatus) ([]metabase.User, error)
}

var errStub = errors.New("stub: not set in this test")

func (m *stubMetabase) User(ctx context.Context, id int) (*metabase.User, error) {
	if m.UserFn == nil {
		return nil, errStub
	}
	return m.UserFn(ctx, id)
}

func (m *stubMetabase) UserByEmail(ctx context.Context, email string) (*metabase.User, error) {
	if m.UserByEmailFn == nil {
		return nil, errStub
	}
	return m.UserByEmailFn(ctx, email)
}

func (m *stubMetabase) DisableUser(ctx context.Context, id int) error {
	if m.DisableFn == nil {
		return errStub
	}
	return m.DisableFn(ctx, id)
}

func (m *stubMetabase) ReactivateUser(ctx context.Context, id int) (*metabase.User, error) {
	if m.ReactivateFn == nil {
		return nil, errStub
	}
	return m.ReactivateFn(ctx, id)
}

func (m *stubMetabase) UpdateUser(ctx context.Context, id int, u metabase.UserUpdate) (*metabase.User, error) {
	if m.UpdateFn == nil {
		return nil, errStub
	}
	return m.UpdateFn(ctx, id, u)
}

func (m *stubMetabase) ListUsers(ctx context.Context, status metabase.UserStatus) ([]metabase.User, error) {
	if m.ListFn == nil {
		return nil, errStub
	}
	return m.ListFn(ctx, status)
}

// usersMetabase is a stubMetabase over an in-memory set of users whose disables it counts.
type usersMetabase struct {
	stubMetabase
	mu       sync.Mutex
	users    map[int]metabase.User
	disables atomic.Int32
}

func newUsersMetabase(users ...metabase.User) *usersMetabase {
	m := &usersMetabase{users: map[int]metabase.User{}}
	for _, u := range users {
		m.users[u.ID] = u
	}
	m.UserFn = func(_ context.Context, id int) (*metabase.User, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		u, ok := m.users[id]
		if !ok {
			return nil, metabase.ErrNotFound
		}
		return &u, nil
	}
	m.UserByEmailFn = func(_ context.Context, email string) (*metabase.User, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, u := range m.users {
			if strings.EqualFold(u.Email, email) {
				return &u, nil
			}
		}
		return nil, metabase.ErrNotFound
	}
	m.DisableFn = func(_ context.Context, id int) error {
		m.disables.Add(1)
		m.mu.Lock()
		defer m.mu.Unlock()
		u := m.users[id]
		u.IsActive = false
		m.users[id] = u
		return nil
	}
	m.ListFn = func(context.Context, metabase.UserStatus) ([]metabase.User, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		var out []metabase.User
		for _, u := range m.users {
			if u.IsActive {
				out = append(out, u)
			}
		}
		return out, nil
	}
	return m
}

func (m *usersMetabase) active(id int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.users[id].IsActive
}

// activeUsers returns active users with these ids and emails u<id>@example.com.
func activeUsers(ids ...int) []metabase.User {
	us := make([]metabase.User, len(ids))
	for i, id := range ids {
		us[i] = metabase.User{ID: id, Email: fmt.Sprintf("u%d@example.com", id), IsActive: true}
	}
	return us
}

// stubDirectory answers from fixed sets of approvers; anyone may request.
type stubDirectory struct {
	approvers map[string]bool
}

func (d stubDirectory) IsApprover(_ context.Context, user string) (bool, error) {
	return d.approvers[user], nil
}

func (stubDirectory) MayRequest(context.Context, string, string) error { return nil }

func (stubDirectory) Email(_ context.Context, user string) (string, error) {
	return strings.ToLower(user) + "@example.com", nil
}

// recordingNotifier records every notice it is told, in order.
type recordingNotifier struct {
	mu      sync.Mutex
	notices []Notice
	seq     int
}

func (n *recordingNotifier) Tell(_ context.Context, no Notice) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notices = append(n.notices, no)
	n.seq++
	return fmt.Sprintf("1700000000.%06d", n.seq), nil
}

// events returns "kind:type" of every event notice told, in order.
func (n *recordingNotifier) events() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, no := range n.notices {
		if no.Event != nil {
			out = append(out, string(no.Kind)+":"+string(no.Event.Type))
		}
	}
	return out
}

// testCore builds a core over a fresh SQLite store with the defaults cmd/metabase-bot uses.
func testCore(t *testing.T, mb Metabase, id string, tune func(*Config)) (*Service, *store.Store, *recordingNotifier) {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := &recordingNotifier{}
	return testCoreOn(t, st, mb, n, id, tune), st, n
}

func testCoreOn(t *testing.T, st Store, mb Metabase, n Notifier, id string, tune func(*Config)) *Service {
	t.Helper()
	cfg := Config{
		Policy: Policy{RequiredApprovals: 1, AdminRequiredApprovals: 1, RequireReason: true, RequestTTL: time.Hour,
			FinalReminder: time.Minute, ReturnLocation: time.UTC, MaxReturnAhead: 366 * 24 * time.Hour},
		Execution: Execution{InstanceID: id, BulkConcurrency: 4, ExecLease: 2 * time.Minute, OutboxLease: 30 * time.Second, Tick: 20 * time.Millisecond},
	}
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg, Deps{Store: st, Metabase: mb, Directory: stubDirectory{approvers: map[string]bool{"UAPP": true, "UAPP2": true}}, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pendingRequest stores a pending disable of ids, with its card already posted.
func pendingRequest(t *testing.T, st Store, id string, required int, ids ...int) {
	t.Helper()
	now := time.Now()
	r := approval.Request{ID: id, Action: approval.Disable, State: approval.Pending, Requester: "UREQ",
		ChannelID: "COPS", MessageTS: "1700000000.000001", RequiredApprovals: required, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	for _, uid := range ids {
		r.Targets = append(r.Targets, approval.Target{UserID: uid, Email: fmt.Sprintf("u%d@example.com", uid)})
	}
	if err := st.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
}

// updateTo is an Update function that replaces the stored request with r (keeping its version).
func updateTo(r approval.Request) func(*approval.Request) ([]store.Outbox, error) {
	return func(cur *approval.Request) ([]store.Outbox, error) {
		v := cur.Version
		*cur = r.Clone()
		cur.Version = v
		return nil, nil
	}
}
