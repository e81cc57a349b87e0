package slacktest

import (
	"regexp"
	"strings"
)

// typedRe finds what Slack's composer turns into entities in a slash command with should_escape:
// links, email addresses, @mentions and #channels.
var typedRe = regexp.MustCompile(`https?://[^\s<>]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|@[A-Za-z0-9._-]+|#[A-Za-z0-9._-]+`)

// escapeText escapes &, < and > as Slack does in text it sends
// (https://api.slack.com/reference/surfaces/formatting#escaping).
func escapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// wireTextLocked turns what a person typed after a slash command into the text Slack sends for a
// command with should_escape: true (https://api.slack.com/interactivity/slash-commands, "should_escape"):
// a known @name becomes <@U…|name>, @channel / @here / @everyone become <!channel> / <!here> /
// <!everyone>, a known #channel becomes <#C…|name>, an email address <mailto:…|…>, a link <…>; every
// other &, < and > is escaped. So a person cannot type a mention: a literal <@U1> arrives as
// &lt;@U1&gt;.
func (s *Server) wireTextLocked(typed string) string {
	var b strings.Builder
	last := 0
	for _, loc := range typedRe.FindAllStringIndex(typed, -1) {
		start, end := loc[0], loc[1]
		tok := typed[start:end]
		entity := ""
		atWordStart := start == 0 || strings.ContainsRune(" \t\n(", rune(typed[start-1]))
		switch {
		case strings.HasPrefix(tok, "http"):
			entity = "<" + tok + ">"
		case strings.HasPrefix(tok, "@"):
			if atWordStart {
				entity = s.userEntityLocked(tok[1:])
			}
		case strings.HasPrefix(tok, "#"):
			if atWordStart {
				entity = s.channelEntityLocked(tok[1:])
			}
		default:
			entity = "<mailto:" + tok + "|" + tok + ">"
		}
		if entity == "" {
			continue
		}
		b.WriteString(escapeText(typed[last:start]))
		b.WriteString(entity)
		last = end
	}
	b.WriteString(escapeText(typed[last:]))
	return b.String()
}

func (s *Server) userEntityLocked(name string) string {
	switch name {
	case "channel", "here", "everyone":
		return "<!" + name + ">"
	}
	for _, u := range s.users {
		if u.Name == name && !u.Deleted {
			return "<@" + u.ID + "|" + name + ">"
		}
	}
	return ""
}

func (s *Server) channelEntityLocked(name string) string {
	for _, c := range s.channels {
		if c.name == name {
			return "<#" + c.id + "|" + name + ">"
		}
	}
	return ""
}
