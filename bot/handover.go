package bot

import (
	"errors"
	"strings"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// A hand-over names who takes over what the disabled users leave running in Metabase:
//
//	disable <user>... [until DATE] [handover <user> [archive]] <reason>
//
// Alerts move to that user where Metabase allows it; what cannot move (subscriptions, and alerts
// on versions that cannot move them) is left in place and listed, or archived with `archive`.

// Form blocks and actions of the hand-over fields.
const (
	blockFormSuccessor  = "mb_form_successor"
	blockFormArchive    = "mb_form_archive"
	actionFormSuccessor = "successor"
	actionFormArchive   = "archive"
	// The archive choice's option values.
	archiveOptionList    = "list"
	archiveOptionArchive = "archive"
)

// VerbOrphans is `orphans`: the report of what deactivated users left running.
const VerbOrphans Verb = "orphans"

// handover is the core's hand-over request for a parsed command, nil when it names none.
func (c Command) handover() *access.HandoverRequest {
	if c.Successor == nil {
		return nil
	}
	return &access.HandoverRequest{Successor: c.Successor, Archive: c.Archive, Instance: c.Instance}
}

// parseHandover reads `handover <user> [archive]` at words[i], if it is there, into cmd and
// returns where the reason starts. `archive` right after the successor is always the option, and
// an `until` after the hand-over is refused rather than taken as the reason, since taking it as
// the reason would silently drop the return date.
func parseHandover(cmd *Command, words []string, i int) (int, error) {
	if cmd.Verb != VerbDisable || i >= len(words) || !strings.EqualFold(words[i], "handover") {
		return i, nil
	}
	if i+1 >= len(words) || !looksLikeTarget(words[i+1]) {
		return 0, usagef("`handover` needs the user who takes over: an email, a Metabase id or a Slack mention, e.g. `disable jane@example.com handover bob@example.com Left the company`.")
	}
	t, err := parseTarget(words[i+1])
	if err != nil {
		return 0, err
	}
	cmd.Successor = &t
	i += 2
	if i < len(words) && strings.EqualFold(words[i], "archive") {
		cmd.Archive = true
		i++
	}
	if i < len(words) && strings.EqualFold(words[i], "until") {
		return 0, usagef("Put `until DATE` before `handover`: `disable <user> until DATE handover <user> <reason>`.")
	}
	return i, nil
}

// handoverInputs are the request form's hand-over fields: who takes over, and what to do with
// what cannot move.
func handoverInputs() []slack.Block {
	successor := textInput(blockFormSuccessor, actionFormSuccessor, "Hand their alerts over to (optional)",
		"bob@example.com or a Metabase id", false, true)
	successor.Element.(*slack.PlainTextInputBlockElement).MaxLength = 254
	successor.Hint = plain("An active Metabase user. Moved alerts run with their permissions.")
	return []slack.Block{successor, archiveInput("With a hand-over, what cannot be moved")}
}

// archiveInput is the choice between listing and archiving what cannot move.
func archiveInput(label string) *slack.InputBlock {
	list := slack.NewOptionBlockObject(archiveOptionList, plain("Leave it in place and list it"), nil)
	archive := slack.NewOptionBlockObject(archiveOptionArchive, plain("Archive it"), nil)
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Leave it and list it"), actionFormArchive, list, archive)
	in := slack.NewInputBlock(blockFormArchive, plain(label), nil, sel)
	in.Optional = true
	return in
}

// formHandover reads the hand-over fields of a submitted form. It returns the block a problem
// belongs to and what to say; requireSuccessor refuses archiving without a successor, as the
// command's grammar does.
func formHandover(values map[string]map[string]slack.BlockAction, requireSuccessor bool) (*access.HandoverRequest, string, string) {
	archive := false
	if opt := values[blockFormArchive][actionFormArchive].SelectedOption; opt.Value == archiveOptionArchive {
		archive = true
	}
	words := tokenize(values[blockFormSuccessor][actionFormSuccessor].Value)
	switch {
	case len(words) > 1:
		return nil, blockFormSuccessor, "Name one user: an email or a Metabase id."
	case len(words) == 0 && archive && requireSuccessor:
		return nil, blockFormSuccessor, "Archiving goes with a hand-over: name who takes over their alerts."
	case len(words) == 0 && !archive:
		return nil, "", ""
	case len(words) == 0:
		return &access.HandoverRequest{Archive: true}, "", ""
	}
	if !looksLikeTarget(words[0]) {
		return nil, blockFormSuccessor, "Name the user by email or Metabase id, not " + quoteWord(words[0], 40) + "."
	}
	t, err := parseTarget(words[0])
	if err != nil {
		return nil, blockFormSuccessor, err.Error()
	}
	return &access.HandoverRequest{Successor: &t, Archive: archive}, "", ""
}

// problemBlock is the form block a refusal belongs to: the successor's field for the hand-over's
// problems, else the targets'.
func problemBlock(err error, targetsBlock string) string {
	if errors.Is(err, access.ErrSuccessor) {
		return blockFormSuccessor
	}
	return targetsBlock
}
