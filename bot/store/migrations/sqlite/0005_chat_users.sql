-- What the bot last saw of each Slack account (user_change events), so a deactivation is told
-- apart from a later edit of the same deactivated account: Slack sends both as user_change with
-- deleted true (docs/slack.md#deactivations). deactivations counts the changes to deleted seen so
-- far; the request a deactivation opens is keyed by it, so a redelivery or a second replica opens
-- nothing new while a later deactivation (after a reactivation) opens its own. updated is Slack's
-- user.updated of the last change applied, so a late redelivery cannot undo a newer change.
CREATE TABLE chat_users (
    team          TEXT NOT NULL,
    chat_user     TEXT NOT NULL,
    deleted       INTEGER NOT NULL,
    deactivations BIGINT NOT NULL,
    updated       BIGINT NOT NULL,
    PRIMARY KEY (team, chat_user)
);
