-- Due schedules are taken in (next_run, id) order a pass at a time: an index in that order lets a
-- pass read only its own rows instead of sorting every due schedule.
DROP INDEX schedules_due;
CREATE INDEX schedules_due ON schedules (next_run, id) WHERE next_run IS NOT NULL;
