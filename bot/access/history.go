package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// History is what `history <user>` shows: the user as Metabase has them and every request that
// named them, newest first, each as stored (state, requester, approvals, per-target results).
type History struct {
	User     metabase.User
	Requests []approval.Request
	// Instance is where User was found, when several instances are configured.
	Instance string
}

// ErrHistory wraps a failure to read the requests naming a user.
var ErrHistory = errors.New("could not read the requests naming this user")

// History returns every request naming the user ref, for requester in channel. The requester
// rules apply as for Status: the list names who asked to remove whom and who agreed.
func (s *Service) History(ctx context.Context, requester, channel string, ref TargetRef) (History, error) {
	ctx = s.replyCtx(ctx) // the answer waits for the store reads here
	if err := s.dir.MayRequest(ctx, requester, channel); err != nil {
		return History{}, err
	}
	f, err := validator{s}.resolveFound(ctx, ref)
	if err != nil {
		return History{}, err
	}
	rs, err := s.st.ByTarget(ctx, approval.UserKey{Instance: f.Instance, ID: f.User.ID})
	if err != nil {
		return History{}, fmt.Errorf("%w: %w", ErrHistory, err)
	}
	h := History{User: *f.User, Requests: rs}
	if s.in.multi() {
		h.Instance = f.Instance
	}
	return h, nil
}
