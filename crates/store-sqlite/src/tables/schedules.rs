//! Schedules and the runs they fired.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use stint_store::{Error, ScheduleFireRow, ScheduleRow, ScheduleTable};
use stint_types::{EnvId, RunId, ScheduleId, Timestamp};

use crate::codec::{map_error, total, ts};
use crate::tx::SqliteTx;

/// Every column of `schedules`, in the order [`schedule_from_row`] reads them.
const SCHEDULE_COLUMNS: &str = "id, env_id, kind, task_id, cron, timezone, external_id, dedup_key, active, next_run, \
    last_run, created_at, updated_at, due_at";

fn schedule_from_row(r: &Row<'_>) -> Result<ScheduleRow, Error> {
    Ok(ScheduleRow {
        id: ScheduleId::from_stored(r.get(0).map_err(map_error)?),
        env_id: EnvId::from_stored(r.get(1).map_err(map_error)?),
        kind: r.get(2).map_err(map_error)?,
        task_id: r.get(3).map_err(map_error)?,
        cron: r.get(4).map_err(map_error)?,
        timezone: r.get(5).map_err(map_error)?,
        external_id: r.get(6).map_err(map_error)?,
        dedup_key: r.get(7).map_err(map_error)?,
        active: r.get(8).map_err(map_error)?,
        next_run: ts(r.get(9).map_err(map_error)?),
        last_run: ts(r.get(10).map_err(map_error)?),
        created_at: Timestamp(r.get(11).map_err(map_error)?),
        updated_at: Timestamp(r.get(12).map_err(map_error)?),
        due_at: ts(r.get(13).map_err(map_error)?),
    })
}

fn fire_from_row(r: &Row<'_>) -> rusqlite::Result<ScheduleFireRow> {
    Ok(ScheduleFireRow {
        schedule_id: ScheduleId::from_stored(r.get(0)?),
        fire_time: Timestamp(r.get(1)?),
        run_id: RunId::from_stored(r.get(2)?),
    })
}

impl SqliteTx<'_> {
    fn schedules_where(&mut self, clause: &str, values: impl rusqlite::Params) -> Result<Vec<ScheduleRow>, Error> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE {clause}");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query(values).map_err(map_error)?;
        let mut found = Vec::new();
        while let Some(r) = rows.next().map_err(map_error)? {
            found.push(schedule_from_row(r)?);
        }
        Ok(found)
    }

    fn schedule_where(&mut self, clause: &str, values: impl rusqlite::Params) -> Result<Option<ScheduleRow>, Error> {
        Ok(self.schedules_where(clause, values)?.into_iter().next())
    }
}

