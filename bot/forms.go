package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Modal callback, block and action ids.
const (
	callbackRequestForm  = "mb_request_form"
	callbackDenyForm     = "mb_deny_form"
	callbackInactiveForm = "mb_inactive_form"
	blockFormUser        = "mb_form_user"
	blockFormTargets     = "mb_form_targets"
	blockFormReason      = "mb_form_reason"
	blockFormReturn      = "mb_form_return"
	actionFormUser       = "user"
	actionFormTargets    = "targets"
	actionFormReason     = "reason"
	actionFormReturn     = "date"
	// viewValidationBudget keeps form validation inside Slack's 3 s for a view_submission ack.
	viewValidationBudget = 2500 * time.Millisecond
)

// formMeta travels in a modal's private_metadata: where the form was opened and for what.
type formMeta struct {
	Verb      Verb   `json:"verb,omitempty"`
	Channel   string `json:"channel"`
	RequestID string `json:"request_id,omitempty"`
	Days      int    `json:"days,omitempty"`
}

func (m formMeta) encode() string { p, _ := json.Marshal(m); return string(p) }

func textInput(blockID, actionID, label, placeholder string, multiline, optional bool) *slack.InputBlock {
	el := slack.NewPlainTextInputBlockElement(plain(placeholder), actionID)
	el.Multiline = multiline
	el.MaxLength = maxReasonLen
	in := slack.NewInputBlock(blockID, plain(label), nil, el)
	in.Optional = optional
	return in
}

// openRequestForm opens the request form for `disable` or `enable` without arguments. The
// trigger id expires 3 s after the command, which is why this runs straight after the ack.
func (b *Bot) openRequestForm(ctx context.Context, sc slack.SlashCommand, verb Verb, log logrus.FieldLogger) {
	user := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Pick a person"), actionFormUser)
	userIn := slack.NewInputBlock(blockFormUser, plain("Slack user"), nil, user)
	userIn.Optional = true
	targets := textInput(blockFormTargets, actionFormTargets, "Or emails / Metabase ids", "jane@example.com 42", false, true)
	targets.Element.(*slack.PlainTextInputBlockElement).MaxLength = 2000
	reason := textInput(blockFormReason, actionFormReason, "Reason", "Why?", true, !b.cfg.RequireReason)
	blocks := []slack.Block{userIn, targets, reason}
	if verb == VerbDisable {
		date := slack.NewDatePickerBlockElement(actionFormReturn)
		ret := slack.NewInputBlock(blockFormReturn, plain("Re-enable automatically on (optional)"), nil, date)
		ret.Optional = true
		blocks = append(blocks, ret)
	}
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackRequestForm,
		Title:  plain(clip(titleCase(string(verb))+" Metabase users", 24)),
		Submit: plain("Request"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: blocks}, PrivateMetadata: formMeta{Verb: verb, Channel: sc.ChannelID}.encode(),
	}
	if _, err := b.slack.OpenViewContext(ctx, sc.TriggerID, view); err != nil {
		b.cfg.Metrics.slackError("views.open", err)
		log.WithError(err).Warn("Could not open the request form")
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, "I could not open the form. Type the request instead:\n"+b.helpText())
	}
}

// openDenyForm asks an approver for the reason of a denial.
func (b *Bot) openDenyForm(ctx context.Context, triggerID string, r approval.Request, log logrus.FieldLogger) bool {
	reason := textInput(blockFormReason, actionFormReason, "Reason for denying", "Tell the requester why", true, !b.cfg.DenyReasonRequired)
	view := slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackDenyForm, Title: plain("Deny " + clip(r.ID, 18)),
		Submit: plain("Deny"), Close: plain("Back"),
		Blocks:          slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(mrkdwn(clip("Deny "+string(r.Action)+" of "+targetsSummary(r)+"?", 3000)), nil, nil), reason}},
		PrivateMetadata: formMeta{Channel: r.ChannelID, RequestID: r.ID}.encode(),
	}
	if _, err := b.slack.OpenViewContext(ctx, triggerID, view); err != nil {
		b.cfg.Metrics.slackError("views.open", err)
		log.WithError(err).Warn("Could not open the deny form")
		return false
	}
	return true
}

