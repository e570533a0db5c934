-- Idempotency keys: at most one run of an environment and task holds a key.
ALTER TABLE runs ADD COLUMN idempotency_key TEXT;
ALTER TABLE runs ADD COLUMN idempotency_key_expires_at BIGINT;
CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (env_id, task_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
