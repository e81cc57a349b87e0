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
func (s *Store) UpdateAlso(ctx context.Context, id string, fn func(r *approval.Request) ([]Outbox, []Also, error)) (approval.Request, error) {
	var stored approval.Request
	err := s.casLoop(ctx, func(tx *sql.Tx) error {
		var also []Also
		var err error
		stored, err = s.updateTx(ctx, tx, id, func(r *approval.Request) ([]Outbox, error) {
			out, a, err := fn(r)
			also = a
			return out, err
		})
		if err != nil {
			return err
		}
		for _, a := range also {
			if err := s.applyAlso(ctx, tx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return approval.Request{}, err
	}
	return stored, nil
}

func (s *Store) applyAlso(ctx context.Context, tx *sql.Tx, a Also) error {
	id := a.ID
	if a.Create != nil {
		id = a.Create.ID
		_, err := s.get(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			r := a.Create.Clone()
			r.Version = 1
			if err := validate(r); err != nil {
				return err
			}
			data, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("store: encode request %s: %w", r.ID, err)
			}
			return s.createTx(ctx, tx, r, data, a.CreateOut)
		}
		if err != nil {
			return err
		}
	}
	if a.Update == nil {
		return nil
	}
	_, err := s.updateTx(ctx, tx, id, a.Update)
	if errors.Is(err, ErrUnchanged) || errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
