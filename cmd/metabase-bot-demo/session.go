package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
)

// The bot's block, action and callback ids the demo clicks and fills in (bot/card.go,
// bot/forms.go); the end-to-end tests of cmd/metabase-bot use the same.
const (
	actionApprove = "mb_approve"
	actionDeny    = "mb_deny"
	actionCancel  = "mb_cancel"
	actionRetry   = "mb_retry"
	denyForm      = "mb_deny_form"
	blockReason   = "mb_form_reason"
	actionReason  = "reason"
)

// storePollEvery is how often quiet looks at the store, which has nothing to wait on.
const storePollEvery = 10 * time.Millisecond

// quietFor is how long the store must show nothing to do before quiet believes it: the first
// change in Slack can come from other work (a Home tab refreshed, a delivery of the step
// before) a moment before the handler of this step has recorded anything, and on a loaded
// machine that moment was long enough for one poll to find nothing pending.
const quietFor = 300 * time.Millisecond

// requestID finds a request's id (access.RandomID after "MB-") in a message.
var requestID = regexp.MustCompile(`MB-[0-9A-Z]+`)

const helpText = `What you can type:
  as NAME: /metabase ARGS   type a slash command in #ops as NAME, for example
                            as alice: /metabase disable jane@example.com Left the company
                            as alice: /metabase status jane@example.com
                            as alice: /metabase help
  as NAME: approve          click Approve on the newest pending card (and confirm)
  as NAME: deny [REASON]    click Deny on the newest pending card, write REASON in the form, submit
  as NAME: cancel           click Cancel request on the newest pending card
  as NAME: retry            click Retry failed under the newest request that failed
  as NAME: home             open the app's Home tab: what waits for NAME, with links to the cards
  people                    who is who, and the Metabase users as they are now
  metabase fail             make Metabase answer user changes with HTTP 500 (to see a failure and retry)
  metabase ok               make Metabase work again
  help                      this text
  quit                      stop the bot and leave (so does end of input)
Lines starting with # are comments.`

// session is the terminal: it acts as the person a line names, waits until the bot has finished
// reacting, and prints what changed in Slack since the previous step.
type session struct {
	w       *world
	bot     *runningBot
	r       renderer
	out     io.Writer
	json    bool
	timeout time.Duration
	// seen is the Slack state printed so far.
	seen snapshot
}

func newSession(w *world, rb *runningBot, out io.Writer, showJSON bool, timeout time.Duration) *session {
	s := &session{w: w, bot: rb, r: w.renderer(), out: out, json: showJSON, timeout: timeout}
	s.seen = s.snapshot()
	return s
}

// exec runs one line. It reports whether the line asks to quit; an error is a line the demo
// could not carry out (the bot refusing something is not an error: that is printed).
func (s *session) exec(ctx context.Context, line string) (quit bool, err error) {
	line = strings.TrimSpace(line)
	switch {
	case line == "" || strings.HasPrefix(line, "#"):
		return false, nil
	case line == "help" || line == "?":
		fmt.Fprintln(s.out, helpText)
	case line == "quit" || line == "exit":
		return true, nil
	case line == "people":
		s.printPeople()
	case line == "metabase fail":
		// 500 is not retried by the client (only 502-504 are), so the failure shows at once.
		const body = "Internal server error (made by the demo's 'metabase fail')"
		s.w.mb.FailNext(http.MethodDelete, "/api/user/:id", -1, http.StatusInternalServerError, body)
		s.w.mb.FailNext(http.MethodPut, "/api/user/:id/reactivate", -1, http.StatusInternalServerError, body)
		fmt.Fprintln(s.out, "Metabase now answers every user change with HTTP 500, until 'metabase ok'.")
	case line == "metabase ok":
		s.w.mb.ClearFailures()
		fmt.Fprintln(s.out, "Metabase works again.")
	case strings.HasPrefix(line, "as "):
		who, what, ok := strings.Cut(strings.TrimPrefix(line, "as "), ":")
		if !ok {
			return false, errors.New(`write "as NAME: WHAT", for example "as bob: approve"`)
		}
		p, found := findPerson(strings.TrimSpace(who))
		if !found {
			return false, fmt.Errorf("nobody called %q here; the people are %s", strings.TrimSpace(who), names())
		}
		err := s.act(ctx, p, strings.TrimSpace(what))
		s.printChanges()
		return false, err
	default:
		return false, fmt.Errorf("%q is not something the demo knows; type help", line)
	}
	return false, nil
}

