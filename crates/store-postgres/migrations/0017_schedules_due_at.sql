-- A schedule's run is made at `due_at`, at or shortly before its nominal time `next_run`, so that
-- the runs of many schedules of one time are spread out. Due schedules are taken in
-- (due_at, id) order a pass at a time, from an index in that order.
ALTER TABLE schedules ADD COLUMN due_at BIGINT;
UPDATE schedules SET due_at = next_run;
DROP INDEX schedules_due;
CREATE INDEX schedules_due ON schedules (due_at, id) WHERE due_at IS NOT NULL;
