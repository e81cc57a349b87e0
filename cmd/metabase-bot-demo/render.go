package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// builderURL is Slack's Block Kit Builder; a fragment of {"blocks":[…]} opens those blocks in it.
const builderURL = "https://app.slack.com/block-kit-builder/#"

// emoji are the shortcodes the bot writes, as the characters Slack shows for them; others stay as
// written.
var emoji = map[string]string{
	":white_check_mark:":       "✅",
	":x:":                      "❌",
	":warning:":                "⚠️",
	":no_entry:":               "⛔",
	":hourglass_flowing_sand:": "⏳",
	":hourglass:":              "⌛",
	":gear:":                   "⚙️",
	":calendar:":               "📅",
	":heavy_minus_sign:":       "➖",
	":test_tube:":              "🧪",
	":closed_lock_with_key:":   "🔐",
	":memo:":                   "📝",
}

// Slack's mrkdwn syntax (https://api.slack.com/reference/surfaces/formatting): <…> holds
// mentions, dates and links; *bold*, _italic_ and `code` mark text up.
var (
	angled = regexp.MustCompile(`<([^<>]*)>`)
	bold   = regexp.MustCompile(`\*([^*\n]+)\*`)
	italic = regexp.MustCompile(`(^|[\s(])_([^_\n]+)_($|[\s).,:;!?])`)
	code   = regexp.MustCompile("`([^`\n]+)`")
	shorts = regexp.MustCompile(`:[a-z0-9_+-]+:`)
)

// renderer turns Slack messages into terminal text. It knows the demo's people, groups and
// channels by id, so mentions read as they would in Slack.
type renderer struct {
	users    map[string]string // user id -> name
	groups   map[string]string // user group id -> handle
	channels map[string]string // channel id -> name
}

// mrkdwn renders Slack mrkdwn as plain text: mentions become @name, dates their fallback text,
// links "text (url)", and the markup characters go.
func (r renderer) mrkdwn(s string) string {
	s = angled.ReplaceAllStringFunc(s, func(m string) string { return r.angled(m[1 : len(m)-1]) })
	s = bold.ReplaceAllString(s, "$1")
	s = italic.ReplaceAllString(s, "$1$2$3")
	s = code.ReplaceAllString(s, "$1")
	s = shorts.ReplaceAllStringFunc(s, func(m string) string {
		if e, ok := emoji[m]; ok {
			return e
		}
		return m
	})
	// The bot escapes exactly these three in text people typed; unescape last, so a typed
	// "&lt;@U1&gt;" stays text and is not taken for a mention.
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// angled renders the inside of one <…> construct.
func (r renderer) angled(in string) string {
	body, label, hasLabel := strings.Cut(in, "|")
	switch {
	case strings.HasPrefix(body, "@"):
		if hasLabel {
			return "@" + label
		}
		return "@" + r.name(r.users, body[1:])
	case strings.HasPrefix(body, "#"):
		if hasLabel {
			return "#" + label
		}
		return "#" + r.name(r.channels, body[1:])
	case strings.HasPrefix(body, "!subteam^"):
		if hasLabel {
			return label
		}
		return "@" + r.name(r.groups, strings.TrimPrefix(body, "!subteam^"))
	case strings.HasPrefix(body, "!date^"):
		// <!date^unix^format|fallback>: Slack formats it in the reader's zone; the fallback is
		// what clients that cannot show, and is stable for a transcript.
		if hasLabel {
			return label
		}
		return body
	case strings.HasPrefix(body, "!"):
		return "@" + strings.TrimPrefix(body, "!")
	case hasLabel:
		return label + " (" + body + ")"
	}
	return body
}

func (r renderer) name(names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return id
}

// blocks renders a Block Kit array as lines of text, one block after another, the way a reader
// scans the message: headers and sections as text, fields in pairs, buttons as [Label].
func (r renderer) blocks(raw json.RawMessage) []string {
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return []string{"(blocks that are not a JSON array: " + err.Error() + ")"}
	}
	var lines []string
	add := func(s string) { lines = append(lines, strings.Split(s, "\n")...) }
	for _, b := range blocks {
		switch b["type"] {
		case "header":
			add(strings.ToUpper(r.text(b["text"])))
		case "section":
			t := r.text(b["text"])
			if acc := r.element(b["accessory"]); acc != "" {
				t = strings.TrimSpace(t + "  " + acc)
			}
			if t != "" {
				add(t)
			}
			for _, row := range r.fieldRows(b["fields"]) {
				add(row)
			}
		case "context":
			var parts []string
			for _, el := range list(b["elements"]) {
				if t := r.text(el); t != "" {
					parts = append(parts, t)
				}
			}
			add(strings.Join(parts, " "))
		case "actions":
			var parts []string
			for _, el := range list(b["elements"]) {
				parts = append(parts, r.element(el))
			}
			add(strings.Join(parts, " "))
		case "divider":
			add("────────")
		case "input":
			label := r.text(b["label"])
			if opt, _ := b["optional"].(bool); opt && !strings.Contains(label, "(optional)") {
				label += " (optional)"
			}
			add(label + ": " + r.element(b["element"]))
		default:
			add(fmt.Sprintf("(%v block)", b["type"]))
		}
	}
	return lines
}

// fieldRows renders a section's fields two to a line, as Slack lays them out in two columns; a
// field "*Label*\nvalue" reads "Label: value".
func (r renderer) fieldRows(v any) []string {
	var cells []string
	for _, f := range list(v) {
		t := r.text(f)
		if label, value, ok := strings.Cut(t, "\n"); ok {
			t = label + ": " + strings.ReplaceAll(value, "\n", " ")
		}
		cells = append(cells, t)
	}
	var rows []string
	for i := 0; i < len(cells); i += 2 {
		if i+1 < len(cells) {
			rows = append(rows, fmt.Sprintf("%-34s %s", cells[i], cells[i+1]))
		} else {
			rows = append(rows, cells[i])
		}
	}
	return rows
}

// element renders an interactive element: a button as [Label], anything else by its type.
func (r renderer) element(v any) string {
	el, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	switch el["type"] {
	case "button":
		return "[" + r.text(el["text"]) + "]"
	case "plain_text_input":
		return "[text: " + r.text(el["placeholder"]) + "]"
	case "image":
		return ""
	}
	if p := r.text(el["placeholder"]); p != "" {
		return fmt.Sprintf("[%v: %s]", el["type"], p)
	}
	return fmt.Sprintf("[%v]", el["type"])
}

// text renders a composition text object (plain_text or mrkdwn).
func (r renderer) text(v any) string {
	t, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	s, _ := t["text"].(string)
	if t["type"] == "mrkdwn" {
		return r.mrkdwn(s)
	}
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// blockKitBuilderLink opens blocks in Slack's Block Kit Builder, to see the real look of a card.
// The fragment is {"blocks":[…]}, percent-encoded like the "View in Block Kit Builder" links of
// Slack's Block Kit reference (https://docs.slack.dev/reference/block-kit/blocks), which leave
// ":" and "," as they are.
func blockKitBuilderLink(blocks json.RawMessage) (string, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, blocks); err != nil {
		return "", err
	}
	payload := `{"blocks":` + compact.String() + `}`
	// QueryEscape leaves only unreserved characters and writes a space as "+"; a literal "+"
	// has become "%2B", so every "+" left is a space.
	return builderURL + strings.NewReplacer("+", "%20", "%3A", ":", "%2C", ",").Replace(url.QueryEscape(payload)), nil
}