// handleViewSubmission validates a submitted form and acks it: with field errors (the form stays
// open and shows them) or empty (the form closes) before the work continues.
func (b *Bot) handleViewSubmission(ctx context.Context, sm acker, req socketmode.Request, cb slack.InteractionCallback) {
	log := b.log.WithFields(logrus.Fields{"callback_id": cb.View.CallbackID, "slack_user_id": cb.User.ID})
	if cb.View.State == nil {
		// Slack always sends state, but a payload without it must not panic before the ack.
		cb.View.State = &slack.ViewState{}
	}
	var meta formMeta
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil {
		log.Warn("Ignoring a form with unreadable metadata")
		b.ackView(sm, req, nil, log)
		return
	}
	values := cb.View.State.Values
	reason := strings.TrimSpace(values[blockFormReason][actionFormReason].Value)
	switch cb.View.CallbackID {
	case callbackDenyForm:
		if b.cfg.DenyReasonRequired && reason == "" {
			b.ackView(sm, req, map[string]string{blockFormReason: "A reason is required to deny."}, log)
			return
		}
		b.ackView(sm, req, nil, log)
		ok, err := b.isApprover(ctx, cb.User.ID)
		if err != nil {
			log.WithError(err).Error("Could not check the approver group")
			b.ephemeral(ctx, meta.Channel, cb.User.ID, "I could not check the approver group, so the request was not denied. Please try again.")
			return
		}
		if !ok {
			b.ephemeral(ctx, meta.Channel, cb.User.ID, "Only approvers ("+b.approverMention()+") can decide Metabase requests.")
			return
		}
		b.deny(ctx, meta.Channel, cb.User.ID, meta.RequestID, reason, log.WithField("request_id", meta.RequestID))
	case callbackRequestForm:
		vctx, cancel := context.WithTimeout(ctx, viewValidationBudget)
		defer cancel()
		in, targetsBlock, fieldErrs := b.formRequest(meta, cb, reason)
		if len(fieldErrs) == 0 {
			// A redelivered submission closes the form; requestChange then ignores it.
			if _, err := b.buildRequest(vctx, in); err != nil && !errors.Is(err, errRedelivered) {
				fieldErrs = map[string]string{targetsBlock: clip(problemText(err), 150)}
			}
		}
		if len(fieldErrs) > 0 {
			b.ackView(sm, req, fieldErrs, log)
			return
		}
		b.ackView(sm, req, nil, log)
		b.requestChange(ctx, in, log)
	case callbackInactiveForm:
		if b.cfg.RequireReason && reason == "" {
			b.ackView(sm, req, map[string]string{blockFormReason: "A reason is required."}, log)
			return
		}
		b.ackView(sm, req, nil, log)
		b.inactiveRequest(ctx, meta, cb.User.ID, cb.View.ID, reason, log)
	default:
		b.ackView(sm, req, nil, log)
		log.Warn("Ignoring an unknown form")
	}
}

