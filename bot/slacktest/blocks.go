package slacktest

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Block Kit limits (Slack's Block Kit reference; python-slack-sdk block_elements.py). Slack rejects a violating
// message with invalid_blocks and a view with invalid_arguments, each with "[ERROR] … [json-pointer:…]" messages.
const (
	maxMessageBlocks   = 50
	maxModalBlocks     = 100
	maxMessageText     = 40000
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxURL             = 3000
	maxID              = 255 // action_id, block_id, callback_id
	maxActionsElements = 25
	maxContextElements = 10
	maxPlaceholder     = 150
	maxLabel           = 2000
	maxOptions         = 100
	maxOptionText      = 75
	maxOptionValue     = 150
	maxInputLength     = 3000
	maxViewTitle       = 24
	maxPrivateMetadata = 3000
)

// checkBlocks validates a blocks JSON array against slack-go's strict decoder and the Block Kit limits.
// It returns the Slack error code ("" when valid) and messages for response_metadata.
func checkBlocks(raw string, maxBlocks int, pointer string) (string, []string) {
	var arr []any
	if err := json.Unmarshal([]byte(raw), &arr); err != nil {
		return "invalid_blocks_format", []string{"[ERROR] " + err.Error()}
	}
	var decoded slack.Blocks
	if err := json.Unmarshal([]byte(raw), &decoded); err != nil {
		return "invalid_blocks", []string{fmt.Sprintf("[ERROR] %v [json-pointer:%s]", err, pointer)}
	}
	for i, b := range decoded.BlockSet {
		if _, ok := b.(*slack.UnknownBlock); ok {
			return "invalid_blocks", []string{fmt.Sprintf("[ERROR] unknown block type [json-pointer:%s/%d/type]", pointer, i)}
		}
	}
	v := &validator{}
	if len(arr) > maxBlocks {
		v.errorf(pointer, "no more than %d items allowed", maxBlocks)
	}
	blockIDs := map[string]bool{}
	for i, b := range arr {
		v.block(fmt.Sprintf("%s/%d", pointer, i), b, blockIDs)
	}
	if len(v.msgs) > 0 {
		return "invalid_blocks", v.msgs
	}
	return "", nil
}

type validator struct{ msgs []string }

func (v *validator) errorf(ptr, format string, args ...any) {
	v.msgs = append(v.msgs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), ptr))
}

func (v *validator) maxLen(ptr string, s any, max int) {
	str, ok := s.(string)
	if !ok {
		if s != nil {
			v.errorf(ptr, "must be a string")
		}
		return
	}
	if utf8.RuneCountInString(str) > max {
		v.errorf(ptr, "must be less than %d characters", max+1)
	}
}

// text checks a composition text object; plainOnly restricts it to plain_text.
func (v *validator) text(ptr string, t any, max int, plainOnly bool) {
	obj, ok := t.(map[string]any)
	if !ok {
		v.errorf(ptr, "must be an object")
		return
	}
	typ, _ := obj["type"].(string)
	switch {
	case typ == "plain_text":
	case typ == "mrkdwn" && !plainOnly:
	default:
		v.errorf(ptr+"/type", "must be a valid enum value")
	}
	s, _ := obj["text"].(string)
	if s == "" {
		v.errorf(ptr+"/text", "must be more than 0 characters")
		return
	}
	v.maxLen(ptr+"/text", s, max)
}

func (v *validator) optionalText(ptr string, obj map[string]any, key string, max int, plainOnly bool) {
	if t, ok := obj[key]; ok && t != nil {
		v.text(ptr+"/"+key, t, max, plainOnly)
	}
}

