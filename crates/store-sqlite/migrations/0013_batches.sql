-- Batches: runs triggered together, made with a count of items and sealed once every item has
-- arrived. A create with an idempotency key the environment has given a batch answers that batch.
CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    run_count INTEGER NOT NULL,
    items_received INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sealed_at INTEGER
);
CREATE UNIQUE INDEX batches_by_idempotency_key ON batches (env_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A batch's items are deduplicated by index: no two runs hold one place in one batch, so a
-- re-sent stream of items makes no second run.
DROP INDEX runs_by_batch;
CREATE UNIQUE INDEX runs_by_batch ON runs (batch_id, batch_index) WHERE batch_id IS NOT NULL;

-- Items answered by an existing run (their idempotency key matched one), which belongs to
-- another batch or to none.
CREATE TABLE batch_items (
    batch_id TEXT NOT NULL,
    batch_index INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (batch_id, batch_index)
) WITHOUT ROWID;
