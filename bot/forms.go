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

	"github.com/metabase-bot/metabase-bot/bot/access"
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

// forms is the Bot's work with modals: opening them, validating submissions within the ack's
// budget, and answering them. It is a view of the Bot, with no state of its own.
type forms struct{ *Bot }

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
func (b forms) openRequestForm(ctx context.Context, sc slack.SlashCommand, verb Verb) {
	log := b.logger(ctx)
	user := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Pick a person"), actionFormUser)
	userIn := slack.NewInputBlock(blockFormUser, plain("Slack user"), nil, user)
	userIn.Optional = true
	targets := textInput(blockFormTargets, actionFormTargets, "Or emails / Metabase ids", "jane@example.com 42", false, true)
	// Slack's maximum for a plain-text input: about 100 emails of up to 29 characters. Larger
	// lists go through the user picker or the inactive report.
	targets.Element.(*slack.PlainTextInputBlockElement).MaxLength = 3000
	reason := textInput(blockFormReason, actionFormReason, "Reason", "Why?", true, !b.cfg.Policy.RequireReason)
	blocks := []slack.Block{userIn, targets, reason}
	if verb == VerbDisable {
		date := slack.NewDatePickerBlockElement(actionFormReturn)
		ret := slack.NewInputBlock(blockFormReturn, plain("Re-enable automatically on (optional)"), nil, date)
		ret.Optional = true
		blocks = append(blocks, ret)
		blocks = append(blocks, handoverInputs()...)
		blocks = append(blocks, revokeInput(), unshareInput())
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
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, "I could not open the form. Type the request instead:\n"+b.v.helpText())
	}
}

