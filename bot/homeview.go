package bot

import (
	"fmt"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Block and action ids of the desk. A Home view is one surface: every block_id in it must be
// unique (https://api.slack.com/reference/block-kit/blocks, block_id), so each request's buttons
// carry a block id of their own; the action ids are the card's, so a click is handled as one on
// the card.
const (
	blockHomePrefix = "mb_home_"
	// maxHomeBlocks is a Home tab view's limit (https://api.slack.com/reference/surfaces/views,
	// "blocks": max 100); a reply in a channel has maxBlocks.
	maxHomeBlocks = 100
)

// links resolves the card of a request to a link a reader can open, or "" when there is none.
type links func(r approval.Request) string

// deskBlocks draws a desk. withButtons draws the decision buttons (the Home tab; a reply to
// `pending` is an ephemeral, where clicks are refused, so it carries links only). limit is the
// surface's block limit.
func (v *view) deskBlocks(d access.Desk, link links, withButtons bool, limit int) []slack.Block {
	var blocks []slack.Block
	// The last block is kept for "N more not shown".
	room := limit - 1
	hidden := 0
	add := func(bs ...slack.Block) bool {
		if len(blocks)+len(bs) > room {
			hidden++
			return false
		}
		blocks = append(blocks, bs...)
		return true
	}
	section := func(title string, items []access.DeskItem, empty string) {
		if empty == "" && len(items) == 0 {
			return
		}
		if !add(slack.NewHeaderBlock(plain(title))) {
			hidden += len(items) - 1 // add counted the header as one
			return
		}
		if len(items) == 0 {
			add(slack.NewContextBlock("", mrkdwn(empty)))
			return
		}
		for _, it := range items {
			bs := []slack.Block{slack.NewSectionBlock(mrkdwn(v.deskLine(it.Request, link)), nil, nil)}
			if withButtons {
				if b := v.deskButtons(it); b != nil {
					bs = append(bs, b)
				}
			}
			add(bs...)
		}
	}
	if d.Approver {
		section("Waiting for a decision", d.Waiting, "Nothing is waiting for a decision.")
		// Between the requests waiting for a decision and the failed ones: a break-glass action
		// has already disabled people, and its review is what decides whether that stands.
		section("Break-glass actions to review", d.BreakGlass, "")
		section("Failed: you can retry", d.Retryable, "")
	}
	section("Your open requests", d.Own, "You have no open requests.")
	section("Your scheduled returns", d.Returns, "")
	if hidden > 0 {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf(
			"%d more not shown here; `%s pending` lists them.", hidden, v.cfg.SlashCommand))))
	}
	return blocks
}

// deskLine is one request on a desk: what, who, where, its state and a link to its card.
func (v *view) deskLine(r approval.Request, link links) string {
	line := fmt.Sprintf("*%s* · %s %s · by %s", r.ID, r.Action, targetsSummary(r), mention(r.Requester))
	if r.ChannelID != "" {
		line += " in <#" + r.ChannelID + ">"
	}
	line += " · " + slackDate(r.CreatedAt) + "\n" + stateWords(r) + v.dryRunTag(r)
	if r.State == approval.Pending {
		line += " · expires " + slackDate(r.ExpiresAt)
	}
	if r.Reason != "" {
		line += "\n> " + escape(clip(r.Reason, 300))
	}
	if u := link(r); u != "" {
		line += "\n<" + u + "|Open the card>"
	}
	return line
}

// deskButtons are the buttons a desk item offers the person it is drawn for, or nil. Approve
// keeps the card's confirm dialog; Deny opens the card's form.
func (v *view) deskButtons(it access.DeskItem) slack.Block {
	r := it.Request
	var els []slack.BlockElement
	if it.MayDecide {
		card := v.decisionButtons(r).(*slack.ActionBlock)
		for _, el := range card.Elements.ElementSet {
			if b, ok := el.(*slack.ButtonBlockElement); ok && b.ActionID != actionCancel {
				els = append(els, b)
			}
		}
	}
	if it.MayCancel {
		els = append(els, slack.NewButtonBlockElement(actionCancel, r.ID, plain("Cancel request")))
	}
	if it.MayRetry {
		els = append(els, slack.NewButtonBlockElement(actionRetry, r.ID, plain("Retry failed users")))
	}
	if it.MayReview {
		if b, ok := v.reviewButtons(r); ok {
			els = append(els, b.(*slack.ActionBlock).Elements.ElementSet...)
		}
	}
	if len(els) == 0 {
		return nil
	}
	return slack.NewActionBlock(blockHomePrefix+r.ID, els...)
}

// deskText is the desk as plain text, for notifications and clients without blocks.
func (v *view) deskText(d access.Desk) string {
	if d.Approver {
		return fmt.Sprintf("%d waiting for a decision, %d break-glass to review, %d you can retry, %d of your own open, %d scheduled returns",
			len(d.Waiting), len(d.BreakGlass), len(d.Retryable), len(d.Own), len(d.Returns))
	}
	return fmt.Sprintf("%d of your own open requests, %d scheduled returns", len(d.Own), len(d.Returns))
}
