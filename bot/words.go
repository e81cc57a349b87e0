package bot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// refusalText words one refusal of the core for the person who asked. It is the one place that
// turns a refusal into a sentence; everything a person may have typed is escaped here.
func (v *view) refusalText(rf *access.Refusal) string {
	switch rf.Code {
	case access.ChannelNotAllowed:
		return "Requests can only be made in " + channelMentions(rf.Channels) + "."
	case access.NotInRequesterGroup:
		return fmt.Sprintf("Only members of <!subteam^%s> can make requests.", rf.Subject)
	case access.ReasonRequired:
		return fmt.Sprintf("Please give a reason after the users, e.g. `%s %s %s Left the company`.",
			v.cfg.SlashCommand, rf.Subject, escape(rf.Other))
	case access.BadReturnDate:
		return fmt.Sprintf("I can't read the return date %s: use YYYY-MM-DD or an RFC 3339 time like 2027-01-15T09:00:00+01:00.",
			escape(strconv.Quote(truncateRunes(rf.Subject, 40))))
	case access.ReturnInPast:
		return fmt.Sprintf("The return date %s is in the past.", escape(rf.Subject))
	case access.ReturnTooFar:
		return fmt.Sprintf("The return date %s is more than %d days away; the limit is %d days.", escape(rf.Subject), rf.N, rf.Limit)
	case access.UnknownUserID:
		return fmt.Sprintf("No Metabase user has the id `%s`.", escape(rf.Subject))
	case access.UnknownEmail:
		return fmt.Sprintf("No Metabase user has the email `%s`.", escape(rf.Subject))
	case access.UnknownChatUser:
		return fmt.Sprintf("%s is not a Slack user I can see.", mention(rf.Subject))
	case access.ChatUserNoEmail:
		return fmt.Sprintf("%s has no email I can see in Slack (the app needs users:read.email, and bots have none). Name them by email or Metabase id.", mention(rf.Subject))
	case access.ChatEmailNoAccount:
		return fmt.Sprintf("%s's email %s has no Metabase account.", mention(rf.Subject), escape(rf.Other))
	case access.Protected:
		return fmt.Sprintf("%s is protected: the bot never changes this account.", escape(rf.Subject))
	case access.APIKeyUser:
		return fmt.Sprintf("%s is an API key, which disabling would not stop; revoke it under Admin settings → Authentication → API keys.", escape(rf.Subject))
	case access.AlreadyInactive:
		return fmt.Sprintf("%s is already deactivated in Metabase.", escape(rf.Subject))
	case access.AlreadyActive:
		return fmt.Sprintf("%s is already active in Metabase.", escape(rf.Subject))
	case access.OpenRequest:
		return fmt.Sprintf("%s already has an open request, %s.", escape(rf.Subject), rf.Other)
	case access.ReturnPending:
		return fmt.Sprintf("%s already comes back automatically %s (%s). To bring them back sooner, an approver first cancels that return with the button in the leave's thread.",
			escape(rf.Subject), slackDate(rf.When), rf.Other)
	case access.LastAdmin:
		if rf.Subject != "" {
			return fmt.Sprintf("That would deactivate the last active admin of Metabase instance %s who is a person, leaving it with no admin who can sign in. Make someone else an admin there first.", escape(rf.Subject))
		}
		return "That would deactivate the last active Metabase admin who is a person, leaving Metabase with no admin who can sign in. Make someone else an admin first."
	case access.IDNeedsInstance:
		return fmt.Sprintf("With several Metabase instances, an id names its instance: write `NAME:%s`, where NAME is one of %s.", escape(rf.Subject), escape(rf.Other))
	case access.UnknownInstance:
		return fmt.Sprintf("There is no Metabase instance named `%s`; the instances are %s.", escape(rf.Subject), escape(rf.Other))
	case access.HandoverOneInstance:
		return fmt.Sprintf("A hand-over works in one Metabase instance: add `--instance NAME` before the reason, where NAME is one of %s.", escape(rf.Subject))
	case access.UnknownRequest:
		return "That request does not exist."
	case access.NoFinding:
		return "That reactivation report no longer applies: an approver already decided, or the user was disabled again since. Status of the user shows where it stands."
	case access.NotApprover:
		return "Only approvers (" + v.approverMention() + ") can decide Metabase requests."
	case access.SelfApproval:
		return "You made this request, so someone else has to approve it."
	case access.AlreadyVoted:
		return "You already approved this request; it needs approvals from other approvers."
	case access.RequestExpired:
		return "This request has expired. Make a new one if it is still needed."
	case access.AlreadyDecided:
		if rf.Request.ID == "" {
			return "This request has already been decided."
		}
		return fmt.Sprintf("This request is already %s.", stateWords(rf.Request))
	case access.NotRequester:
		return "Only the person who made the request can cancel it."
	case access.NothingToRetry:
		if rf.Request.ID == "" {
			return "There is nothing to retry."
		}
		return "There is nothing to retry: the request is " + stateWords(rf.Request) + "."
	case access.NoReturn:
		return "There is no automatic return scheduled for this request."
	case access.RetryTooLate:
		return fmt.Sprintf("Request %s ended %s, longer ago than a request may wait: its approval is too old to act on. Make a new request if it is still needed.",
			rf.Subject, slackDate(rf.When))
	case access.DisabledSince:
		return fmt.Sprintf("%s was disabled again since, by request %s; retrying would undo that.", escape(rf.Subject), rf.Other)
	case access.UserGone:
		return fmt.Sprintf("%s no longer exists in Metabase.", escape(rf.Subject))
	case access.ReturnRunning:
		return "The automatic return of a leave this request replaces is running right now. Approve again in a moment, once it has run."
	case access.ReturnNotScheduled:
		return "The automatic return is no longer scheduled (it already ran or was cancelled)."
	}
	if text, ok := handoverRefusalText(rf); ok {
		return text
	}
	if text, ok := v.breakGlassRefusalText(rf); ok {
		return text
	}
	if text, ok := revokeRefusalText(rf); ok {
		return text
	}
	return "That cannot be done (" + string(rf.Code) + ")."
}

