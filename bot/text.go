package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// escape makes user-typed or Metabase-provided text inert in mrkdwn: Slack parses <…> as links,
// mentions and <!channel>, and documents escaping exactly these three characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// mention renders a Slack user id as a mention: Slack shows the current name, so audit lines
// stay true when people rename themselves.
func mention(userID string) string {
	if userID == "" {
		return "someone"
	}
	if userID == access.RequesterChatDeactivation {
		return "Slack deactivation"
	}
	return "<@" + userID + ">"
}

// slackDate renders t in each reader's own time zone, with a UTC fallback for clients that
// cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func verbPast(a approval.Action) string {
	switch a {
	case approval.Enable:
		return "enabled"
	case approval.HandOver:
		return "handed over"
	}
	return "disabled"
}

// mrkdwn is a verbatim mrkdwn text: Slack then turns no bare "@channel", #name or URL into a
// link or mention, so only the <…> markup the bot writes itself is live
// (https://api.slack.com/reference/block-kit/composition-objects#text, "verbatim").
func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, clip(text, maxSectionText), false, true)
}

func plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, false, false)
}

// clip keeps text within a Slack limit counted in runes.
func clip(s string, n int) string { return truncateRunes(s, n) }

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// clipLines joins lines, dropping whole lines past the limit.
func clipLines(lines []string, n int) string {
	var b strings.Builder
	for i, l := range lines {
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(l)+40 > n {
			fmt.Fprintf(&b, "…and %d more", len(lines)-i)
			break
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(l)
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func nonEmpty(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// chunkLines splits lines into messages within the section limit, for long thread lists.
func chunkLines(lines []string, n int) []string {
	var out []string
	var b strings.Builder
	for _, l := range lines {
		l = clip(l, n)
		if b.Len() > 0 && utf8.RuneCountInString(b.String())+utf8.RuneCountInString(l)+1 > n {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(l)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// waitWords says a short wait in whole seconds: "1 second", "3 seconds".
func waitWords(d time.Duration) string {
	return plural(int(max(d.Round(time.Second), time.Second)/time.Second), "second", "seconds")
}
