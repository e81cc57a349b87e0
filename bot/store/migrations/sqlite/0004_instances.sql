-- Several Metabase instances: a target is (instance, user id), since the same id in two instances
-- is two people. Rows written before name no instance; they were all the one Metabase configured
-- then, stored as 'default' (approval.DefaultInstance), which cmd/metabase-bot binds to the single
-- configured instance. SQLite cannot change a primary key in place, so the index is rebuilt.
CREATE TABLE request_targets_v4 (
    request_id       TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    instance         TEXT NOT NULL,
    metabase_user_id BIGINT NOT NULL,
    PRIMARY KEY (request_id, instance, metabase_user_id)
);
INSERT INTO request_targets_v4 (request_id, instance, metabase_user_id)
SELECT request_id, 'default', metabase_user_id FROM request_targets;
DROP TABLE request_targets;
ALTER TABLE request_targets_v4 RENAME TO request_targets;
CREATE INDEX request_targets_user ON request_targets (instance, metabase_user_id);

CREATE TABLE admin_reservations_v4 (
    request_id       TEXT NOT NULL,
    instance         TEXT NOT NULL,
    metabase_user_id BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (request_id, instance, metabase_user_id)
);
INSERT INTO admin_reservations_v4 (request_id, instance, metabase_user_id, created_at)
SELECT request_id, 'default', metabase_user_id, created_at FROM admin_reservations;
DROP TABLE admin_reservations;
ALTER TABLE admin_reservations_v4 RENAME TO admin_reservations;