func (v *validator) block(ptr string, b any, blockIDs map[string]bool) {
	obj, ok := b.(map[string]any)
	if !ok {
		v.errorf(ptr, "must be an object")
		return
	}
	if id, ok := obj["block_id"]; ok {
		v.maxLen(ptr+"/block_id", id, maxID)
		if s, _ := id.(string); s != "" {
			if blockIDs[s] {
				v.errorf(ptr+"/block_id", "duplicate block_id %q", s)
			}
			blockIDs[s] = true
		}
	}
	actionIDs := map[string]bool{}
	switch obj["type"] {
	case "section":
		_, hasText := obj["text"]
		fields, hasFields := obj["fields"].([]any)
		if !hasText && !hasFields {
			v.errorf(ptr, "must provide text or fields")
		}
		v.optionalText(ptr, obj, "text", maxSectionText, false)
		if len(fields) > maxSectionFields {
			v.errorf(ptr+"/fields", "no more than %d items allowed", maxSectionFields)
		}
		for i, f := range fields {
			v.text(fmt.Sprintf("%s/fields/%d", ptr, i), f, maxFieldText, false)
		}
		if a, ok := obj["accessory"]; ok {
			v.element(ptr+"/accessory", a, actionIDs)
		}
	case "header":
		v.text(ptr+"/text", obj["text"], maxHeaderText, true)
	case "actions":
		els, _ := obj["elements"].([]any)
		if len(els) == 0 {
			v.errorf(ptr+"/elements", "must provide at least 1 item")
		}
		if len(els) > maxActionsElements {
			v.errorf(ptr+"/elements", "no more than %d items allowed", maxActionsElements)
		}
		for i, e := range els {
			v.element(fmt.Sprintf("%s/elements/%d", ptr, i), e, actionIDs)
		}
	case "context":
		els, _ := obj["elements"].([]any)
		if len(els) == 0 {
			v.errorf(ptr+"/elements", "must provide at least 1 item")
		}
		if len(els) > maxContextElements {
			v.errorf(ptr+"/elements", "no more than %d items allowed", maxContextElements)
		}
		for i, e := range els {
			p := fmt.Sprintf("%s/elements/%d", ptr, i)
			if m, ok := e.(map[string]any); ok && m["type"] == "image" {
				v.maxLen(p+"/image_url", m["image_url"], maxURL)
				continue
			}
			v.text(p, e, maxSectionText, false)
		}
	case "input":
		v.text(ptr+"/label", obj["label"], maxLabel, true)
		v.optionalText(ptr, obj, "hint", maxLabel, true)
		if e, ok := obj["element"]; ok {
			v.element(ptr+"/element", e, actionIDs)
		} else {
			v.errorf(ptr, "must provide element")
		}
	case "image":
		v.maxLen(ptr+"/image_url", obj["image_url"], maxURL)
		v.maxLen(ptr+"/alt_text", obj["alt_text"], maxLabel)
		v.optionalText(ptr, obj, "title", maxLabel, true)
	}
}

func (v *validator) element(ptr string, e any, actionIDs map[string]bool) {
	obj, ok := e.(map[string]any)
	if !ok {
		v.errorf(ptr, "must be an object")
		return
	}
	if id, ok := obj["action_id"]; ok {
		v.maxLen(ptr+"/action_id", id, maxID)
		if s, _ := id.(string); s != "" {
			if actionIDs[s] {
				v.errorf(ptr+"/action_id", "duplicate action_id %q", s)
			}
			actionIDs[s] = true
		}
	}
	v.optionalText(ptr, obj, "placeholder", maxPlaceholder, true)
	switch obj["type"] {
	case "button":
		v.text(ptr+"/text", obj["text"], maxButtonText, true)
		v.maxLen(ptr+"/value", obj["value"], maxButtonValue)
		v.maxLen(ptr+"/url", obj["url"], maxURL)
		if st, ok := obj["style"]; ok && st != "primary" && st != "danger" {
			v.errorf(ptr+"/style", "must be a valid enum value")
		}
	case "static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes":
		opts, _ := obj["options"].([]any)
		if _, groups := obj["option_groups"]; len(opts) == 0 && !groups {
			v.errorf(ptr+"/options", "must provide at least 1 item")
		}
		if len(opts) > maxOptions {
			v.errorf(ptr+"/options", "no more than %d items allowed", maxOptions)
		}
		for i, o := range opts {
			p := fmt.Sprintf("%s/options/%d", ptr, i)
			om, ok := o.(map[string]any)
			if !ok {
				v.errorf(p, "must be an object")
				continue
			}
			v.text(p+"/text", om["text"], maxOptionText, obj["type"] == "static_select" || obj["type"] == "multi_static_select" || obj["type"] == "overflow")
			v.maxLen(p+"/value", om["value"], maxOptionValue)
		}
	case "plain_text_input":
		v.maxLen(ptr+"/initial_value", obj["initial_value"], maxInputLength)
		for _, k := range []string{"min_length", "max_length"} {
			if n, ok := obj[k].(float64); ok && (n < 0 || n > maxInputLength) {
				v.errorf(ptr+"/"+k, "must be at most %d", maxInputLength)
			}
		}
	case "image":
		v.maxLen(ptr+"/image_url", obj["image_url"], maxURL)
		v.maxLen(ptr+"/alt_text", obj["alt_text"], maxLabel)
	}
}