#[async_trait]
impl ScheduleTable for SqliteTx<'_> {
    async fn schedule_insert(&mut self, row: &ScheduleRow) -> Result<(), Error> {
        // The unique indexes on the dedup key and on declared schedules refuse a second one: a
        // constraint violation, which `map_error` makes a Duplicate.
        let sql =
            format!("INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.env_id.as_str(),
                    row.kind,
                    row.task_id,
                    row.cron,
                    row.timezone,
                    row.external_id,
                    row.dedup_key,
                    row.active,
                    row.next_run.map(|t| t.0),
                    row.last_run.map(|t| t.0),
                    row.created_at.0,
                    row.updated_at.0,
                    row.due_at.map(|t| t.0),
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn schedule_update(&mut self, row: &ScheduleRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "UPDATE schedules SET task_id = ?, cron = ?, timezone = ?, external_id = ?, dedup_key = ?, \
                 active = ?, next_run = ?, last_run = ?, updated_at = ?, due_at = ? WHERE id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.task_id,
                    row.cron,
                    row.timezone,
                    row.external_id,
                    row.dedup_key,
                    row.active,
                    row.next_run.map(|t| t.0),
                    row.last_run.map(|t| t.0),
                    row.updated_at.0,
                    row.due_at.map(|t| t.0),
                    row.id.as_str(),
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn schedule_get(&mut self, id: &ScheduleId) -> Result<Option<ScheduleRow>, Error> {
        self.schedule_where("id = ?", [id.as_str()])
    }

    async fn schedule_by_dedup_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<ScheduleRow>, Error> {
        self.schedule_where("env_id = ? AND dedup_key = ?", params![env_id.as_str(), key])
    }

    async fn schedule_delete(&mut self, id: &ScheduleId) -> Result<bool, Error> {
        self.connection
            .prepare_cached("DELETE FROM schedules WHERE id = ?")
            .and_then(|mut s| s.execute([id.as_str()]))
            .map(|deleted| deleted > 0)
            .map_err(map_error)
    }

    async fn schedule_list(
        &mut self,
        env_id: &EnvId,
        task_id: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<ScheduleRow>, Error> {
        // An offset past every row finds none, however far past it is.
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        // One statement per filter rather than `(? IS NULL OR task_id = ?)`, which would keep
        // SQLite from using the index on the task.
        match task_id {
            Some(task_id) => self.schedules_where(
                "env_id = ? AND task_id = ? ORDER BY id LIMIT ? OFFSET ?",
                params![env_id.as_str(), task_id, limit, offset],
            ),
            None => {
                self.schedules_where("env_id = ? ORDER BY id LIMIT ? OFFSET ?", params![env_id.as_str(), limit, offset])
            }
        }
    }

    async fn schedule_count(&mut self, env_id: &EnvId, task_id: Option<&str>) -> Result<u64, Error> {
        let counted = match task_id {
            Some(task_id) => self
                .connection
                .prepare_cached("SELECT COUNT(*) FROM schedules WHERE env_id = ? AND task_id = ?")
                .and_then(|mut s| s.query_row(params![env_id.as_str(), task_id], |r| r.get(0))),
            None => self
                .connection
                .prepare_cached("SELECT COUNT(*) FROM schedules WHERE env_id = ?")
                .and_then(|mut s| s.query_row([env_id.as_str()], |r| r.get(0))),
        };
        counted.map_err(map_error).and_then(total)
    }

    async fn schedule_declarative(&mut self, env_id: &EnvId) -> Result<Vec<ScheduleRow>, Error> {
        self.schedules_where("env_id = ? AND kind = 'DECLARATIVE' ORDER BY id", [env_id.as_str()])
    }

    async fn schedule_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<ScheduleRow>, Error> {
        self.schedules_where("due_at IS NOT NULL AND due_at <= ? ORDER BY due_at, id LIMIT ?", params![now.0, limit])
    }

    async fn schedule_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        // The same schedules as `schedule_due`, so a time given here always finds one there.
        self.connection
            .prepare_cached("SELECT due_at FROM schedules WHERE due_at IS NOT NULL ORDER BY due_at LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
            .map(ts)
            .map_err(map_error)
    }

    async fn schedule_advance(&mut self, from: Timestamp, to: &ScheduleRow) -> Result<bool, Error> {
        self.connection
            .prepare_cached(
                "UPDATE schedules SET next_run = ?, due_at = ?, last_run = ?, updated_at = ? \
                 WHERE id = ? AND next_run = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    to.next_run.map(|t| t.0),
                    to.due_at.map(|t| t.0),
                    to.last_run.map(|t| t.0),
                    to.updated_at.0,
                    to.id.as_str(),
                    from.0
                ])
            })
            .map(|changed| changed == 1)
            .map_err(map_error)
    }

    async fn schedule_fire_at(&mut self, id: &ScheduleId, at: Timestamp) -> Result<Option<ScheduleFireRow>, Error> {
        self.connection
            .prepare_cached(
                "SELECT schedule_id, fire_time, run_id FROM schedule_fires WHERE schedule_id = ? AND fire_time = ?",
            )
            .and_then(|mut s| s.query_row(params![id.as_str(), at.0], fire_from_row).optional())
            .map_err(map_error)
    }

    async fn schedule_fire_delete(&mut self, id: &ScheduleId, at: Timestamp) -> Result<bool, Error> {
        self.connection
            .prepare_cached("DELETE FROM schedule_fires WHERE schedule_id = ? AND fire_time = ?")
            .and_then(|mut s| s.execute(params![id.as_str(), at.0]))
            .map(|deleted| deleted == 1)
            .map_err(map_error)
    }

    async fn schedule_fire_insert(&mut self, row: &ScheduleFireRow) -> Result<(), Error> {
        // The primary key (schedule, time) refuses a time fired already: a Duplicate.
        self.connection
            .prepare_cached("INSERT INTO schedule_fires (schedule_id, fire_time, run_id) VALUES (?, ?, ?)")
            .and_then(|mut s| s.execute(params![row.schedule_id.as_str(), row.fire_time.0, row.run_id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn schedule_fire_of_run(&mut self, run_id: &RunId) -> Result<Option<ScheduleFireRow>, Error> {
        self.connection
            .prepare_cached("SELECT schedule_id, fire_time, run_id FROM schedule_fires WHERE run_id = ? LIMIT 1")
            .and_then(|mut s| s.query_row([run_id.as_str()], fire_from_row).optional())
            .map_err(map_error)
    }
}
