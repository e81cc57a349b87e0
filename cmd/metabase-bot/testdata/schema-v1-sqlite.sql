-- The SQLite schema as the first release of metabase-bot created it (its migration 0001), kept
-- here so the upgrade test builds a database exactly as that release left it.
-- Requests, their target index and the Slack outbox. Times are unix milliseconds (UTC) so SQLite
-- and PostgreSQL compare them identically. data (JSON of approval.Request) is the source of
-- truth; every other requests column is derived from it at each write.
CREATE TABLE requests (
    id          TEXT PRIMARY KEY,
    source_key  TEXT UNIQUE,
    state       TEXT NOT NULL,
    action      TEXT NOT NULL,
    requester   TEXT NOT NULL,
    data        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    next_due_at BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX requests_next_due_at ON requests (next_due_at);
CREATE INDEX requests_state ON requests (state, created_at);

CREATE TABLE request_targets (
    request_id       TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    metabase_user_id BIGINT NOT NULL,
    PRIMARY KEY (request_id, metabase_user_id)
);
CREATE INDEX request_targets_metabase_user_id ON request_targets (metabase_user_id);

-- AUTOINCREMENT: ids are never reused, so id order is creation order for the life of the file.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    claimed_by    TEXT NOT NULL DEFAULT '',
    claimed_until BIGINT NOT NULL DEFAULT 0,
    delivered_at  BIGINT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_undelivered ON outbox (delivered_at, request_id, id);
