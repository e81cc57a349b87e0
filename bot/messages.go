package bot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// threadMessage is one reply under a card, with the action ids of its buttons.
type threadMessage struct {
	text    string
	buttons []string
	// actions, when set, are the reply's buttons instead of buttons (their values name more
	// than the request, see watch.go).
	actions slack.Block
}

// threadMessages words a thread notice. Most events are one reply; long lists are split within
// Slack's section limit.
func (v *view) threadMessages(n access.Notice) []threadMessage {
	if n.Legacy != nil {
		return []threadMessage{{text: n.Legacy.Text, buttons: n.Legacy.Buttons}}
	}
	e := n.Event
	r := e.Request
	if e.Watch != nil {
		return v.watchThreadMessages(*e)
	}
	one := func(text string, buttons ...string) []threadMessage {
		return []threadMessage{{text: text, buttons: buttons}}
	}
	if msgs, ok := v.breakGlassThread(n); ok {
		return msgs
	}
	switch e.Type {
	case access.Requested:
		// The card shows the first maxCardTargets and says "and N more"; the thread has them all,
		// then everything they leave running, with links.
		if len(r.Targets) <= maxCardTargets {
			return v.consequenceMessages(r)
		}
		lines := make([]string, 0, len(r.Targets)+1)
		lines = append(lines, fmt.Sprintf("All %d users of request %s:", len(r.Targets), r.ID))
		for _, t := range r.Targets {
			lines = append(lines, "• "+targetLine(t))
		}
		return append(chunked(chunkLines(lines, maxSectionText)), v.consequenceMessages(r)...)
	case access.Denied:
		if e.Reason != "" {
			return one("Denied by " + mention(e.Actor) + ": " + escape(e.Reason))
		}
		return one("Denied by " + mention(e.Actor) + ".")
	case access.Cancelled:
		return one("Cancelled by " + mention(e.Actor) + ".")
	case access.VoteWithdrawn:
		return one(mention(e.Actor) + "'s approval no longer counts: they are not an approver any more. The card shows the approvals that count.")
	case access.Retrying:
		return one(mention(e.Actor) + " is retrying the failed users.")
	case access.Finished:
		out := finishedMessages(r)
		if lines := append(keyLines(r), linkLines(r)...); len(lines) > 0 {
			out = append(out, chunked(chunkLines(lines, maxSectionText))...)
		}
		return append(out, v.handoverMessages(r)...)
	case access.Reminded:
		return one(v.approverMention() + " reminder: this request is still waiting for approval and expires " + slackDate(r.ExpiresAt) + ".")
	case access.Expired:
		return one(":hourglass: This request expired without a decision. Make a new one if it is still needed.")
	case access.ReturnScheduled:
		text := ":calendar: " + auditTargets(r.Targets) + " will be re-enabled automatically " + slackDate(r.NotBefore) +
			", with admin status restored. An approver can cancel that below."
		if r.KeysRevokedAny() {
			text += " The API keys this request revoked are not restored."
		}
		return one(text, actionCancelReturn)
	case access.ReturnExtended:
		return one(":calendar: " + auditTargets(e.Added) + " will also be re-enabled automatically " + slackDate(r.NotBefore) +
			". The button above cancels the return for everyone.")
	case access.ReturnCancelled:
		if e.By != "" {
			return one(fmt.Sprintf("Request %s, approved by %s, disabled %s again: they will not be re-enabled automatically.",
				e.By, mention(e.Actor), auditTargets(e.Removed)))
		}
		return one("Automatic return cancelled by " + mention(e.Actor) + ": " + auditTargets(r.Targets) + " stay disabled.")
	}
	return nil
}

func chunked(texts []string) []threadMessage {
	out := make([]threadMessage, len(texts))
	for i, t := range texts {
		out[i] = threadMessage{text: t}
	}
	return out
}

// finishedMessages are the outcome of an execution: one line per target and a summary, with a
// Retry button when something failed.
func finishedMessages(r approval.Request) []threadMessage {
	lines := outcomeLines(r)
	summary := finishSummary(r)
	_, _, failed := r.Counts()
	var buttons []string
	if failed > 0 {
		buttons = []string{actionRetry}
	}
	if len(r.Targets) == 1 {
		return []threadMessage{{text: lines[0][len("• "):] + "\n" + summary, buttons: buttons}}
	}
	out := chunked(chunkLines(lines, maxSectionText))
	return append(out, threadMessage{text: summary, buttons: buttons})
}

