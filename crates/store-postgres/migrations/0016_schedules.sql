-- Schedules of tasks: a cron expression in a time zone, per environment, and where its chain of
-- nominal fire times stands. An inactive schedule keeps its chain but triggers nothing.
CREATE TABLE schedules (
    id TEXT COLLATE "C" PRIMARY KEY,
    env_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    task_id TEXT COLLATE "C" NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    external_id TEXT,
    dedup_key TEXT,
    active BOOLEAN NOT NULL,
    next_run BIGINT,
    last_run BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX schedules_by_dedup_key ON schedules (env_id, dedup_key) WHERE dedup_key IS NOT NULL;
-- A task declares at most one schedule in an environment.
CREATE UNIQUE INDEX schedules_declared ON schedules (env_id, task_id) WHERE kind = 'DECLARATIVE';
CREATE INDEX schedules_by_task ON schedules (env_id, task_id, id);
CREATE INDEX schedules_due ON schedules (next_run, id) WHERE next_run IS NOT NULL;

-- The run each schedule fired at each nominal time: a time fires once, whoever fires it.
CREATE TABLE schedule_fires (
    schedule_id TEXT COLLATE "C" NOT NULL,
    fire_time BIGINT NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (schedule_id, fire_time)
);
CREATE INDEX schedule_fires_by_run ON schedule_fires (run_id);
