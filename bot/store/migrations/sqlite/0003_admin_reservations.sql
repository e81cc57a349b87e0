-- Admins an execution is about to deactivate. A reservation counts while its request is
-- executing, so two executions (on any replicas) cannot each deactivate one of the last two
-- person admins: the last-admin check and the reservation happen under one lock.
CREATE TABLE admin_reservations (
    request_id       TEXT NOT NULL,
    metabase_user_id BIGINT NOT NULL,
    PRIMARY KEY (request_id, metabase_user_id)
);
