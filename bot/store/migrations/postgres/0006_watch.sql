-- The reactivation watch (docs/metabase.md#reactivation-watch). watch_claim is, per Metabase
-- instance, when some replica last claimed the right to check it: one replica checks per period,
-- and a period whose claimer died is claimed again as soon as it has passed. checked_at is when
-- the last check completed, for /metabase status.
CREATE TABLE watch_claim (
    instance   TEXT PRIMARY KEY,
    claimed_at BIGINT NOT NULL,
    claimed_by TEXT NOT NULL,
    checked_at BIGINT NOT NULL DEFAULT 0
);
-- What the watch found about one user the bot disabled: basis names the disable it is about
-- (a later disable starts afresh), state what happened since (reported, accepted, disabled
-- again, could not disable again). data is JSON the core owns; version is its compare-and-set
-- counter, so a finding is recorded (and reported) once however many replicas find it.
CREATE TABLE watch_users (
    instance         TEXT NOT NULL,
    metabase_user_id BIGINT NOT NULL,
    basis            TEXT NOT NULL,
    state            TEXT NOT NULL,
    data             TEXT NOT NULL,
    version          BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (instance, metabase_user_id)
);
