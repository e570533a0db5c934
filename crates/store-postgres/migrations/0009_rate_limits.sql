-- Rate limits on queue starts: the one the tasks declare and one set through the API.
ALTER TABLE queues
    ADD COLUMN rate_limit BIGINT,
    ADD COLUMN rate_period_ms BIGINT,
    ADD COLUMN rate_per_key BOOLEAN,
    ADD COLUMN rate_override_limit BIGINT,
    ADD COLUMN rate_override_period_ms BIGINT,
    ADD COLUMN rate_override_per_key BOOLEAN,
    ADD COLUMN rate_overridden_at BIGINT;
-- The GCRA state of each lane of a rate-limited queue: its theoretical arrival time in µs.
-- concurrency_key '' is the whole queue (a rate not per key) or its runs without a key (per key);
-- real keys are never empty. A row whose time has passed means what no row means, and is pruned.
CREATE TABLE rate_slots (
    queue_id TEXT COLLATE "C" NOT NULL,
    concurrency_key TEXT NOT NULL,
    tat_us BIGINT NOT NULL,
    PRIMARY KEY (queue_id, concurrency_key)
);
CREATE INDEX rate_slots_by_time ON rate_slots (queue_id, tat_us);
