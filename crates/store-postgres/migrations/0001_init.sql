-- Stint's schema on PostgreSQL: the same tables, columns and indexes as the SQLite store.
-- Timestamps are BIGINT milliseconds since the epoch; ids are TEXT; JSON values are TEXT holding
-- serde_json's encoding, exactly as the SQLite store writes them. Ids and the columns referring to
-- them compare bytewise (COLLATE "C"), as in SQLite, whatever the database's collation is: listings
-- and cursors order by id, and ids of one kind are compared only with each other.

-- Tenancy: organization -> project -> environment, and secret keys stored as SHA-256 hashes.
CREATE TABLE organizations (
    id TEXT COLLATE "C" PRIMARY KEY,
    title TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id TEXT COLLATE "C" PRIMARY KEY,
    org_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    ref TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE environments (
    id TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    org_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (id),
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, kind)
);

CREATE TABLE api_keys (
    key_hash TEXT COLLATE "C" PRIMARY KEY,
    key_prefix TEXT NOT NULL,
    env_id TEXT COLLATE "C" NOT NULL REFERENCES environments (id),
    created_at BIGINT NOT NULL
);

-- Queues and the tasks and workers that declare them.
CREATE TABLE queues (
    id TEXT COLLATE "C" PRIMARY KEY,
    env_id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    concurrency_limit BIGINT,
    running BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (env_id, name)
);

CREATE TABLE tasks (
    env_id TEXT COLLATE "C" NOT NULL,
    task_id TEXT COLLATE "C" NOT NULL,
    queue_name TEXT NOT NULL,
    retry TEXT NOT NULL,
    max_duration BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, task_id)
);

CREATE TABLE workers (
    id TEXT COLLATE "C" PRIMARY KEY,
    env_id TEXT COLLATE "C" NOT NULL,
    version TEXT NOT NULL,
    task_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Runs: the current state of each run. Every change is fenced on snapshot_id.
CREATE TABLE runs (
    id TEXT COLLATE "C" PRIMARY KEY,
    env_id TEXT COLLATE "C" NOT NULL,
    task_id TEXT COLLATE "C" NOT NULL,
    queue_id TEXT COLLATE "C" NOT NULL,
    queue_name TEXT NOT NULL,
    status TEXT NOT NULL,
    snapshot_id TEXT COLLATE "C" NOT NULL,
    execution_status TEXT NOT NULL,
    attempt_number BIGINT NOT NULL,
    max_attempts BIGINT,
    retry TEXT,
    max_duration BIGINT,
    payload TEXT NOT NULL,
    payload_type TEXT NOT NULL,
    output TEXT,
    output_type TEXT,
    error TEXT,
    tags TEXT NOT NULL,
    metadata TEXT,
    concurrency_key TEXT,
    priority_ms BIGINT NOT NULL,
    queue_score BIGINT,
    is_test BOOLEAN NOT NULL,
    machine TEXT,
    worker_id TEXT COLLATE "C",
    version TEXT,
    heartbeat_deadline BIGINT,
    attempt_started_at BIGINT,
    duration_ms BIGINT NOT NULL,
    replayed_from TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);

CREATE INDEX runs_by_env ON runs (env_id, id);
CREATE INDEX runs_by_heartbeat ON runs (heartbeat_deadline) WHERE heartbeat_deadline IS NOT NULL;

-- The queue: the runs waiting to be taken, ordered by score within their queue. A partial index,
-- so it holds only queued runs and a run leaves it by the same update that moves it on.
CREATE INDEX runs_in_queue ON runs (queue_id, queue_score) WHERE queue_score IS NOT NULL;

CREATE TABLE run_tags (
    tag TEXT NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tag, run_id)
);

-- Snapshots: each run's append-only history.
CREATE TABLE snapshots (
    run_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    run_status TEXT NOT NULL,
    attempt_number BIGINT NOT NULL,
    description TEXT NOT NULL,
    worker_id TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, id)
);
