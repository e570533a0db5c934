-- Environment limits (Trigger.dev's environment concurrency limit and burst factor) and pausing.
ALTER TABLE environments ADD COLUMN concurrency_limit INTEGER;
ALTER TABLE environments ADD COLUMN burst_factor REAL NOT NULL DEFAULT 2.0;
ALTER TABLE environments ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
-- A queue's limit applies to each concurrency key; combined_limit caps all keys together.
ALTER TABLE queues ADD COLUMN combined_limit INTEGER;
ALTER TABLE queues ADD COLUMN keyed_running INTEGER NOT NULL DEFAULT 0;
-- Running runs of each concurrency key of a queue; a row only while the key has one.
CREATE TABLE lane_slots (
    queue_id TEXT NOT NULL,
    concurrency_key TEXT NOT NULL,
    running INTEGER NOT NULL,
    PRIMARY KEY (queue_id, concurrency_key)
) WITHOUT ROWID;
-- Runs hold a slot exactly while they have a heartbeat deadline.
INSERT INTO lane_slots (queue_id, concurrency_key, running)
    SELECT queue_id, concurrency_key, COUNT(*) FROM runs
    WHERE concurrency_key IS NOT NULL AND heartbeat_deadline IS NOT NULL
    GROUP BY queue_id, concurrency_key;
UPDATE queues SET keyed_running = COALESCE((SELECT SUM(running) FROM lane_slots WHERE lane_slots.queue_id = queues.id), 0);