func finishSummary(r approval.Request) string {
	done, skipped, failed := r.Counts()
	var head string
	switch r.State {
	case approval.Succeeded:
		head = ":white_check_mark: Done."
	case approval.Partial:
		head = ":warning: Partly done: some users failed."
	default:
		head = ":x: Failed."
	}
	if r.DryRun {
		head += " DRY RUN: Metabase was not changed."
	}
	out := fmt.Sprintf("%s %s %d, skipped %d, failed %d.", head, verbPast(r.Action), done, skipped, failed)
	if r.Action == approval.Disable && done > 0 && !r.DryRun {
		// The session lookup requires an active user (docs/metabase.md#deactivation).
		out += " Their Metabase sessions ended at once."
	}
	return out
}

// auditText is one append-only audit line: the event, the request id, the action and targets,
// the requester and the actor as mentions of their user ids, and any detail.
func (v *view) auditText(n access.Notice) string {
	if n.Legacy != nil {
		return n.Legacy.Text
	}
	e := n.Event
	r := e.Request
	targets := r.Targets
	name, detail := e.AuditName(), auditDetail(*e)
	switch {
	case e.Type == access.ReturnExtended:
		targets = e.Added
	case e.Type == access.ReturnCancelled && len(e.Removed) > 0:
		targets = e.Removed
	}
	parts := []string{
		fmt.Sprintf(":memo: *%s* · request `%s`", name, r.ID),
		fmt.Sprintf("%s %s", r.Action, auditTargets(targets)),
		"requester " + mention(r.Requester),
	}
	if e.Actor != "" {
		parts = append(parts, "by "+mention(e.Actor))
	}
	if r.IsBreakGlass() && e.Type != access.BrokeGlass {
		parts = append(parts, breakGlassMark)
	}
	if detail != "" {
		parts = append(parts, detail)
	}
	if r.DryRun {
		parts = append(parts, "DRY RUN")
	}
	return clip(strings.Join(parts, " · "), maxSectionText-24) + auditAnchor(n)
}

// auditAnchor ends an audit line with its entry in the hash-chained audit log, "· #42 · 3f9a1c2e",
// so the channel holds a copy of the chain that a later edit of the database no longer matches.
func auditAnchor(n access.Notice) string {
	if n.AuditSeq == 0 || len(n.AuditHash) < 8 {
		return ""
	}
	return fmt.Sprintf(" · #%d · %s", n.AuditSeq, n.AuditHash[:8])
}

// auditDetail is what an audit line says about an event besides its name.
func auditDetail(e access.Event) string {
	r := e.Request
	if e.Watch != nil {
		return watchAuditDetail(e)
	}
	reason := func(s string) string {
		if s == "" {
			return ""
		}
		return "reason: " + escape(s)
	}
	switch e.Type {
	case access.Requested, access.BrokeGlass:
		return joinDetail(reason(r.Reason), escape(access.HandoverSummary(r)))
	case access.Denied:
		return reason(e.Reason)
	case access.Withdrawn:
		return "card not posted: Slack said `" + e.Code + "`"
	case access.ReturnCancelled:
		if e.By != "" {
			return "superseded by request `" + e.By + "`"
		}
	case access.Finished:
		done, skipped, failed := r.Counts()
		detail := fmt.Sprintf("result: %s %d, skipped %d, failed %d", verbPast(r.Action), done, skipped, failed)
		if len(r.Targets) == 1 && r.Targets[0].Result.Message != "" {
			detail += " (" + escape(r.Targets[0].Result.Message) + ")"
		}
		if revoked, left := access.KeysRevokedCount(r); r.RevokeKeys {
			detail += fmt.Sprintf(" · API keys revoked %d, not revoked %d", revoked, left)
		}
		if removed, left := access.LinksRemovedCount(r); r.Unshare {
			detail += fmt.Sprintf(" · public links removed %d, not removed %d", removed, left)
		}
		return joinDetail(detail, access.HandoverResultSummary(r))
	case access.ReturnScheduled, access.ReturnExtended:
		return "at " + slackDate(r.NotBefore)
	case access.ReturnStarted:
		return "scheduled for " + slackDate(r.NotBefore)
	}
	return ""
}

// requesterText is the direct message to a requester whose request could not be shown.
func (v *view) requesterText(e access.Event) string {
	r := e.Request
	hint := hintForCode(e.Code, "")
	if hint != "" {
		hint = ": " + hint
	}
	return fmt.Sprintf("I could not post the approval card for request %s in <#%s>: Slack said `%s`%s. The request was cancelled; nothing changed in Metabase.",
		r.ID, r.ChannelID, e.Code, hint)
}

