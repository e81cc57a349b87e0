package metabase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// ErrPublicSharingOff reports that public sharing is turned off: Metabase
// then neither lists nor removes public links, and the links made earlier
// answer again once it is turned back on (docs/metabase.md#public-links).
// It is decided by status and route, never by Metabase's (translated)
// words: the public-link routes take no parameter but a positive id,
// which the client always sends, so their only 400 is the sharing check.
var ErrPublicSharingOff = errors.New("metabase: public sharing is not enabled")

// PublicLink is a dashboard or question that anyone with its link can
// open, with admin rights, whoever shared it and whether or not they are
// still active.
type PublicLink struct {
	Kind string // "dashboard" or "card"
	ID   int
	Name string
}

// ListPublicLinks returns the instance's public dashboards and questions
// (not archived), or ErrPublicSharingOff. The listings do not say who
// shared each link; PublicLinkSharer reads that, one item at a time.
//
// GET /api/dashboard/public, GET /api/card/public
func (c *Client) ListPublicLinks(ctx context.Context) ([]PublicLink, error) {
	// The two listings are independent: read them at once.
	kinds := []string{"dashboard", "card"}
	found := make([][]PublicLink, len(kinds))
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Go(func() {
			var rows []struct {
				ID   int    `json:"id"`
				Name string `json:"name"`
			}
			route := "/api/" + kind + "/public"
			if err := c.do(ctx, request{method: "GET", route: route, path: route[1:], retry: true}, &rows); err != nil {
				errs[i] = publicErr(err)
				return
			}
			for _, r := range rows {
				found[i] = append(found[i], PublicLink{Kind: kind, ID: r.ID, Name: r.Name})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return append(found[0], found[1]...), nil
}

// PublicLinkSharer returns the id of the user who first shared the
// dashboard or question (made_public_by_id), 0 when it is not shared or
// Metabase does not say.
//
// GET /api/dashboard/:id, GET /api/card/:id
func (c *Client) PublicLinkSharer(ctx context.Context, l PublicLink) (int, error) {
	if err := checkLink(l); err != nil {
		return 0, err
	}
	var row struct {
		MadePublicByID *int `json:"made_public_by_id"`
	}
	err := c.do(ctx, request{
		method: "GET", route: "/api/" + l.Kind + "/:id", path: "api/" + l.Kind + "/" + strconv.Itoa(l.ID), retry: true,
	}, &row)
	if err != nil {
		return 0, err
	}
	if row.MadePublicByID == nil {
		return 0, nil
	}
	return *row.MadePublicByID, nil
}

// Unshare removes the public link of a dashboard or question. A link
// already removed (or an item archived or gone) is ErrNotFound, which a
// repeat after a crash treats as done; sharing turned off is
// ErrPublicSharingOff.
//
// DELETE /api/dashboard/:id/public_link, DELETE /api/card/:id/public_link
func (c *Client) Unshare(ctx context.Context, l PublicLink) error {
	if err := checkLink(l); err != nil {
		return err
	}
	err := c.do(ctx, request{
		method: "DELETE", route: "/api/" + l.Kind + "/:id/public_link",
		path: "api/" + l.Kind + "/" + strconv.Itoa(l.ID) + "/public_link", retry: true,
	}, nil)
	return publicErr(err)
}

func checkLink(l PublicLink) error {
	if (l.Kind != "dashboard" && l.Kind != "card") || l.ID <= 0 {
		return fmt.Errorf("metabase: public link %s %d: want a dashboard or card and a positive id", l.Kind, l.ID)
	}
	return nil
}

// publicErr turns the 400 of a public-link route into ErrPublicSharingOff
// (wrapping the *APIError). A 400 whose body is malli's JSON {"errors": …}
// is a parameter error instead and is left alone.
func publicErr(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		return err
	}
	var v struct {
		Errors map[string]json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(ae.Body, &v) == nil && len(v.Errors) > 0 {
		return err
	}
	return fmt.Errorf("%w: %w", ErrPublicSharingOff, err)
}
