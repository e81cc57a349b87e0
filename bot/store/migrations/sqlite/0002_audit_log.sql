-- The hash-chained audit log (docs/audit.md). Entries are only ever inserted; audit_head is the
-- one row every append locks and moves, so sequence numbers have no gaps and no duplicates.
-- seq is the rowid (INTEGER PRIMARY KEY) and always given explicitly.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
-- Appends never let at go backwards, so a time range is a seq range: export finds its two ends
-- through this index, then streams the seq range off the primary key.
CREATE INDEX audit_log_at ON audit_log (at, seq);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at   BIGINT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- When some replica last claimed the right to post a checkpoint of the head to Slack.
CREATE TABLE audit_checkpoint (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    claimed_at BIGINT NOT NULL
);
INSERT INTO audit_checkpoint (id, claimed_at) VALUES (1, 0);

-- The chain entry an outbox message announces, so the audit-channel message can cite it.
ALTER TABLE outbox ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN audit_hash TEXT NOT NULL DEFAULT '';