func names() string {
	var ns []string
	for _, p := range people {
		ns = append(ns, p.name)
	}
	return strings.Join(ns, ", ")
}

// act is one thing a person does in Slack.
func (s *session) act(ctx context.Context, p person, what string) error {
	verb, rest, _ := strings.Cut(what, " ")
	rest = strings.TrimSpace(rest)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	switch {
	case strings.HasPrefix(what, "/"):
		if verb != slashCommand {
			return fmt.Errorf("the bot answers %s only", slashCommand)
		}
		return s.step(ctx, func(ctx context.Context) (string, error) {
			return s.w.slack.SlashCommand(ctx, slacktest.SlashCommand{UserID: p.id, ChannelID: opsChannel, Text: rest})
		})
	case verb == "deny":
		return s.deny(ctx, p, rest)
	case verb == "approve" || verb == "cancel" || verb == "retry":
		if rest != "" {
			return fmt.Errorf("%s takes nothing after it: it clicks on the newest card that has the button", verb)
		}
		action := map[string]string{"approve": actionApprove, "cancel": actionCancel, "retry": actionRetry}[verb]
		m, err := s.newest(action)
		if err != nil {
			return err
		}
		s.narrateClick(p, m, action)
		return s.step(ctx, func(ctx context.Context) (string, error) { return s.click(ctx, p, m, action) })
	case what == "home":
		return s.home(ctx, p)
	case what == "":
		return errors.New(`say what they do after the colon, for example "as bob: approve"`)
	}
	return fmt.Errorf("%q is not an action; use /metabase …, approve, deny, cancel, retry or home", what)
}

// home opens p's Home tab and prints it once the bot has drawn it.
func (s *session) home(ctx context.Context, p person) error {
	before, _ := s.w.slack.Home(p.id)
	id, err := s.w.slack.OpenHome(ctx, p.id)
	if err != nil {
		return err
	}
	if _, err := s.w.slack.WaitAck(ctx, id); err != nil {
		return fmt.Errorf("the bot did not acknowledge within %s: %w", s.timeout, err)
	}
	v, err := s.w.slack.WaitHome(ctx, p.id, func(v slacktest.HomeView) bool { return v.Publishes > before.Publishes })
	if err != nil {
		return fmt.Errorf("the bot did not draw the Home tab within %s: %w", s.timeout, err)
	}
	s.printBlock(p.name+"'s Home tab:", strings.Join(s.r.blocks(v.Blocks), "\n"))
	return nil
}

// deny clicks Deny, which opens a form for the reason, then fills it in and submits it.
func (s *session) deny(ctx context.Context, p person, reason string) error {
	m, err := s.newest(actionDeny)
	if err != nil {
		return err
	}
	s.narrateClick(p, m, actionDeny)
	before := s.snapshot()
	if err := s.step(ctx, func(ctx context.Context) (string, error) { return s.click(ctx, p, m, actionDeny) }); err != nil {
		return err
	}
	view, ok := s.newForm(before, p, denyForm)
	if !ok {
		return nil // refused: the ephemeral says why
	}
	s.printChanges()
	if reason == "" {
		fmt.Fprintf(s.out, "→ %s leaves the reason empty and presses Deny\n", p.name)
	} else {
		fmt.Fprintf(s.out, "→ %s writes %q and presses Deny\n", p.name, reason)
	}
	return s.step(ctx, func(ctx context.Context) (string, error) {
		return s.w.slack.SubmitView(ctx, slacktest.ViewSubmission{UserID: p.id, ViewID: view.ID,
			Values: map[string]map[string]slacktest.InputValue{blockReason: {actionReason: {Value: reason}}}})
	})
}

