-- Worker versions: each distinct registration of an environment's workers (its tasks, their
-- settings and its build label, by fingerprint) is a version YYYYMMDD.N. seq orders them as they
-- were made; the highest is the environment's current version.
CREATE TABLE worker_versions (
    env_id TEXT NOT NULL,
    version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (env_id, version),
    UNIQUE (env_id, fingerprint),
    UNIQUE (env_id, seq)
) WITHOUT ROWID;
-- A worker's version in each environment it serves, a JSON array in the order of its
-- environments; NULL for a worker registered before versions existed.
ALTER TABLE workers ADD COLUMN versions TEXT;
-- runs.version is now the version a run is locked to. Runs that have not finished carry their
-- last worker's build label, which is no version: they are unlocked, and lock at their next start.
UPDATE runs SET version = NULL WHERE finished_at IS NULL;
-- The lane index holds each waiting run's version, so a walk from key to key passes over runs
-- locked to another version without reading the table.
DROP INDEX runs_in_lane;
CREATE INDEX runs_in_lane ON runs (queue_id, concurrency_key, queue_score, id, version) WHERE queue_score IS NOT NULL;