// openDenyForm asks an approver for the reason of a denial.
func (b forms) openDenyForm(ctx context.Context, triggerID string, r approval.Request) bool {
	log := b.logger(ctx)
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
func (b forms) handleViewSubmission(ctx context.Context, sm acker, req socketmode.Request, cb slack.InteractionCallback) {
	log := b.log.WithFields(logrus.Fields{"callback_id": cb.View.CallbackID, "slack_user_id": cb.User.ID})
	ctx = access.WithLogger(ctx, log)
	if cb.View.State == nil {
		// Slack always sends state, but a payload without it must not panic before the ack.
		cb.View.State = &slack.ViewState{}
	}
	var meta formMeta
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil {
		log.Warn("Ignoring a form with unreadable metadata")
		b.ackView(ctx, sm, req, nil)
		return
	}
	ctx = withDelayNotice(ctx, func(wait time.Duration) {
		b.ephemeral(ctx, meta.Channel, cb.User.ID, fmt.Sprintf(
			"Slack asked me to wait %s before I can check the approver and requester groups; I'll carry out your form then.", waitWords(wait)))
	})
	values := cb.View.State.Values
	reason := strings.TrimSpace(values[blockFormReason][actionFormReason].Value)
	switch cb.View.CallbackID {
	case callbackDenyForm:
		if b.cfg.DenyReasonRequired && reason == "" {
			b.ackView(ctx, sm, req, map[string]string{blockFormReason: "A reason is required to deny."})
			return
		}
		b.ackView(ctx, sm, req, nil)
		ctx := access.WithLogger(ctx, log.WithField("request_id", meta.RequestID))
		if _, err := b.core.Deny(ctx, meta.RequestID, cb.User.ID, reason); err != nil {
			b.refused(ctx, meta.Channel, cb.User.ID, opDeny, err)
		}
	case callbackRequestForm:
		in, targetsBlock, fieldErrs := b.formRequest(meta, cb, reason)
		if len(fieldErrs) > 0 {
			b.ackView(ctx, sm, req, fieldErrs)
			return
		}
		b.submitForm(ctx, sm, req, in, targetsBlock)
	case callbackLeaversForm:
		if b.cfg.Policy.RequireReason && reason == "" {
			b.ackView(ctx, sm, req, map[string]string{blockFormReason: "A reason is required."})
			return
		}
		b.ackView(ctx, sm, req, nil)
		leavers(b).submitted(ctx, meta, cb.User.ID, cb.View.ID, reason)
	case callbackOrphansForm:
		b.orphansSubmitted(ctx, sm, req, meta, cb, reason)
	case callbackInactiveForm:
		if b.cfg.Policy.RequireReason && reason == "" {
			b.ackView(ctx, sm, req, map[string]string{blockFormReason: "A reason is required."})
			return
		}
		b.ackView(ctx, sm, req, nil)
		b.inactiveRequest(ctx, meta, cb.User.ID, cb.View.ID, reason)
	default:
		b.ackView(ctx, sm, req, nil)
		log.Warn("Ignoring an unknown form")
	}
}

// formRequest turns the request form into the same input the text command produces. The fields
// are read as they are, not glued into a command line: a reason may span lines or start with
// "until", and a word in the targets field that is not a user is an error there, never part of
// the reason. It also returns the block that target problems belong to.
func (b forms) formRequest(meta formMeta, cb slack.InteractionCallback, reason string) (access.ChangeRequest, string, map[string]string) {
	values := cb.View.State.Values
	fieldErr := func(block, msg string) (access.ChangeRequest, string, map[string]string) {
		return access.ChangeRequest{}, "", map[string]string{block: clip(msg, 150)}
	}
	if meta.Verb != VerbDisable && meta.Verb != VerbEnable {
		return fieldErr(blockFormTargets, "This form is out of date; please open it again.")
	}
	var refs []access.TargetRef
	seen := map[string]bool{}
	add := func(t access.TargetRef) {
		if !seen[t.Key()] {
			seen[t.Key()] = true
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
	// A form field arrives as typed, unescaped: escaping it as Slack escapes a command lets one
	// parser read both, and keeps typed <@U…> markup from passing for a mention.
	typed := tokenize(escape(values[blockFormTargets][actionFormTargets].Value))
	for _, w := range typed {
		if !looksLikeTarget(w) {
			return fieldErr(blockFormTargets, fmt.Sprintf("Only emails, Metabase ids or mentions go here, not %s.", quoteWord(plainWord(w), 40)))
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
	case b.cfg.Policy.RequireReason && reason == "":
		return fieldErr(blockFormReason, "A reason is required.")
	}
	c := access.ChangeRequest{Action: Command{Verb: meta.Verb}.action(), Targets: refs, Reason: reason,
		Requester: cb.User.ID, Channel: meta.Channel, SourceKey: "form:" + cb.View.ID + ":" + cb.View.Hash}
	if d := values[blockFormReturn][actionFormReturn].SelectedDate; d != "" && meta.Verb == VerbDisable {
		p := b.core.Policy()
		if _, err := access.ParseReturnDate(d, p.ReturnLocation, b.core.Now(), p.MaxReturnAhead); err != nil {
			return fieldErr(blockFormReturn, b.v.explain(opCheck, err))
		}
		c.Until = d
	}
	if meta.Verb == VerbDisable {
		hv, block, msg := formHandover(values, true)
		if msg != "" {
			return fieldErr(block, msg)
		}
		c.Handover = hv
		c.RevokeKeys, c.Unshare = formRevokeKeys(values), formUnshare(values)
	}
	return c, targetsBlock, nil
}

// submitForm validates a request form within the ack's budget. Problems found in time go next to
// the form's fields; when the look-ups take longer, the form is acked (it closes) and the answer
// comes as a direct message from the app once they finish, which reaches the person even in a
// channel the bot is not a member of. Either way every user is looked up once: the request
// created is the one validated.
func (b forms) submitForm(ctx context.Context, sm acker, req socketmode.Request, in access.ChangeRequest, targetsBlock string) {
	log := b.logger(ctx)
	type prepared struct {
		r   approval.Request
		err error
	}
	done := make(chan prepared, 1)
	go func() {
		r, err := b.core.Prepare(ctx, in)
		done <- prepared{r, err}
	}()
	budget := time.NewTimer(viewValidationBudget)
	defer budget.Stop()
	select {
	case p := <-done:
		switch {
		case errors.Is(p.err, access.ErrRedelivered):
			// A redelivered submission closes the form and creates nothing.
			b.ackView(ctx, sm, req, nil)
			log.Info("Ignoring a redelivered form")
		case p.err != nil:
			b.ackView(ctx, sm, req, map[string]string{problemBlock(p.err, targetsBlock): clip(b.v.explain(opCheck, p.err), 150)})
		default:
			b.ackView(ctx, sm, req, nil)
			b.answerSubmit(ctx, in, p.r, b.core.Create(ctx, p.r))
		}
	case <-budget.C:
		b.ackView(ctx, sm, req, nil)
		log.Info("Form validation outlasted the ack budget; answering by direct message")
		p := <-done
		err := p.err
		if err == nil {
			err = b.core.Create(ctx, p.r)
		}
		switch {
		case err == nil:
			log.WithFields(logrus.Fields{"request_id": p.r.ID, "targets": access.TargetEmails(p.r)}).Info("Request created")
		case errors.Is(err, access.ErrRedelivered):
			log.Info("Ignoring a redelivered form")
		default:
			log.WithField("error_message", err.Error()).Info("Refused a request from a form")
			b.direct(ctx, in.Requester, "Your request was not created:\n"+b.v.explain(opValidate, err))
		}
	}
}

// direct sends a direct message from the app to user.
func (b forms) direct(ctx context.Context, user, text string) {
	if _, _, err := b.slack.PostMessageContext(ctx, user, slack.MsgOptionText(clip(text, 3900), false)); err != nil {
		b.cfg.Metrics.slackError("chat.postMessage", err)
		b.log.WithError(err).WithField("slack_user_id", user).Warn("Could not send a direct message")
	}
}

func (b forms) ackView(ctx context.Context, sm acker, req socketmode.Request, fieldErrs map[string]string) {
	log := b.logger(ctx)
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