// step sends one envelope (send returns its envelope id), waits for its ack, then waits until
// the bot has finished reacting.
func (s *session) step(ctx context.Context, send func(context.Context) (string, error)) error {
	before := s.snapshot()
	id, err := send(ctx)
	if err != nil {
		return err
	}
	ack, err := s.w.slack.WaitAck(ctx, id)
	if err != nil {
		return fmt.Errorf("the bot did not acknowledge within %s: %w", s.timeout, err)
	}
	if s.formErrors(ack) {
		return nil
	}
	if err := s.firstChange(ctx, before); err != nil {
		return fmt.Errorf("nothing happened in Slack within %s: %w", s.timeout, err)
	}
	return s.quiet(ctx)
}

// formErrors prints the field errors an ack to a form carries and reports whether there were
// any: then the form stays open and the bot does nothing more.
func (s *session) formErrors(ack slacktest.Ack) bool {
	var p struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if len(ack.Payload) == 0 || json.Unmarshal(ack.Payload, &p) != nil || p.ResponseAction != "errors" {
		return false
	}
	for _, k := range slices.Sorted(maps.Keys(p.Errors)) {
		fmt.Fprintln(s.out, "the form stays open and says:", p.Errors[k])
	}
	return true
}

// firstChange waits until Slack shows anything new since before: a message posted or updated,
// an ephemeral, a form. The bot always answers a person with one of these, and by the time it
// does, it has stored whatever it will go on to do.
func (s *session) firstChange(ctx context.Context, before snapshot) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := make(chan error, 3)
	go func() {
		_, err := s.w.slack.WaitMessage(ctx, func(m slacktest.Message) bool { return before.changed(before.messages, m) })
		first <- err
	}()
	go func() {
		_, err := s.w.slack.WaitEphemeral(ctx, func(m slacktest.Message) bool { return before.changed(before.ephemerals, m) })
		first <- err
	}()
	go func() {
		_, err := s.w.slack.WaitView(ctx, func(v slacktest.View) bool { _, seen := before.views[v.ID]; return !seen })
		first <- err
	}()
	return <-first
}

// quiet waits until the bot has nothing left to say or do: its outbox of Slack messages is
// delivered and no request is between approval and its outcome. The store offers no
// notification, so it is polled, as cmd/metabase-bot's tests wait for the outbox to drain.
func (s *session) quiet(ctx context.Context) error {
	t := time.NewTicker(storePollEvery)
	defer t.Stop()
	var idleSince time.Time
	for {
		pending, err := s.bot.store.PendingOutbox(ctx)
		if err != nil {
			return err
		}
		working, err := s.bot.store.List(ctx, approval.Approved, approval.Executing)
		if err != nil {
			return err
		}
		switch {
		case pending > 0 || len(working) > 0:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) >= quietFor:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the bot is still working after %s (%d Slack messages to send, %d requests executing)", s.timeout, pending, len(working))
		case <-t.C:
		}
	}
}

// newest returns the newest message with a button whose action id is action.
func (s *session) newest(action string) (slacktest.Message, error) {
	ms := s.w.slack.Messages()
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].HasAction(action) {
			return ms[i], nil
		}
	}
	what := map[string]string{
		actionApprove: "pending card to approve", actionDeny: "pending card to deny",
		actionCancel: "pending card to cancel", actionRetry: "failed request to retry",
	}[action]
	return slacktest.Message{}, fmt.Errorf("there is no %s", what)
}

func (s *session) click(ctx context.Context, p person, m slacktest.Message, action string) (string, error) {
	return s.w.slack.Click(ctx, slacktest.Click{UserID: p.id, ChannelID: m.Channel, MessageTS: m.TS, ActionID: action})
}