// formRequest turns the request form into the same input the text command produces. The fields
// are read as they are, not glued into a command line: a reason may span lines or start with
// "until", and a word in the targets field that is not a user is an error there, never part of
// the reason. It also returns the block that target problems belong to.
func (b *Bot) formRequest(meta formMeta, cb slack.InteractionCallback, reason string) (requestInput, string, map[string]string) {
	values := cb.View.State.Values
	fieldErr := func(block, msg string) (requestInput, string, map[string]string) {
		return requestInput{}, "", map[string]string{block: clip(msg, 150)}
	}
	if meta.Verb != VerbDisable && meta.Verb != VerbEnable {
		return fieldErr(blockFormTargets, "This form is out of date; please open it again.")
	}
	var refs []TargetRef
	seen := map[string]bool{}
	add := func(t TargetRef) {
		if !seen[t.key()] {
			seen[t.key()] = true
			refs = append(refs, t)
		}
	}
	if u := values[blockFormUser][actionFormUser].SelectedUser; u != "" {
		t, err := parseTarget("<@" + u + ">")
		if err != nil {
			return fieldErr(blockFormUser, err.Error())
		}
		add(t)
	}
	typed := tokenize(values[blockFormTargets][actionFormTargets].Value)
	for _, w := range typed {
		if !looksLikeTarget(w) {
			return fieldErr(blockFormTargets, fmt.Sprintf("Only emails, Metabase ids or mentions go here, not %s.", quoteWord(w, 40)))
		}
		t, err := parseTarget(w)
		if err != nil {
			return fieldErr(blockFormTargets, err.Error())
		}
		add(t)
	}
	targetsBlock := blockFormTargets
	if len(typed) == 0 {
		targetsBlock = blockFormUser
	}
	switch {
	case len(refs) == 0:
		return fieldErr(blockFormTargets, "Pick a Slack user or type an email or Metabase id.")
	case len(refs) > maxTargets:
		return fieldErr(blockFormTargets, fmt.Sprintf("That names %d users; one request can name at most %d.", len(refs), maxTargets))
	case utf8.RuneCountInString(reason) > maxReasonLen:
		return fieldErr(blockFormReason, fmt.Sprintf("The reason is too long; the limit is %d characters.", maxReasonLen))
	case b.cfg.RequireReason && reason == "":
		return fieldErr(blockFormReason, "A reason is required.")
	}
	cmd := Command{Verb: meta.Verb, Targets: refs, Reason: reason}
	if d := values[blockFormReturn][actionFormReturn].SelectedDate; d != "" && meta.Verb == VerbDisable {
		if _, err := parseReturnDate(d, b.cfg.ReturnLocation, b.now(), b.cfg.MaxReturnAhead); err != nil {
			return fieldErr(blockFormReturn, problemText(err))
		}
		cmd.Until = d
	}
	return requestInput{cmd: cmd, userID: cb.User.ID, channelID: meta.Channel, sourceKey: "form:" + cb.View.ID + ":" + cb.View.Hash},
		targetsBlock, nil
}

func problemText(err error) string {
	var p *problem
	if errors.As(err, &p) {
		return p.msg
	}
	return "I could not check that: " + userMessage(err)
}

func (b *Bot) ackView(sm acker, req socketmode.Request, fieldErrs map[string]string, log logrus.FieldLogger) {
	var err error
	if len(fieldErrs) > 0 {
		err = sm.Ack(req, slack.NewErrorsViewSubmissionResponse(fieldErrs))
	} else {
		err = sm.Ack(req)
	}
	if err != nil {
		log.WithError(err).Error("Could not ack a form submission")
	}
}

// inactiveRequest turns the inactive report into one bulk disable, recomputing the list so it
// reflects Metabase at the moment of the request.
// The form's view id makes a redelivered submission create nothing new, while a later request
// from a new form (after a denial, say) is a request of its own.
func (b *Bot) inactiveRequest(ctx context.Context, meta formMeta, user, viewID, reason string, log logrus.FieldLogger) {
	users, err := b.inactiveUsers(ctx, meta.Days)
	if err != nil {
		log.WithError(err).Error("Could not list inactive users")
		b.ephemeral(ctx, meta.Channel, user, "I could not list inactive users: "+userMessage(err))
		return
	}
	if len(users) == 0 {
		b.ephemeral(ctx, meta.Channel, user, fmt.Sprintf("No active user has been inactive for %d days any more; nothing to request.", meta.Days))
		return
	}
	refs := make([]TargetRef, len(users))
	for i, u := range users {
		refs[i] = TargetRef{Kind: ByID, ID: u.ID, Raw: u.Email}
	}
	if reason == "" {
		reason = fmt.Sprintf("licence clean-up: no login for %d days", meta.Days)
	}
	b.requestChange(ctx, requestInput{
		cmd:    Command{Verb: VerbDisable, Targets: refs, Reason: reason},
		userID: user, channelID: meta.Channel, resolved: users,
		sourceKey: "inactive:" + viewID,
	}, log)
}
