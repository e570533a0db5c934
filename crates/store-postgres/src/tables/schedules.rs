//! Schedules and the runs they fired.
//!
//! Inserts refuse duplicates with `ON CONFLICT DO NOTHING`, which keeps the transaction usable
//! for the caller to look up the schedule holding the key, or to go on after a time fired already.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use stint_store::{Error, ScheduleFireRow, ScheduleRow, ScheduleTable};
use stint_types::{EnvId, RunId, ScheduleId, Timestamp};

use crate::codec::{big, get, inserted, map_error, total, ts, ts_opt};
use crate::tx::PgTx;

/// Every column of `schedules`, in the order [`schedule_from_row`] reads them.
macro_rules! schedule_columns {
    () => {
        "id, env_id, kind, task_id, cron, timezone, external_id, dedup_key, active, next_run, last_run, created_at, \
         updated_at, due_at"
    };
}

fn schedule_from_row(r: &PgRow) -> Result<ScheduleRow, Error> {
    Ok(ScheduleRow {
        id: ScheduleId::from_stored(get(r, 0)?),
        env_id: EnvId::from_stored(get(r, 1)?),
        kind: get(r, 2)?,
        task_id: get(r, 3)?,
        cron: get(r, 4)?,
        timezone: get(r, 5)?,
        external_id: get(r, 6)?,
        dedup_key: get(r, 7)?,
        active: get(r, 8)?,
        next_run: ts_opt(r, 9)?,
        last_run: ts_opt(r, 10)?,
        created_at: ts(r, 11)?,
        updated_at: ts(r, 12)?,
        due_at: ts_opt(r, 13)?,
    })
}

fn schedules_from_rows(rows: &[PgRow]) -> Result<Vec<ScheduleRow>, Error> {
    rows.iter().map(schedule_from_row).collect()
}

fn fire_from_row(r: &PgRow) -> Result<ScheduleFireRow, Error> {
    Ok(ScheduleFireRow {
        schedule_id: ScheduleId::from_stored(get(r, 0)?),
        fire_time: ts(r, 1)?,
        run_id: RunId::from_stored(get(r, 2)?),
    })
}

