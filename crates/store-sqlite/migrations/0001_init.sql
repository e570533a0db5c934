-- Tenancy: organization -> project -> environment, and secret keys stored as SHA-256 hashes.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    ref TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    org_id TEXT NOT NULL REFERENCES organizations (id),
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, kind)
);

CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    key_prefix TEXT NOT NULL,
    env_id TEXT NOT NULL REFERENCES environments (id),
    created_at INTEGER NOT NULL
);

-- Queues and the tasks and workers that declare them.
CREATE TABLE queues (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    name TEXT NOT NULL,
    concurrency_limit INTEGER,
    running INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (env_id, name)
);

CREATE TABLE tasks (
    env_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    retry TEXT NOT NULL,
    max_duration INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (env_id, task_id)
) WITHOUT ROWID;

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    version TEXT NOT NULL,
    task_ids TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Runs: the current state of each run. Every change is fenced on snapshot_id.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    status TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    execution_status TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    max_attempts INTEGER,
    retry TEXT,
    max_duration INTEGER,
    payload TEXT NOT NULL,
    payload_type TEXT NOT NULL,
    output TEXT,
    output_type TEXT,
    error TEXT,
    tags TEXT NOT NULL,
    metadata TEXT,
    concurrency_key TEXT,
    priority_ms INTEGER NOT NULL,
    queue_score INTEGER,
    is_test INTEGER NOT NULL,
    machine TEXT,
    worker_id TEXT,
    version TEXT,
    heartbeat_deadline INTEGER,
    attempt_started_at INTEGER,
    duration_ms INTEGER NOT NULL,
    replayed_from TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
);

CREATE INDEX runs_by_env ON runs (env_id, id);
CREATE INDEX runs_by_heartbeat ON runs (heartbeat_deadline) WHERE heartbeat_deadline IS NOT NULL;

-- The queue: the runs waiting to be taken, ordered by score within their queue. A partial index,
-- so it holds only queued runs and a run leaves it by the same update that moves it on.
CREATE INDEX runs_in_queue ON runs (queue_id, queue_score) WHERE queue_score IS NOT NULL;

CREATE TABLE run_tags (
    tag TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (tag, run_id)
) WITHOUT ROWID;

-- Snapshots: each run's append-only history.
CREATE TABLE snapshots (
    run_id TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    run_status TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    description TEXT NOT NULL,
    worker_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, id)
) WITHOUT ROWID;
