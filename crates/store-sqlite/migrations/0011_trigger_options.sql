-- Trigger options: delay, TTL, debounce, parent runs and batches.
ALTER TABLE runs ADD COLUMN delay_until INTEGER;
ALTER TABLE runs ADD COLUMN ttl_secs INTEGER;
ALTER TABLE runs ADD COLUMN ttl_expires_at INTEGER;
ALTER TABLE runs ADD COLUMN debounce_key TEXT;
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN root_run_id TEXT;
ALTER TABLE runs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN batch_id TEXT;
ALTER TABLE runs ADD COLUMN batch_index INTEGER;

-- Delayed runs by the time they are due, for the promoter.
CREATE INDEX runs_delayed ON runs (delay_until) WHERE execution_status = 'DELAYED';
-- Runs waiting for their first attempt with a TTL, by when they expire.
CREATE INDEX runs_by_ttl ON runs (ttl_expires_at) WHERE ttl_expires_at IS NOT NULL;
-- At most one delayed run per environment, task and debounce key.
CREATE UNIQUE INDEX runs_by_debounce_key ON runs (env_id, task_id, debounce_key) WHERE debounce_key IS NOT NULL;
CREATE INDEX runs_by_parent ON runs (parent_run_id, id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_by_batch ON runs (batch_id, batch_index) WHERE batch_id IS NOT NULL;

-- Request idempotency: the run a trigger request made, by the request key the client sent, so a
-- retried request answers the first answer.
CREATE TABLE request_keys (
    env_id TEXT NOT NULL,
    request_key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    cached INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (env_id, request_key)
) WITHOUT ROWID;
CREATE INDEX request_keys_by_expiry ON request_keys (expires_at);
