package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// ErrUnchanged, returned by an Also's Update, leaves that request as it is without failing the
// transaction: the related change no longer applies (a return already ran, say).
var ErrUnchanged = errors.New("store: leave this request unchanged")

// Also is a change to another request that must commit, or not, together with the update that
// asks for it: a termination cancelling the return of an earlier leave, a leave's outcome
// creating its scheduled return.
type Also struct {
	// ID names the request Update applies to (by compare-and-set, like Update).
	ID string
	// Update changes request ID and returns its outbox rows. ErrUnchanged skips it; any other
	// error aborts the whole transaction. A missing request is skipped too.
	Update func(r *approval.Request) ([]Outbox, error)
	// Create, when set, is created with CreateOut instead, unless a request with its id exists:
	// then Update (when set) is applied to that one.
	Create    *approval.Request
	CreateOut []Outbox
}

// UpdateAlso is Update whose fn may also ask for changes to other requests; all of them commit in
// one transaction or none does. fn may run several times and must be pure.
func (s *Store) UpdateAlso(ctx context.Context, id string, fn func(r *approval.Request) ([]Outbox, []Also, error)) (_ approval.Request, err error) {
	ctx, end := s.op(ctx, "update", true)
	defer end(&err)
	var stored approval.Request
	err = s.casLoop(ctx, func(tx *sql.Tx) error {
		var err error
		stored, _, err = s.updateLinkedTx(ctx, tx, id, fn)
		return err
	})
	if err != nil {
		return approval.Request{}, err
	}
	return stored, nil
}

// queued is outbox rows a transaction queues once all its request rows are written.
type queued struct {
	requestID string
	out       []Outbox
}

// updateLinkedTx is one attempt of UpdateAlso inside tx, taking its locks in the store's order
// (see the package doc): it decides the change to request id, locks that request and every
// related one in id order, writes them, and only then queues their outbox rows, whose audit
// entries lock the chain's head. It returns the stored request and how many rows the change to
// id itself queued.
func (s *Store) updateLinkedTx(ctx context.Context, tx *sql.Tx, id string, fn func(r *approval.Request) ([]Outbox, []Also, error)) (approval.Request, int, error) {
	var also []Also
	c, err := s.decide(ctx, tx, id, func(r *approval.Request) ([]Outbox, error) {
		out, a, err := fn(r)
		also = a
		return out, err
	})
	if err != nil {
		return approval.Request{}, 0, err
	}
	ids := []string{id}
	for _, a := range also {
		ids = append(ids, a.id())
	}
	if err := s.lockRequests(ctx, tx, ids); err != nil {
		return approval.Request{}, 0, err
	}
	if err := s.write(ctx, tx, c); err != nil {
		return approval.Request{}, 0, err
	}
	queue := []queued{{requestID: id, out: c.out}}
	for _, a := range also {
		q, err := s.applyAlso(ctx, tx, a)
		if err != nil {
			return approval.Request{}, 0, err
		}
		queue = append(queue, q)
	}
	for _, q := range queue {
		if err := s.insertOutbox(ctx, tx, q.requestID, q.out); err != nil {
			return approval.Request{}, 0, err
		}
	}
	return c.next, len(c.out), nil
}

// id is the request a changes.
func (a Also) id() string {
	if a.Create != nil {
		return a.Create.ID
	}
	return a.ID
}

// applyAlso writes a inside tx and returns the outbox rows it asks for, to be queued by the
// caller after every request row is written.
func (s *Store) applyAlso(ctx context.Context, tx *sql.Tx, a Also) (queued, error) {
	id := a.id()
	if a.Create != nil {
		_, err := s.get(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			r := a.Create.Clone()
			r.Version = 1
			if err := validate(r); err != nil {
				return queued{}, err
			}
			data, err := json.Marshal(r)
			if err != nil {
				return queued{}, fmt.Errorf("store: encode request %s: %w", r.ID, err)
			}
			return queued{requestID: id, out: a.CreateOut}, s.insertRequest(ctx, tx, r, data)
		}
		if err != nil {
			return queued{}, err
		}
	}
	if a.Update == nil {
		return queued{}, nil
	}
	_, out, err := s.updateTx(ctx, tx, id, a.Update)
	if errors.Is(err, ErrUnchanged) || errors.Is(err, ErrNotFound) {
		return queued{}, nil
	}
	return queued{requestID: id, out: out}, err
}