// auditTargets names up to 20 targets by email for one-line texts, each with its instance when
// a target names one (several instances).
func auditTargets(ts []approval.Target) string {
	const shown = 20
	var emails []string
	for i, t := range ts {
		if i == shown {
			emails = append(emails, fmt.Sprintf("and %d more", len(ts)-shown))
			break
		}
		if t.Instance != "" {
			emails = append(emails, escape(t.Instance+":"+nonEmpty(t.Email, strconv.Itoa(t.UserID))))
			continue
		}
		emails = append(emails, escape(t.Email))
	}
	return strings.Join(emails, ", ")
}

// outcomeLines is the per-target result list for the thread: each line names the email and says
// what happened.
func outcomeLines(r approval.Request) []string {
	lines := make([]string, 0, len(r.Targets))
	for _, t := range r.Targets {
		if len(r.Instances) > 0 {
			// Several instances: the same person may have a result in each.
			t.Email = t.InstanceName() + ": " + nonEmpty(t.Email, approval.UserKey{Instance: t.InstanceName(), ID: t.UserID}.String())
		}
		switch t.Result.Outcome {
		case approval.Done:
			line := fmt.Sprintf("• %s: %s", escape(t.Email), verbPast(r.Action))
			if t.Result.Message != "" {
				line += " (" + escape(t.Result.Message) + ")"
			}
			lines = append(lines, line)
		case approval.Skipped:
			lines = append(lines, fmt.Sprintf("• %s: skipped: %s", escape(t.Email), escape(t.Result.Message)))
		default:
			lines = append(lines, fmt.Sprintf("• %s: failed: %s", escape(t.Email), escape(nonEmpty(t.Result.Message, "not attempted"))))
		}
	}
	return lines
}

// instanceLines are a several-instance card's targets: each person named, then one line per
// instance the request looked in: their state there, "not found", or "unreachable (will retry)".
func instanceLines(r approval.Request) []string {
	var lines []string
	if len(r.Instances) == 1 {
		lines = append(lines, "_only in "+escape(r.Instances[0])+"_")
	}
	type person struct {
		head  string
		lines []string
	}
	var people []*person
	byEmail := map[string]*person{}
	get := func(email, name string) *person {
		key := strings.ToLower(email)
		if p, ok := byEmail[key]; ok {
			return p
		}
		head := escape(email)
		if name != "" && !strings.EqualFold(name, email) {
			head = escape(name) + " · " + head
		}
		p := &person{head: head}
		byEmail[key] = p
		people = append(people, p)
		return p
	}
	for _, t := range r.Targets {
		email := t.Email
		if email == "" {
			email = approval.UserKey{Instance: t.InstanceName(), ID: t.UserID}.String()
		}
		p := get(email, t.Name)
		p.lines = append(p.lines, escape(t.InstanceName())+": "+instanceState(t))
	}
	for _, n := range r.Notes {
		p := get(n.Email, "")
		p.lines = append(p.lines, escape(n.Instance)+": "+escape(n.Note))
	}
	for i, p := range people {
		if i == maxCardTargets {
			lines = append(lines, fmt.Sprintf("…and %d more (full list in the thread)", len(people)-maxCardTargets))
			break
		}
		lines = append(lines, "• "+p.head)
		for _, l := range p.lines {
			lines = append(lines, "    "+l)
		}
	}
	return lines
}

// instanceState is one target's line on a several-instance card, after its instance's name.
func instanceState(t approval.Target) string {
	if t.Unresolved && t.Result.Outcome == "" {
		return "unreachable (will retry)"
	}
	parts := []string{"id " + strconv.Itoa(t.UserID)}
	if t.Superuser {
		parts = append(parts, "*admin*")
	}
	if !t.Unresolved {
		parts = append(parts, "last login "+lastLogin(t))
	}
	if t.SSOSource != "" {
		parts = append(parts, "SSO "+escape(t.SSOSource))
	}
	return strings.Join(parts, " · ")
}

// targetLine is one target in a list: "Jane Doe <jane@example.com> · id 5 · admin".
func targetLine(t approval.Target) string {
	var b strings.Builder
	if t.Name != "" && !strings.EqualFold(t.Name, t.Email) {
		b.WriteString(escape(t.Name) + " · ")
	}
	b.WriteString(escape(t.Email))
	b.WriteString(" · id " + strconv.Itoa(t.UserID))
	if t.Superuser {
		b.WriteString(" · *admin*")
	}
	return b.String()
}

func lastLogin(t approval.Target) string {
	if t.LastLogin == nil {
		return "never"
	}
	return slackDate(*t.LastLogin)
}

// joinDetail joins the parts of an audit detail that are not empty.
func joinDetail(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " · " + b
}
