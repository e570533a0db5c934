-- The lanes of a queue: its waiting runs by concurrency key (runs without a key under NULL),
-- each lane by score, so a dequeue can go round the keys and find each key's next runs directly.
CREATE INDEX runs_in_lane ON runs (queue_id, concurrency_key, queue_score, id) WHERE queue_score IS NOT NULL;
