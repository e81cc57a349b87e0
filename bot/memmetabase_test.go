package bot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// memMetabase is the in-memory Metabase of the bot's unit and fuzz tests (the end-to-end tests
// use metabase/metabasetest over HTTP). DisableUser counts every call and can be held, so a
// test can see a second executor writing the same user.
type memMetabase struct {
	mu    sync.Mutex
	users map[int]metabase.User
	// hold, when set, makes DisableUser wait until it is closed (or ctx ends).
	hold     chan struct{}
	disables atomic.Int32
	// onDisable, when set, runs at the start of every DisableUser call with its number.
	onDisable func(n int32)
}

var _ access.Metabase = (*memMetabase)(nil)

func newMemMetabase(users ...metabase.User) *memMetabase {
	m := &memMetabase{users: map[int]metabase.User{}}
	for _, u := range users {
		m.users[u.ID] = u
	}
	return m
}

func (m *memMetabase) User(_ context.Context, id int) (*metabase.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return nil, metabase.ErrNotFound
	}
	return &u, nil
}

func (m *memMetabase) UserByEmail(_ context.Context, email string) (*metabase.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.users {
		if strings.EqualFold(u.Email, email) {
			return &u, nil
		}
	}
	return nil, metabase.ErrNotFound
}

func (m *memMetabase) DisableUser(ctx context.Context, id int) error {
	n := m.disables.Add(1)
	if m.onDisable != nil {
		m.onDisable(n)
	}
	if m.hold != nil {
		select {
		case <-m.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[id]; ok {
		u.IsActive = false
		m.users[id] = u
	}
	return nil
}

// errUnsupported: the bot's tests only disable; enabling goes through the fake Metabase over
// HTTP in the end-to-end tests.
var errUnsupported = errors.New("memMetabase: not supported")

func (m *memMetabase) ReactivateUser(context.Context, int) (*metabase.User, error) {
	return nil, errUnsupported
}

func (m *memMetabase) UpdateUser(context.Context, int, metabase.UserUpdate) (*metabase.User, error) {
	return nil, errUnsupported
}

func (m *memMetabase) ListUsers(context.Context, metabase.UserStatus) ([]metabase.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]metabase.User, 0, len(m.users))
	for _, u := range m.users {
		out = append(out, u)
	}
	return out, nil
}
