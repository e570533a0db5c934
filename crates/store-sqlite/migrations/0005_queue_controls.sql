-- Queue controls set through the API: pausing, and a limit overriding the declared one.
ALTER TABLE queues ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN limit_override INTEGER;
ALTER TABLE queues ADD COLUMN limit_overridden_at INTEGER;
