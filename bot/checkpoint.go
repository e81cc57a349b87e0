package bot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

// checkpoint posts the audit log's head to the audit channel. Without an audit channel there is
// nowhere outside the database to anchor the chain, so nothing is posted.
func (n *Notifier) checkpoint(ctx context.Context, c *access.Checkpoint) error {
	if n.v.cfg.AuditChannel == "" || c == nil || c.Seq == 0 {
		return nil
	}
	if _, _, err := n.post(ctx, n.v.cfg.AuditChannel, slack.MsgOptionText(checkpointText(*c), false)); err != nil {
		return n.failed("chat.postMessage", err)
	}
	return nil
}

// checkpointText words a checkpoint: the head as SEQ:HASH, inside the command that checks a
// database against it, so an auditor copies one line. It names no audit event, so it cannot be
// mistaken for one.
func checkpointText(c access.Checkpoint) string {
	when := "periodic"
	if c.Shutdown {
		when = "bot stopping"
	}
	return fmt.Sprintf(":lock: *audit checkpoint* (%s) · chain head #%d as of %s · check the database against it: `metabase-bot audit verify --checkpoint %d:%s`",
		when, c.Seq, slackDate(c.At), c.Seq, c.Hash)
}