// op names what the bot was doing when something failed, for the sentence that says so.
type op int

// What the bot was doing.
const (
	opCheck op = iota
	opValidate
	opDeny
	opSave
	opDecide
	opApprove
	opRetry
	opCancelReturn
	opRead
	opLookUp
	opListUsers
	opListInactive
)

// explain words any error of the core for the person who asked: a refusal says what to change,
// and a failure says what could not be done, with Metabase's reason where it gave one.
func (v *view) explain(what op, err error) string {
	var rf *access.Refusal
	var rs *access.Refusals
	switch {
	case errors.As(err, &rs):
		lines := make([]string, len(rs.Items))
		for i, r := range rs.Items {
			lines[i] = v.refusalText(r)
		}
		text := strings.Join(lines, "\n")
		switch {
		case rs.Retry:
			text += "\nNothing was retried. Make a new request if it is still needed."
		case rs.Validated:
			text += "\nNo request was created."
		}
		return text
	case errors.As(err, &rf):
		return v.refusalText(rf)
	case access.StoreUnavailable(err):
		return v.unavailable(what)
	case errors.Is(err, access.ErrDirectory):
		switch what {
		case opDecide, opApprove, opRetry, opCancelReturn:
			return "I could not check the approver group, so nothing was done. Please try again."
		case opDeny:
			return "I could not check the approver group, so the request was not denied. Please try again."
		}
	}
	switch what {
	case opCheck:
		return "I could not check that: " + access.FailureText(err)
	case opValidate:
		return "I could not check that request: " + access.FailureText(err)
	case opSave:
		return "I could not save that request; nothing was changed. Please try again."
	case opDecide, opApprove, opDeny:
		return "I could not record that; please try again."
	case opRetry:
		return "I could not start the retry; please try again."
	case opCancelReturn:
		return "I could not cancel the return; please try again."
	case opRead:
		return "I could not read that request; please try again."
	case opLookUp:
		return "I could not look that user up: " + access.FailureText(err)
	case opListUsers:
		return "I could not list Metabase users: " + access.FailureText(err)
	case opListInactive:
		return "I could not list inactive users: " + access.FailureText(err)
	}
	return "Something went wrong: " + access.FailureText(err)
}

// unavailableWords is what the person is told when the database could not record what they
// asked for: nothing was changed, and the same thing may be tried again (docs/faults.md).
const unavailableWords = "the database is unavailable; nothing was changed, try again"

// unavailable words a store outage for the person who asked, naming what could not be recorded.
func (v *view) unavailable(what op) string {
	switch what {
	case opSave, opValidate, opCheck:
		return "could not record the request: " + unavailableWords
	case opApprove:
		return "could not record your approval: " + unavailableWords
	case opDeny:
		return "could not record your denial: " + unavailableWords
	case opDecide:
		return "could not record your decision: " + unavailableWords
	case opRetry:
		return "could not record your retry: " + unavailableWords
	case opCancelReturn:
		return "could not record the cancellation of the return: " + unavailableWords
	}
	return "could not read the request: " + unavailableWords
}

func channelMentions(ids []string) string {
	ms := make([]string, len(ids))
	for i, id := range ids {
		ms[i] = "<#" + id + ">"
	}
	return strings.Join(ms, ", ")
}