#[async_trait]
impl ScheduleTable for PgTx<'_> {
    async fn schedule_insert(&mut self, row: &ScheduleRow) -> Result<(), Error> {
        // Without a conflict target, DO NOTHING covers the id, the dedup key and the declared
        // schedule of a task alike.
        let result = sqlx::query(concat!(
            "INSERT INTO schedules (",
            schedule_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING"
        ))
        .bind(row.id.as_str())
        .bind(row.env_id.as_str())
        .bind(&row.kind)
        .bind(&row.task_id)
        .bind(&row.cron)
        .bind(&row.timezone)
        .bind(&row.external_id)
        .bind(&row.dedup_key)
        .bind(row.active)
        .bind(row.next_run.map(|t| t.0))
        .bind(row.last_run.map(|t| t.0))
        .bind(row.created_at.0)
        .bind(row.updated_at.0)
        .bind(row.due_at.map(|t| t.0))
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || {
            format!("schedule {}, its dedup key, or its task's declared schedule exists already", row.id)
        })
    }

    async fn schedule_update(&mut self, row: &ScheduleRow) -> Result<(), Error> {
        sqlx::query(
            "UPDATE schedules SET task_id = $1, cron = $2, timezone = $3, external_id = $4, dedup_key = $5, \
             active = $6, next_run = $7, last_run = $8, updated_at = $9, due_at = $10 WHERE id = $11",
        )
        .bind(&row.task_id)
        .bind(&row.cron)
        .bind(&row.timezone)
        .bind(&row.external_id)
        .bind(&row.dedup_key)
        .bind(row.active)
        .bind(row.next_run.map(|t| t.0))
        .bind(row.last_run.map(|t| t.0))
        .bind(row.updated_at.0)
        .bind(row.due_at.map(|t| t.0))
        .bind(row.id.as_str())
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn schedule_get(&mut self, id: &ScheduleId) -> Result<Option<ScheduleRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", schedule_columns!(), " FROM schedules WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    async fn schedule_by_dedup_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<ScheduleRow>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE env_id = $1 AND dedup_key = $2"
        ))
        .bind(env_id.as_str())
        .bind(key)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    async fn schedule_delete(&mut self, id: &ScheduleId) -> Result<bool, Error> {
        sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(|result| result.rows_affected() > 0)
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
        // One statement per filter rather than `($2 IS NULL OR task_id = $2)`, whose generic plan
        // could not use the index on the task.
        let query = match task_id {
            Some(task_id) => sqlx::query(concat!(
                "SELECT ",
                schedule_columns!(),
                " FROM schedules WHERE env_id = $1 AND task_id = $2 ORDER BY id LIMIT $3 OFFSET $4"
            ))
            .bind(env_id.as_str())
            .bind(task_id),
            None => sqlx::query(concat!(
                "SELECT ",
                schedule_columns!(),
                " FROM schedules WHERE env_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
            ))
            .bind(env_id.as_str()),
        };
        let rows = query.bind(big(limit)).bind(offset).fetch_all(&mut *self.connection).await.map_err(map_error)?;
        schedules_from_rows(&rows)
    }

    async fn schedule_count(&mut self, env_id: &EnvId, task_id: Option<&str>) -> Result<u64, Error> {
        let query = match task_id {
            Some(task_id) => sqlx::query("SELECT COUNT(*) FROM schedules WHERE env_id = $1 AND task_id = $2")
                .bind(env_id.as_str())
                .bind(task_id),
            None => sqlx::query("SELECT COUNT(*) FROM schedules WHERE env_id = $1").bind(env_id.as_str()),
        };
        let row = query.fetch_one(&mut *self.connection).await.map_err(map_error)?;
        total(&row, 0)
    }

    async fn schedule_declarative(&mut self, env_id: &EnvId) -> Result<Vec<ScheduleRow>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE env_id = $1 AND kind = 'DECLARATIVE' ORDER BY id"
        ))
        .bind(env_id.as_str())
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        schedules_from_rows(&rows)
    }

    async fn schedule_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<ScheduleRow>, Error> {
        let plain = concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at, id LIMIT $2"
        );
        // A pass locks what it fires; another node's pass skips those rather than waiting.
        let locked = concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at, id LIMIT $2 \
             FOR UPDATE SKIP LOCKED"
        );
        let rows = sqlx::query(if self.locking { locked } else { plain })
            .bind(now.0)
            .bind(big(limit))
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        schedules_from_rows(&rows)
    }

    async fn schedule_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        // The same schedules as `schedule_due`, so a time given here always finds one there.
        let row = sqlx::query("SELECT MIN(due_at) FROM schedules WHERE due_at IS NOT NULL")
            .fetch_one(&mut *self.connection)
            .await
            .map_err(map_error)?;
        ts_opt(&row, 0)
    }

    async fn schedule_advance(&mut self, from: Timestamp, to: &ScheduleRow) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE schedules SET next_run = $1, due_at = $2, last_run = $3, updated_at = $4 \
             WHERE id = $5 AND next_run = $6",
        )
        .bind(to.next_run.map(|t| t.0))
        .bind(to.due_at.map(|t| t.0))
        .bind(to.last_run.map(|t| t.0))
        .bind(to.updated_at.0)
        .bind(to.id.as_str())
        .bind(from.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn schedule_fire_at(&mut self, id: &ScheduleId, at: Timestamp) -> Result<Option<ScheduleFireRow>, Error> {
        let row = sqlx::query(
            "SELECT schedule_id, fire_time, run_id FROM schedule_fires WHERE schedule_id = $1 AND fire_time = $2",
        )
        .bind(id.as_str())
        .bind(at.0)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(fire_from_row).transpose()
    }

    async fn schedule_fire_delete(&mut self, id: &ScheduleId, at: Timestamp) -> Result<bool, Error> {
        let result = sqlx::query("DELETE FROM schedule_fires WHERE schedule_id = $1 AND fire_time = $2")
            .bind(id.as_str())
            .bind(at.0)
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn schedule_fire_insert(&mut self, row: &ScheduleFireRow) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO schedule_fires (schedule_id, fire_time, run_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(row.schedule_id.as_str())
        .bind(row.fire_time.0)
        .bind(row.run_id.as_str())
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("schedule {} fired at {} already", row.schedule_id, row.fire_time.0))
    }

    async fn schedule_fire_of_run(&mut self, run_id: &RunId) -> Result<Option<ScheduleFireRow>, Error> {
        let row = sqlx::query("SELECT schedule_id, fire_time, run_id FROM schedule_fires WHERE run_id = $1 LIMIT 1")
            .bind(run_id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(fire_from_row).transpose()
    }
}
