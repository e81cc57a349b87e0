-- Several Metabase instances: a target is (instance, user id), since the same id in two instances
-- is two people. Rows written before name no instance; they were all the one Metabase configured
-- then, stored as 'default' (approval.DefaultInstance), which cmd/metabase-bot binds to the single
-- configured instance.
ALTER TABLE request_targets ADD COLUMN instance TEXT NOT NULL DEFAULT 'default';
ALTER TABLE request_targets ALTER COLUMN instance DROP DEFAULT;
ALTER TABLE request_targets DROP CONSTRAINT request_targets_pkey;
ALTER TABLE request_targets ADD PRIMARY KEY (request_id, instance, metabase_user_id);
DROP INDEX request_targets_metabase_user_id;
CREATE INDEX request_targets_user ON request_targets (instance, metabase_user_id);

ALTER TABLE admin_reservations ADD COLUMN instance TEXT NOT NULL DEFAULT 'default';
ALTER TABLE admin_reservations ALTER COLUMN instance DROP DEFAULT;
ALTER TABLE admin_reservations DROP CONSTRAINT admin_reservations_pkey;
ALTER TABLE admin_reservations ADD PRIMARY KEY (request_id, instance, metabase_user_id);