// narrateClick says who clicks which button on which request, and that they confirm the
// button's confirmation dialog, which Slack shows before it sends the click.
func (s *session) narrateClick(p person, m slacktest.Message, action string) {
	label, confirm := button(m.Blocks, action)
	where := "on " + nonEmpty(requestID.FindString(m.AllText()), "the card")
	if m.ThreadTS != "" {
		where = "in the thread of " + nonEmpty(s.requestOf(m), "the card")
	}
	line := fmt.Sprintf("→ %s clicks [%s] %s", p.name, label, where)
	if confirm {
		line += " and confirms"
	}
	fmt.Fprintln(s.out, line)
}

// button finds the label of the button with action id action, and whether it asks for
// confirmation.
func button(blocks json.RawMessage, action string) (label string, confirm bool) {
	var bs []struct {
		Elements  []map[string]any `json:"elements"`
		Accessory map[string]any   `json:"accessory"`
	}
	_ = json.Unmarshal(blocks, &bs)
	for _, b := range bs {
		for _, el := range append(b.Elements, b.Accessory) {
			if el != nil && el["action_id"] == action {
				t, _ := el["text"].(map[string]any)
				label, _ = t["text"].(string)
				_, confirm = el["confirm"]
				return label, confirm
			}
		}
	}
	return action, false
}

// newForm returns the form named callback that opened for p since before.
func (s *session) newForm(before snapshot, p person, callback string) (slacktest.View, bool) {
	for _, v := range s.w.slack.Views() {
		if _, seen := before.views[v.ID]; !seen && v.UserID == p.id && v.CallbackID == callback {
			return v, true
		}
	}
	return slacktest.View{}, false
}

// requestOf names the request of the card a thread reply belongs to.
func (s *session) requestOf(m slacktest.Message) string {
	if card, ok := s.w.slack.Message(m.Channel, m.ThreadTS); ok {
		return requestID.FindString(card.AllText())
	}
	return ""
}

