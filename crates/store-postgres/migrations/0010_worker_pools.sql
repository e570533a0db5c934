-- A worker pool serves several environments: their ids as a JSON array, NULL for one.
ALTER TABLE workers ADD COLUMN env_ids TEXT;
