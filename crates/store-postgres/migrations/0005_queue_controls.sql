-- Queue controls set through the API: pausing, and a limit overriding the declared one.
ALTER TABLE queues
    ADD COLUMN paused BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN limit_override BIGINT,
    ADD COLUMN limit_overridden_at BIGINT;
