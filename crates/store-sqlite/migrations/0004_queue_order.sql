-- The queue index carries the run id after the score, so taking the next runs "by score, then
-- id" reads them off the index in order and stops at the limit, instead of reading every
-- queued run of the queue and sorting them.
DROP INDEX runs_in_queue;
CREATE INDEX runs_in_queue ON runs (queue_id, queue_score, id) WHERE queue_score IS NOT NULL;
