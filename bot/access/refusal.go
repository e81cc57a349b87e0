package access

import (
	"errors"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Code names why the core refused something a person asked for. The chat side turns each code
// into words (one function does it); the core never writes a sentence for people.
type Code string

// Refusal codes. Subject, Other, When, N and Limit carry what the words need; each code says
// which it uses.
const (
	// ChannelNotAllowed: requests are limited to other channels (Channels).
	ChannelNotAllowed Code = "channel_not_allowed"
	// NotInRequesterGroup: only members of the requester group (Subject) may request.
	NotInRequesterGroup Code = "not_in_requester_group"
	// ReasonRequired: a reason must follow the users; Subject is the verb, Other the first user as typed.
	ReasonRequired Code = "reason_required"
	// BadReturnDate: Subject (as typed) is not a date.
	BadReturnDate Code = "bad_return_date"
	// ReturnInPast: Subject is not in the future.
	ReturnInPast Code = "return_in_past"
	// ReturnTooFar: Subject is N days away, past Limit days.
	ReturnTooFar Code = "return_too_far"
	// UnknownUserID: no Metabase user has the id Subject (as typed).
	UnknownUserID Code = "unknown_user_id"
	// UnknownEmail: no Metabase user has the email Subject (as typed).
	UnknownEmail Code = "unknown_email"
	// UnknownChatUser: the mention Subject (a chat user id) names nobody the bot can see.
	UnknownChatUser Code = "unknown_chat_user"
	// ChatUserNoEmail: the chat user Subject has no visible email.
	ChatUserNoEmail Code = "chat_user_no_email"
	// ChatEmailNoAccount: chat user Subject's email Other has no Metabase account.
	ChatEmailNoAccount Code = "chat_email_no_account"
	// Protected: the user Subject (email) may never be changed by the bot.
	Protected Code = "protected"
	// APIKeyUser: Subject is the user behind an API key, which deactivation does not stop.
	APIKeyUser Code = "api_key_user"
	// AlreadyInactive: Subject is already deactivated.
	AlreadyInactive Code = "already_inactive"
	// AlreadyActive: Subject is already active.
	AlreadyActive Code = "already_active"
	// OpenRequest: Subject already has the open request Other.
	OpenRequest Code = "open_request"
	// ReturnPending: Subject comes back automatically at When, by the return Other.
	ReturnPending Code = "return_pending"
	// LastAdmin: the request would deactivate the last person who is a Metabase admin.
	LastAdmin Code = "last_admin"
	// IDNeedsInstance: with several Metabase instances, the id Subject (as typed) must name its
	// instance (NAME:N); Other lists the configured instances.
	IDNeedsInstance Code = "id_needs_instance"
	// UnknownInstance: no Metabase instance is named Subject; Other lists the configured ones.
	UnknownInstance Code = "unknown_instance"

	// UnknownRequest: a click names a request that does not exist.
	UnknownRequest Code = "unknown_request"
	// NotApprover: only approvers may decide.
	NotApprover Code = "not_approver"
	// SelfApproval: the requester may not approve their own request.
	SelfApproval Code = "self_approval"
	// AlreadyVoted: the approver's vote already counts.
	AlreadyVoted Code = "already_voted"
	// RequestExpired: the request's deadline has passed.
	RequestExpired Code = "request_expired"
	// AlreadyDecided: the request is no longer pending; Request is how it stands now.
	AlreadyDecided Code = "already_decided"
	// NotRequester: only the requester may cancel a pending request.
	NotRequester Code = "not_requester"
	// NothingToRetry: nothing failed; Request is how it stands now (zero when unknown).
	NothingToRetry Code = "nothing_to_retry"
	// NoReturn: there is no scheduled return for this request.
	NoReturn Code = "no_return"
	// RetryTooLate: request Subject ended at When, longer than a request's lifetime ago: a retry
	// would act on an approval given for another moment.
	RetryTooLate Code = "retry_too_late"
	// DisabledSince: Subject was disabled again by the later request Other; retrying this
	// enable would undo that.
	DisabledSince Code = "disabled_since"
	// UserGone: the user Subject (email) no longer exists in Metabase.
	UserGone Code = "user_gone"
	// ReturnRunning: a return this disable replaces is being executed right now.
	ReturnRunning Code = "return_running"
	// ReturnNotScheduled: the return already ran or was cancelled.
	ReturnNotScheduled Code = "return_not_scheduled"
)

// Refusal is a request the core turned down for a reason the person can act on. Nothing was
// changed.
type Refusal struct {
	Code     Code
	Subject  string
	Other    string
	Channels []string
	When     time.Time
	N, Limit int
	// Request is the request as it stands, for refusals that describe it.
	Request approval.Request
}

func (r *Refusal) Error() string {
	s := "refused: " + string(r.Code)
	if r.Subject != "" {
		s += " (" + r.Subject + ")"
	}
	return s
}

func refuse(code Code, subject string) *Refusal { return &Refusal{Code: code, Subject: subject} }

// Refusals is several refusals of one request, one per target: a requester fixes them all in one
// go instead of one per attempt.
type Refusals struct {
	Items []*Refusal
	// Validated is set when the targets were found and checked, as opposed to not found at all.
	Validated bool
	// Retry is set when they refuse a retry of an existing request rather than a new one.
	Retry bool
}

func (rs *Refusals) Error() string {
	codes := make([]string, len(rs.Items))
	for i, r := range rs.Items {
		codes[i] = r.Error()
	}
	return strings.Join(codes, "; ")
}

// IsRefusal reports whether err is a refusal (one or several), as opposed to a failure to check.
func IsRefusal(err error) bool {
	var r *Refusal
	var rs *Refusals
	return errors.As(err, &r) || errors.As(err, &rs)
}

// ErrRedelivered: the command or form was already turned into a request; the chat service
// delivered it again (to this replica or another), and it is ignored without a word.
var ErrRedelivered = errors.New("command already handled")

// ErrDirectory wraps a failure to read the chat's groups, so the chat side can say that nothing
// was done because membership could not be checked.
var ErrDirectory = errors.New("could not check the approver group")

// ErrNotSaved wraps a failure to store a new request: nothing was created, and trying again may
// work.
var ErrNotSaved = errors.New("the request could not be stored")
