package bot

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Limits on what a command may carry. They keep cards within Slack's limits and stop a pasted
// novel from reaching Metabase or the database.
const (
	// maxCommandLen bounds the whole text after the slash command. It is measured on the text
	// as Slack sends it, where each email arrives as <mailto:a@b.c|a@b.c>, more than twice its
	// length: the bound leaves room for maxTargets such emails and a full reason, so the number of
	// targets, not their escaping, is what limits a request.
	maxCommandLen = 12000
	// maxReasonLen bounds the reason; it is shown on the card and in every audit message.
	maxReasonLen = 500
	// maxTargets bounds the targets of one typed command (the inactive report may build larger
	// requests through its button).
	maxTargets = 100
	// maxUserID is the largest id accepted: Metabase ids are positive 32-bit integers.
	maxUserID = 1<<31 - 1
)

// Verb is the first word of a command.
type Verb string

// The verbs of the command grammar.
const (
	VerbDisable  Verb = "disable"
	VerbEnable   Verb = "enable"
	VerbStatus   Verb = "status"
	VerbInactive Verb = "inactive"
	VerbHistory  Verb = "history"
	VerbHelp     Verb = "help"
	// VerbLeavers is `leavers` (leavers.go).
	VerbLeavers Verb = "leavers"
	// VerbPending lists what waits for the caller: their desk (home.go).
	VerbPending Verb = "pending"
)

// Command is a parsed command line.
type Command struct {
	Verb    Verb
	Targets []access.TargetRef
	// Until is the raw return date of `disable … until DATE`; see access.ParseReturnDate.
	Until  string
	Reason string
	// Days is the threshold of `inactive [DAYS]`.
	Days int
	// Successor and Archive are the hand-over of `disable … handover <user> [archive]`
	// (handover.go).
	Successor *access.TargetRef
	Archive   bool
	// Instance limits a disable or enable to one Metabase instance (`--instance NAME`, placed
	// before the reason); every target then carries it.
	Instance string
	// Now is `disable now`: a responder's break-glass disable (breakglass.go).
	Now bool
	// RevokeKeys is `disable … revoke-keys`: also delete the API keys the card shows, and
	// Unshare `disable … unshare`: also remove the public links it shows (revoke_options.go).
	RevokeKeys bool
	Unshare    bool
}

// action is the core's action for a disable or enable command.
func (c Command) action() approval.Action {
	if c.Verb == VerbEnable {
		return approval.Enable
	}
	return approval.Disable
}

// errUsage marks a command that does not parse; the reply shows the usage text.
var errUsage = errors.New("usage")

// usageError is a parse failure with a message for the requester.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Is(target error) bool {
	return target == errUsage
}

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

