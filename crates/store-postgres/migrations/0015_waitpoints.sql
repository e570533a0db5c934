-- Waitpoints: what runs wait for (a time, a token, a run, a batch). The idempotency key is
-- always set (random when the creator gave none) and unique in the environment.
CREATE TABLE waitpoints (
    id TEXT COLLATE "C" PRIMARY KEY,
    env_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    user_key BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key_expires_at BIGINT,
    inactive_idempotency_key TEXT,
    completed_by_run_id TEXT COLLATE "C",
    completed_by_batch_id TEXT COLLATE "C",
    completed_after BIGINT,
    completed_at BIGINT,
    output TEXT,
    output_type TEXT,
    output_is_error BOOLEAN NOT NULL DEFAULT FALSE,
    tags TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX waitpoints_by_key ON waitpoints (env_id, idempotency_key);
-- A run has one RUN waitpoint and a batch one BATCH waitpoint.
CREATE UNIQUE INDEX waitpoints_by_run ON waitpoints (completed_by_run_id) WHERE completed_by_run_id IS NOT NULL;
CREATE UNIQUE INDEX waitpoints_by_batch ON waitpoints (completed_by_batch_id) WHERE completed_by_batch_id IS NOT NULL;
-- Pending waitpoints that complete with time: DATETIME waits and MANUAL timeouts.
CREATE INDEX waitpoints_due ON waitpoints (completed_after) WHERE status = 'PENDING' AND completed_after IS NOT NULL;
-- Tokens of an environment, newest first.
CREATE INDEX waitpoints_tokens ON waitpoints (env_id, id) WHERE kind = 'MANUAL';

-- Edges: this run is blocked by this waitpoint, until the run is unblocked.
CREATE TABLE run_waitpoints (
    run_id TEXT COLLATE "C" NOT NULL,
    waitpoint_id TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, waitpoint_id)
);
CREATE INDEX run_waitpoints_by_waitpoint ON run_waitpoints (waitpoint_id, run_id);

-- A run's durable calls in call order.
CREATE TABLE run_journal (
    run_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    waitpoint_id TEXT COLLATE "C",
    output TEXT,
    child_run_id TEXT COLLATE "C",
    batch_id TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The instance's named secrets (the key that signs token callback URLs).
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A run queued to go on with a suspended attempt.
ALTER TABLE runs ADD COLUMN resuming BOOLEAN NOT NULL DEFAULT FALSE;
-- Unfinished runs of a batch, counted when one of them finishes and a run waits on the batch.
CREATE INDEX runs_unfinished_by_batch ON runs (batch_id) WHERE batch_id IS NOT NULL AND finished_at IS NULL;
