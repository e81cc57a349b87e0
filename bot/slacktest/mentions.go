package slacktest

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

// mentionRe finds Slack's mention syntax (https://api.slack.com/reference/surfaces/formatting#mentioning-users
// and #mentioning-groups): <@U…>, <!subteam^S…> and the special <!channel>, <!here>, <!everyone>, each
// with an optional |label.
var mentionRe = regexp.MustCompile(`<(@[UW][A-Z0-9]+|!subteam\^S[A-Z0-9]+|!channel|!here|!everyone)(\|[^>]*)?>`)

// bareRe finds a typed @channel, @here or @everyone, which a mrkdwn text object that is not
// verbatim may turn into a live mention ("certain mentions will be automatically parsed",
// https://api.slack.com/reference/block-kit/composition-objects#text).
var bareRe = regexp.MustCompile(`(^|[^&\w])@(channel|here|everyone)\b`)

// notifiedLocked is who a new channel message notifies: everyone mentioned in its text, or in the
// text or fields of a section block. Mentions elsewhere in blocks (context, header, buttons) are
// not counted: Slack shows them but the fake does not rely on them notifying anyone, so the bot
// must put a mention it needs heard where it is sure to be. A group mention notifies the group's
// members, a special one the channel's members; the author is never notified.
func (s *Server) notifiedLocked(ch *channel, text string, blocks json.RawMessage) []string {
	texts := []string{text}
	var arr []map[string]any
	if len(blocks) > 0 && json.Unmarshal(blocks, &arr) == nil {
		for _, b := range arr {
			if b["type"] != "section" {
				continue
			}
			objs := []any{b["text"]}
			fields, _ := b["fields"].([]any)
			for _, o := range append(objs, fields...) {
				t, ok := o.(map[string]any)
				if !ok || t["type"] != "mrkdwn" {
					continue
				}
				str, _ := t["text"].(string)
				if t["verbatim"] != true {
					// The fake reads the doc strictly: auto-parsing may make a bare ping live.
					str = bareRe.ReplaceAllString(str, "$1<!$2>")
				}
				texts = append(texts, str)
			}
		}
	}
	seen := map[string]bool{}
	for _, t := range texts {
		for _, m := range mentionRe.FindAllStringSubmatch(t, -1) {
			target := m[1]
			switch {
			case strings.HasPrefix(target, "@"):
				seen[target[1:]] = true
			case strings.HasPrefix(target, "!subteam^"):
				for _, u := range s.groups[strings.TrimPrefix(target, "!subteam^")] {
					seen[u] = true
				}
			default:
				for u := range ch.members {
					seen[u] = true
				}
			}
		}
	}
	delete(seen, s.opts.BotUserID)
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}