var (
	slackUserRe = regexp.MustCompile(`^<@([UW][A-Z0-9]{1,20})(\|[^>]*)?>$`)
	mailtoRe    = regexp.MustCompile(`^<mailto:([^|>]+)(\|[^>]*)?>$`)
	emailRe     = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

// ParseCommand parses the text after the slash command as Slack sends it with should_escape: a
// literal &, < and > arrive as &amp;, &lt; and &gt;, and mentions, channels, emails and links as
// <…> entities (docs/slack.md#web-api-calls). Targets are read from the entities; everything else,
// the reason included, comes back as the person typed it, unescaped, so that it is escaped exactly
// once when shown. It is pure: no lookups, no clock. A command that does not parse returns an error
// whose message says what is wrong.
func ParseCommand(text string) (Command, error) {
	if len(text) > maxCommandLen {
		return Command{}, usagef("That command is %d characters long; the limit is %d.", len(text), maxCommandLen)
	}
	if !utf8.ValidString(text) {
		return Command{}, usagef("That command is not valid text.")
	}
	words := tokenize(text)
	if len(words) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	verb := Verb(strings.ToLower(plainWord(words[0])))
	rest := words[1:]
	switch verb {
	case VerbHelp:
		return Command{Verb: VerbHelp}, nil
	case VerbInactive:
		cmd := Command{Verb: VerbInactive, Days: 90}
		switch len(rest) {
		case 0:
		case 1:
			d, err := strconv.Atoi(rest[0])
			if err != nil || d < 1 || d > 3650 {
				return Command{}, usagef("`inactive` takes a number of days from 1 to 3650, not %s.", quoteWord(plainWord(rest[0]), 40))
			}
			cmd.Days = d
		default:
			return Command{}, usagef("`inactive` takes at most one argument: a number of days.")
		}
		return cmd, nil
	case VerbStatus, VerbHistory:
		if len(rest) != 1 {
			return Command{}, usagef("`%s` takes exactly one user: an email, a Metabase id or a Slack mention.", verb)
		}
		t, err := parseTarget(rest[0])
		if err != nil {
			return Command{}, err
		}
		return Command{Verb: verb, Targets: []access.TargetRef{t}}, nil
	case VerbDisable, VerbEnable:
		return parseChange(verb, rest)
	case VerbLeavers:
		if len(rest) > 0 {
			return Command{}, usagef("`leavers` takes no arguments.")
		}
		return Command{Verb: VerbLeavers}, nil
	case VerbPending:
		if len(rest) > 0 {
			return Command{}, usagef("`pending` takes no arguments.")
		}
		return Command{Verb: VerbPending}, nil
	case VerbOrphans:
		if len(rest) > 0 {
			return Command{}, usagef("`orphans` takes no arguments.")
		}
		return Command{Verb: VerbOrphans}, nil
	}
	return Command{}, usagef("I don't know the command %s.", quoteWord(plainWord(words[0]), 40))
}

// parseChange parses `disable <target>... [until DATE] <reason…>` and `enable <target>... <reason…>`.
// Targets come first; the first word that is not a target starts the reason (or `until`).
func parseChange(verb Verb, words []string) (Command, error) {
	cmd := Command{Verb: verb}
	if len(words) == 0 {
		return cmd, nil // no arguments: the caller opens the request form
	}
	now, words, err := parseNow(verb, words)
	if err != nil {
		return Command{}, err
	}
	cmd.Now = now
	i := 0
	seen := map[string]bool{}
	for ; i < len(words); i++ {
		if !looksLikeTarget(words[i]) {
			break
		}
		t, err := parseTarget(words[i])
		if err != nil {
			return Command{}, err
		}
		key := t.Key()
		if seen[key] {
			continue
		}
		seen[key] = true
		cmd.Targets = append(cmd.Targets, t)
	}
	if len(cmd.Targets) == 0 {
		return Command{}, usagef("%s is not a user. Name users by email, Metabase id or Slack mention.", quoteWord(plainWord(words[0]), 80))
	}
	if w, ok := ambiguousNumber(words[:i]); ok {
		// `disable jane@example.com 3 months sabbatical` must not also target user 3.
		return Command{}, usagef("%s after a user could be a Metabase id or the start of the reason. Name users by email, mention or id, then the reason; a reason may not start with a number.", quoteWord(w, 40))
	}
	if len(cmd.Targets) > maxTargets {
		return Command{}, usagef("That names %d users; one command can name at most %d.", len(cmd.Targets), maxTargets)
	}
	if i < len(words) && strings.EqualFold(words[i], "until") {
		if verb != VerbDisable {
			return Command{}, usagef("`until` only goes with `disable`.")
		}
		if i+1 >= len(words) {
			return Command{}, usagef("`until` needs a date: YYYY-MM-DD or an RFC 3339 time.")
		}
		cmd.Until = plainWord(words[i+1])
		i += 2
	}
	if err := checkNow(cmd, words, i); err != nil {
		return Command{}, err
	}
	i, err = parseInstanceOption(&cmd, words, i)
	if err != nil {
		return Command{}, err
	}
	if i, err = parseHandover(&cmd, words, i); err != nil {
		return Command{}, err
	}
	if i, err = parseInstanceOption(&cmd, words, i); err != nil {
		return Command{}, err
	}
	if i, err = parseRevokeOptions(&cmd, words, i); err != nil {
		return Command{}, err
	}
	if cmd.Instance != "" {
		for j := range cmd.Targets {
			switch t := &cmd.Targets[j]; {
			case t.Instance == "":
				t.Instance = cmd.Instance
			case t.Instance != cmd.Instance:
				return Command{}, usagef("%s names instance %s, but `--instance %s` limits the command to %s.", quoteWord(t.Raw, 40), t.Instance, cmd.Instance, cmd.Instance)
			}
		}
	}
	reason := make([]string, len(words)-i)
	for j, w := range words[i:] {
		reason[j] = plainWord(w)
	}
	cmd.Reason = strings.TrimSpace(strings.Join(reason, " "))
	if n := utf8.RuneCountInString(cmd.Reason); n > maxReasonLen {
		return Command{}, usagef("The reason is %d characters long; the limit is %d.", n, maxReasonLen)
	}
	return cmd, nil
}

// instanceNameRe is an instance name as METABASE_INSTANCES allows it.
var instanceNameRe = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// qualifiedIDRe is a Metabase id that names its instance: eu:42.
var qualifiedIDRe = regexp.MustCompile(`^([a-z][a-z0-9]{0,15}):([0-9]+)$`)

// parseInstanceOption reads `--instance NAME` at words[i], if there. Clients may turn the two
// hyphens into a dash as people type, so an em or en dash is read the same.
func parseInstanceOption(cmd *Command, words []string, i int) (int, error) {
	if i >= len(words) {
		return i, nil
	}
	w := strings.ToLower(plainWord(words[i]))
	if w != "--instance" && w != "—instance" && w != "–instance" {
		return i, nil
	}
	if cmd.Instance != "" {
		return 0, usagef("`--instance` may be given once.")
	}
	if i+1 >= len(words) || !instanceNameRe.MatchString(plainWord(words[i+1])) {
		return 0, usagef("`--instance` needs the name of a Metabase instance, e.g. `--instance eu`, before the reason.")
	}
	cmd.Instance = plainWord(words[i+1])
	return i + 2, nil
}

// ambiguousNumber finds a bare number that ends the target list after an email or a mention: it
// may be an id or the first word of the reason, and guessing either way is wrong. Numbers followed
// by another email or mention, or a list of ids only, are unambiguous.
func ambiguousNumber(targets []string) (string, bool) {
	end := len(targets)
	for end > 0 && isNumber(targets[end-1]) {
		end--
	}
	if end == 0 || end == len(targets) {
		return "", false
	}
	return targets[end], true
}

func isNumber(w string) bool {
	_, err := strconv.Atoi(w)
	return err == nil
}

// looksLikeTarget decides where the target list ends: a word that is not shaped like a target
// starts the reason. A malformed target-shaped word (say -5 or <@bad>) still counts, so it is
// reported instead of silently becoming part of the reason. w is in Slack's wire form.
func looksLikeTarget(w string) bool {
	if strings.HasPrefix(w, "<@") || strings.HasPrefix(w, "<mailto:") || strings.Contains(plainWord(w), "@") {
		return true
	}
	if qualifiedIDRe.MatchString(w) {
		return true
	}
	w = strings.TrimPrefix(w, "-")
	w = strings.TrimPrefix(w, "+")
	if w == "" {
		return false
	}
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// parseTarget parses one target word in Slack's wire form. The target's Raw is the word as the
// person typed it.
func parseTarget(w string) (access.TargetRef, error) {
	plainW := plainWord(w)
	if m := slackUserRe.FindStringSubmatch(w); m != nil {
		return access.TargetRef{Kind: access.ByChatUser, ChatUser: m[1], Raw: plainW}, nil
	}
	if strings.HasPrefix(w, "<@") || strings.HasPrefix(w, "<!") {
		return access.TargetRef{}, usagef("%s is not a Slack user mention I can use.", quoteWord(plainW, 80))
	}
	email := plainW
	if m := mailtoRe.FindStringSubmatch(w); m != nil {
		email = unescapeSlack(m[1])
	}
	if strings.Contains(email, "@") {
		if len(email) > 254 || !emailRe.MatchString(email) {
			return access.TargetRef{}, usagef("%s is not a valid email address.", quoteWord(plainW, 80))
		}
		return access.TargetRef{Kind: access.ByEmail, Email: strings.ToLower(email), Raw: plainW}, nil
	}
	if m := qualifiedIDRe.FindStringSubmatch(plainW); m != nil {
		id, err := strconv.Atoi(m[2])
		if err != nil || id < 1 || id > maxUserID {
			return access.TargetRef{}, usagef("%s is not a valid Metabase user id (a positive whole number).", quoteWord(plainW, 80))
		}
		return access.TargetRef{Kind: access.ByID, ID: id, Instance: m[1], Raw: plainW}, nil
	}
	id, err := strconv.Atoi(plainW)
	if err != nil || id < 1 || id > maxUserID || strings.HasPrefix(plainW, "+") {
		return access.TargetRef{}, usagef("%s is not a valid Metabase user id (a positive whole number).", quoteWord(plainW, 80))
	}
	return access.TargetRef{Kind: access.ByID, ID: id, Raw: plainW}, nil
}

// entityRe finds Slack's entities, <target> or <target|label>, in wire text
// (docs/slack.md#web-api-calls): there a literal < or > is always escaped.
var entityRe = regexp.MustCompile(`<([^<>|]*)(?:\|([^<>]*))?>`)

// plainWord turns text of a command, in Slack's wire form, back into what the person typed: an
// email link becomes the address, a channel #name, a mention with a label @name, a link its address
// (never its label, which need not match it), and &amp;, &lt;, &gt; their characters. A special
// mention (<!channel>, <!subteam^…>) or a mention without a label keeps its markup: shown escaped,
// it reads as typed and can never notify anyone.
func plainWord(w string) string {
	if !strings.ContainsAny(w, "<&") {
		return w
	}
	var b strings.Builder
	last := 0
	for _, loc := range entityRe.FindAllStringSubmatchIndex(w, -1) {
		b.WriteString(unescapeSlack(w[last:loc[0]]))
		b.WriteString(plainEntity(w[loc[0]:loc[1]], w[loc[2]:loc[3]], submatch(w, loc, 2)))
		last = loc[1]
	}
	b.WriteString(unescapeSlack(w[last:]))
	return b.String()
}

func submatch(s string, loc []int, i int) string {
	if loc[2*i] < 0 {
		return ""
	}
	return s[loc[2*i]:loc[2*i+1]]
}

// plainEntity is what the person typed for one entity.
func plainEntity(whole, target, label string) string {
	switch {
	case strings.HasPrefix(target, "mailto:"):
		return unescapeSlack(strings.TrimPrefix(target, "mailto:"))
	case strings.HasPrefix(target, "#C"), strings.HasPrefix(target, "#G"):
		if label != "" {
			return "#" + unescapeSlack(label)
		}
	case strings.HasPrefix(target, "@"):
		if label != "" {
			return "@" + unescapeSlack(label)
		}
	case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"):
		return unescapeSlack(target)
	}
	return whole
}

// unescapeSlack reverses the escaping Slack applies to the text it sends
// (https://api.slack.com/reference/surfaces/formatting#escaping), in one pass, so that a typed
// "&lt;" (sent as &amp;lt;) stays "&lt;".
func unescapeSlack(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// tokenize splits on white space, keeping Slack's <…> escapes whole even when the label after
// the | holds spaces (<@U1|Jane Doe>).
func tokenize(s string) []string {
	var words []string
	var b strings.Builder
	depth := false
	flush := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r == '<' && b.Len() == 0:
			depth = true
			b.WriteRune(r)
		case r == '>' && depth:
			depth = false
			b.WriteRune(r)
		case unicode.IsSpace(r) && !depth:
			flush()
		default:
			b.WriteRune(r)
		}
	}
	flush()
	return words
}

// quoteWord quotes a word the requester typed for a message, bounded to n runes once quoted:
// quoting turns each control character into a \u escape, so bounding before quoting is not
// enough to keep a message short.
func quoteWord(w string, n int) string {
	q := strconv.Quote(w)
	if utf8.RuneCountInString(q) <= n {
		return q
	}
	return truncateRunes(q, n-1) + `"`
}

// truncateRunes cuts s to n runes, marking the cut, so echoing user text never breaks a limit.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}