func nonEmpty(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// snapshot is the fake Slack's visible state at one moment.
type snapshot struct {
	messages, ephemerals map[string]slacktest.Message
	views                map[string]slacktest.View
}

func (s *session) snapshot() snapshot {
	sn := snapshot{messages: map[string]slacktest.Message{}, ephemerals: map[string]slacktest.Message{}, views: map[string]slacktest.View{}}
	for _, m := range s.w.slack.Messages() {
		sn.messages[key(m)] = m
	}
	for _, m := range s.w.slack.Ephemerals() {
		sn.ephemerals[key(m)] = m
	}
	for _, v := range s.w.slack.Views() {
		sn.views[v.ID] = v
	}
	return sn
}

func key(m slacktest.Message) string { return m.Channel + "/" + m.TS + "/" + m.User }

// changed reports whether m is new, or different from its copy in was.
func (sn snapshot) changed(was map[string]slacktest.Message, m slacktest.Message) bool {
	old, ok := was[key(m)]
	return !ok || old.Updates != m.Updates || old.Text != m.Text || !bytes.Equal(old.Blocks, m.Blocks)
}

// printChanges prints what appeared or changed in Slack since the last print: first what only
// the person sees (ephemerals, forms), then cards, thread replies, direct messages and audit
// lines, each group in the order Slack received them.
func (s *session) printChanges() {
	now := s.snapshot()
	for _, e := range s.w.slack.Ephemerals() {
		if s.seen.changed(s.seen.ephemerals, e) {
			s.printBlock(fmt.Sprintf("only @%s sees, in #%s:", s.r.name(s.r.users, e.User), s.r.name(s.r.channels, e.Channel)), s.r.mrkdwn(e.Text))
		}
	}
	for _, v := range s.w.slack.Views() {
		if _, seen := s.seen.views[v.ID]; !seen {
			s.printBlock(fmt.Sprintf("a form %q opens for @%s:", v.Title, s.r.name(s.r.users, v.UserID)), strings.Join(s.r.blocks(v.Blocks), "\n"))
			if v.CallbackID != denyForm {
				fmt.Fprintln(s.out, "(the demo fills in only the deny form: type the command with its users and reason instead)")
			}
		}
	}
	var cards, thread, dms, audit []slacktest.Message
	for _, m := range s.w.slack.Messages() {
		if !s.seen.changed(s.seen.messages, m) {
			continue
		}
		switch {
		case m.Channel == auditChannel:
			audit = append(audit, m)
		case m.ThreadTS != "":
			thread = append(thread, m)
		case strings.HasPrefix(m.Channel, "D"):
			dms = append(dms, m)
		default:
			cards = append(cards, m)
		}
	}
	for _, m := range cards {
		s.printCard(m, s.seen.messages)
	}
	for _, m := range thread {
		s.printBlock(fmt.Sprintf("#%s, thread of %s:", s.r.name(s.r.channels, m.Channel), nonEmpty(s.requestOf(m), "a message")), s.body(m))
	}
	for _, m := range dms {
		s.printBlock(fmt.Sprintf("direct message to @%s:", s.r.name(s.r.users, strings.TrimPrefix(m.Channel, "D"))), s.body(m))
	}
	for _, m := range audit {
		s.printBlock(fmt.Sprintf("#%s:", auditName), s.body(m))
	}
	s.seen = now
}

// body is a message as a reader sees it: its blocks when it has any (Slack shows those instead
// of the text), else its text.
func (s *session) body(m slacktest.Message) string {
	if len(m.Blocks) > 0 {
		return strings.Join(s.r.blocks(m.Blocks), "\n")
	}
	return s.r.mrkdwn(m.Text)
}

// printBlock prints a heading and a text indented under it; a one-line text goes on the
// heading's line.
func (s *session) printBlock(heading, text string) {
	if !strings.Contains(text, "\n") {
		fmt.Fprintln(s.out, heading, text)
		return
	}
	fmt.Fprintln(s.out, heading)
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintln(s.out, "    "+l)
	}
}

// printCard prints a card in a frame, then its notification text and where to see its real look.
func (s *session) printCard(m slacktest.Message, was map[string]slacktest.Message) {
	state := "new card"
	if _, ok := was[key(m)]; ok {
		state = "card updated"
	}
	fmt.Fprintf(s.out, "#%s, %s %s:\n", s.r.name(s.r.channels, m.Channel), state, nonEmpty(requestID.FindString(m.AllText()), ""))
	if len(m.Blocks) == 0 {
		fmt.Fprintln(s.out, "    "+s.r.mrkdwn(m.Text))
		return
	}
	for _, l := range s.r.blocks(m.Blocks) {
		fmt.Fprintln(s.out, "  ┃ "+l)
	}
	fmt.Fprintln(s.out, "  notification text: "+s.r.mrkdwn(m.Text))
	if link, err := blockKitBuilderLink(m.Blocks); err == nil {
		fmt.Fprintln(s.out, "  see it in Block Kit Builder: "+link)
	}
	if s.json {
		var pretty bytes.Buffer
		if json.Indent(&pretty, m.Blocks, "    ", "  ") == nil {
			fmt.Fprintln(s.out, "  Block Kit JSON:\n    "+pretty.String())
		}
	}
}

// printPeople lists the workspace and the Metabase users as they are now.
func (s *session) printPeople() {
	fmt.Fprintln(s.out, "Slack people (commands go to #"+opsName+", audit lines to #"+auditName+"):")
	for _, p := range people {
		fmt.Fprintf(s.out, "  %-6s %s\n", p.name, p.role)
	}
	fmt.Fprintln(s.out, "Metabase users:")
	for _, l := range s.w.metabaseLines() {
		fmt.Fprintln(s.out, "  "+l)
	}
}
