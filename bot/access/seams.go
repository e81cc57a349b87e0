package access

import (
	"context"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// Store is the durable compare-and-set store the core keeps requests and its outbox in
// (package store implements it on SQLite and PostgreSQL).
type Store interface {
	Create(ctx context.Context, r approval.Request, out ...store.Outbox) error
	CreateExclusive(ctx context.Context, r approval.Request, out ...store.Outbox) error
	CreateBreakGlass(ctx context.Context, r approval.Request, l store.BreakGlassLimit, also []store.Also, out ...store.Outbox) error
	Get(ctx context.Context, id string) (approval.Request, error)
	Update(ctx context.Context, id string, fn func(r *approval.Request) ([]store.Outbox, error)) (approval.Request, error)
	UpdateAlso(ctx context.Context, id string, fn func(r *approval.Request) ([]store.Outbox, []store.Also, error)) (approval.Request, error)
	Due(ctx context.Context, now time.Time, limit int) ([]approval.Request, error)
	ByTarget(ctx context.Context, user approval.UserKey) ([]approval.Request, error)
	List(ctx context.Context, states ...approval.State) ([]approval.Request, error)
	MarkAdminList(ctx context.Context, instance string) (store.AdminListMark, error)
	ReserveAdminDisable(ctx context.Context, request, instance string, user int, activeAdmins []int, mark store.AdminListMark) (bool, error)
	UpdateAndClaim(ctx context.Context, id string, c store.Claim, fn func(r *approval.Request) ([]store.Outbox, []store.Also, error)) (approval.Request, []store.Outbox, error)
	CompleteAndClaim(ctx context.Context, done store.Settle, c store.Claim) (claimed []store.Outbox, lost []int64, err error)
	CompleteOutbox(ctx context.Context, id int64, owner string) error
	CompleteOutboxAndUpdate(ctx context.Context, id int64, owner, requestID string, fn func(r *approval.Request) error) (approval.Request, error)
	RetryOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) error
	DeferOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) error
	AuditHead(ctx context.Context) (store.AuditHead, error)
	ClaimCheckpoint(ctx context.Context, now time.Time, every time.Duration) (store.AuditHead, bool, error)
}

// Metabase is the part of the Metabase client the core calls.
type Metabase interface {
	User(ctx context.Context, id int) (*metabase.User, error)
	UserByEmail(ctx context.Context, email string) (*metabase.User, error)
	DisableUser(ctx context.Context, id int) error
	ReactivateUser(ctx context.Context, id int) (*metabase.User, error)
	UpdateUser(ctx context.Context, id int, u metabase.UserUpdate) (*metabase.User, error)
	ListUsers(ctx context.Context, status metabase.UserStatus) ([]metabase.User, error)
}

// Directory answers who people are in the chat the bot lives in. The core asks it instead of
// holding group ids, so membership is read when a decision is made and a removal takes effect
// at once.
type Directory interface {
	// IsApprover reports whether user may decide requests.
	IsApprover(ctx context.Context, user string) (bool, error)
	// MayRequest returns nil when user may make requests (and see status and reports) in
	// channel, a *Refusal when they may not, or another error when it could not be checked.
	MayRequest(ctx context.Context, user, channel string) error
	// Email returns the email of a chat user named by a mention, or a *Refusal naming why there
	// is none (unknown user, no visible email).
	Email(ctx context.Context, user string) (string, error)
}

// Notifier tells people what happened. The core hands it one Notice at a time, in order per
// request, from the durable outbox; an error makes the core retry later (see DeliveryError).
type Notifier interface {
	// Tell delivers n. For a card notice it returns the posted message's id, which the core
	// records on the request in the same transaction that marks the notice delivered.
	Tell(ctx context.Context, n Notice) (posted string, err error)
}

// Metrics is what the core reports as it works. A nil Metrics in Config records nothing.
type Metrics interface {
	RequestCreated(r approval.Request)
	Decided(decision string)
	Executed(r approval.Request, took time.Duration)
}

type nopMetrics struct{}

func (nopMetrics) RequestCreated(approval.Request) {}

func (nopMetrics) Decided(string) {}

func (nopMetrics) Executed(approval.Request, time.Duration) {}
