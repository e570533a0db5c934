-- A task's default TTL for its runs, in seconds.
ALTER TABLE tasks ADD COLUMN ttl_secs INTEGER;
