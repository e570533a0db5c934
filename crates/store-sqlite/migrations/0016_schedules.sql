-- Schedules of tasks: a cron expression in a time zone, per environment, and where its chain of
-- nominal fire times stands. An inactive schedule keeps its chain but triggers nothing.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    external_id TEXT,
    dedup_key TEXT,
    active INTEGER NOT NULL,
    next_run INTEGER,
    last_run INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX schedules_by_dedup_key ON schedules (env_id, dedup_key) WHERE dedup_key IS NOT NULL;
-- A task declares at most one schedule in an environment.
CREATE UNIQUE INDEX schedules_declared ON schedules (env_id, task_id) WHERE kind = 'DECLARATIVE';
CREATE INDEX schedules_by_task ON schedules (env_id, task_id, id);
CREATE INDEX schedules_due ON schedules (next_run) WHERE next_run IS NOT NULL;

-- The run each schedule fired at each nominal time: a time fires once, whoever fires it.
CREATE TABLE schedule_fires (
    schedule_id TEXT NOT NULL,
    fire_time INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (schedule_id, fire_time)
) WITHOUT ROWID;
CREATE INDEX schedule_fires_by_run ON schedule_fires (run_id);
