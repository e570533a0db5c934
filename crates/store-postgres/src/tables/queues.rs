use async_trait::async_trait;
use sqlx::postgres::PgRow;
use stint_store::{Error, Lane, LimitOverride, QueueHead, QueueRow, QueueTable, RateLimit, RateOverride, RunRow};
use stint_types::{EnvId, QueueId};

use crate::codec::{big, big_opt, count, count_opt, get, inserted, map_error, total, ts, ts_opt};
use crate::tables::rates::period;
use crate::tables::rows::runs_from_rows;
use crate::tx::PgTx;

/// Every column of `queues`, in the order [`queue_from_row`] reads them.
macro_rules! queue_columns {
    () => {
        "id, env_id, name, concurrency_limit, limit_override, limit_overridden_at, paused, running, created_at, \
         combined_limit, keyed_running, rate_limit, rate_period_ms, rate_per_key, rate_override_limit, \
         rate_override_period_ms, rate_override_per_key, rate_overridden_at"
    };
}

/// How many columns [`queue_columns!`] names: a column selected after them is at this index.
const QUEUE_COLUMN_COUNT: usize = 18;

fn queue_from_row(r: &PgRow) -> Result<QueueRow, Error> {
    Ok(QueueRow {
        id: QueueId::from_stored(get(r, 0)?),
        env_id: EnvId::from_stored(get(r, 1)?),
        name: get(r, 2)?,
        concurrency_limit: count_opt(r, 3)?,
        limit_override: count_opt(r, 4)?.zip(ts_opt(r, 5)?).map(|(limit, at)| LimitOverride { limit, at }),
        paused: get(r, 6)?,
        running: count(r, 7)?,
        created_at: ts(r, 8)?,
        combined_limit: count_opt(r, 9)?,
        keyed_running: count(r, 10)?,
        rate_limit: rate_from_row(r, 11)?,
        rate_override: rate_from_row(r, 14)?.zip(ts_opt(r, 17)?).map(|(rate, at)| RateOverride { rate, at }),
    })
}

/// The rate limit in the three columns from `at` (limit, period, per key), if they hold one.
fn rate_from_row(r: &PgRow, at: usize) -> Result<Option<RateLimit>, Error> {
    let (Some(limit), Some(period), Some(per_key)) =
        (count_opt(r, at)?, get::<Option<i64>>(r, at + 1)?, get::<Option<bool>>(r, at + 2)?)
    else {
        return Ok(None);
    };
    let period_ms = u64::try_from(period).map_err(|_| Error::Corrupt(format!("rate period {period} is negative")))?;
    Ok(Some(RateLimit { limit, period_ms, per_key }))
}

#[async_trait]
impl QueueTable for PgTx<'_> {
    async fn queue_by_name(&mut self, env_id: &EnvId, name: &str) -> Result<Option<QueueRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", queue_columns!(), " FROM queues WHERE env_id = $1 AND name = $2"))
            .bind(env_id.as_str())
            .bind(name)
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(queue_from_row).transpose()
    }

    async fn queue_lock(&mut self, id: &QueueId) -> Result<Option<QueueRow>, Error> {
        // The row lock is held until the transaction ends: another transaction locking the queue
        // waits, then reads the running count this one committed.
        let locked = concat!("SELECT ", queue_columns!(), " FROM queues WHERE id = $1 FOR UPDATE");
        let plain = concat!("SELECT ", queue_columns!(), " FROM queues WHERE id = $1");
        let row = sqlx::query(if self.locking { locked } else { plain })
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(queue_from_row).transpose()
    }

    async fn queue_insert(&mut self, row: &QueueRow) -> Result<(), Error> {
        let result = sqlx::query(concat!(
            "INSERT INTO queues (",
            queue_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) ON CONFLICT DO NOTHING"
        ))
        .bind(row.id.as_str())
        .bind(row.env_id.as_str())
        .bind(&row.name)
        .bind(big_opt(row.concurrency_limit))
        .bind(big_opt(row.limit_override.map(|o| o.limit)))
        .bind(row.limit_override.map(|o| o.at.0))
        .bind(row.paused)
        .bind(big(row.running))
        .bind(row.created_at.0)
        .bind(big_opt(row.combined_limit))
        .bind(big(row.keyed_running))
        .bind(big_opt(row.rate_limit.map(|r| r.limit)))
        .bind(row.rate_limit.map(|r| period(r.period_ms)))
        .bind(row.rate_limit.map(|r| r.per_key))
        .bind(big_opt(row.rate_override.map(|o| o.rate.limit)))
        .bind(row.rate_override.map(|o| period(o.rate.period_ms)))
        .bind(row.rate_override.map(|o| o.rate.per_key))
        .bind(row.rate_override.map(|o| o.at.0))
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("queue '{}' exists already in environment {}", row.name, row.env_id))
    }

    async fn queue_get(&mut self, id: &QueueId) -> Result<Option<QueueRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", queue_columns!(), " FROM queues WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(queue_from_row).transpose()
    }

    async fn queue_list(&mut self, env_id: &EnvId, offset: u64, limit: u32) -> Result<Vec<QueueRow>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            queue_columns!(),
            " FROM queues WHERE env_id = $1 ORDER BY name, id LIMIT $2 OFFSET $3"
        ))
        .bind(env_id.as_str())
        .bind(big(limit))
        // An offset past every row finds none, however far past it is.
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter().map(queue_from_row).collect()
    }

    async fn queue_count(&mut self, env_id: &EnvId) -> Result<u64, Error> {
        let row = sqlx::query("SELECT COUNT(*) FROM queues WHERE env_id = $1")
            .bind(env_id.as_str())
            .fetch_one(&mut *self.connection)
            .await
            .map_err(map_error)?;
        total(&row, 0)
    }

    async fn queue_waiting(&mut self, id: &QueueId) -> Result<u64, Error> {
        let row = sqlx::query("SELECT COUNT(*) FROM runs WHERE queue_id = $1 AND queue_score IS NOT NULL")
            .bind(id.as_str())
            .fetch_one(&mut *self.connection)
            .await
            .map_err(map_error)?;
        total(&row, 0)
    }

    async fn queue_set_limit(&mut self, id: &QueueId, limit: Option<u32>, combined: Option<u32>) -> Result<(), Error> {
        sqlx::query("UPDATE queues SET concurrency_limit = $1, combined_limit = $2 WHERE id = $3")
            .bind(big_opt(limit))
            .bind(big_opt(combined))
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_set_override(&mut self, id: &QueueId, limit: Option<LimitOverride>) -> Result<(), Error> {
        sqlx::query("UPDATE queues SET limit_override = $1, limit_overridden_at = $2 WHERE id = $3")
            .bind(big_opt(limit.map(|o| o.limit)))
            .bind(limit.map(|o| o.at.0))
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_set_paused(&mut self, id: &QueueId, paused: bool) -> Result<(), Error> {
        sqlx::query("UPDATE queues SET paused = $1 WHERE id = $2")
            .bind(paused)
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_add_running(&mut self, id: &QueueId, delta: i64, keyed_delta: i64) -> Result<(), Error> {
        sqlx::query(
            "UPDATE queues SET running = GREATEST(0, running + $1), keyed_running = GREATEST(0, keyed_running + $2) \
             WHERE id = $3",
        )
        .bind(delta)
        .bind(keyed_delta)
        .bind(id.as_str())
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn queue_heads(
        &mut self,
        env_id: &EnvId,
        task_ids: &[String],
        version: Option<&str>,
    ) -> Result<Vec<QueueHead>, Error> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        // Each queue's head is found by walking its part of the partial index `runs_in_queue` in
        // score order and stopping at the first run of an asked task the worker's version may
        // take, which is the first entry in the common case of one task per queue and few runs
        // locked to other versions. A NULL version matches only runs not locked.
        let rows = sqlx::query(concat!(
            "SELECT ",
            queue_columns!(),
            ", head.queue_score FROM queues q CROSS JOIN LATERAL ( \
               SELECT r.queue_score FROM runs r \
               WHERE r.queue_id = q.id AND r.queue_score IS NOT NULL AND r.task_id = ANY($2) \
               AND (r.version IS NULL OR r.version = $3) \
               ORDER BY r.queue_score LIMIT 1) head \
             WHERE q.env_id = $1"
        ))
        .bind(env_id.as_str())
        .bind(task_ids)
        .bind(version)
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter()
            .map(|r| Ok(QueueHead { queue: queue_from_row(r)?, head_score: get(r, QUEUE_COLUMN_COUNT)? }))
            .collect()
    }

    async fn queue_ready(&mut self, queue_id: &QueueId, max_score: i64) -> Result<bool, Error> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM runs \
             WHERE queue_id = $1 AND queue_score IS NOT NULL AND queue_score <= $2)",
        )
        .bind(queue_id.as_str())
        .bind(max_score)
        .fetch_one(&mut *self.connection)
        .await
        .map_err(map_error)?;
        get(&row, 0)
    }

    async fn queue_lanes(
        &mut self,
        queue_id: &QueueId,
        after: Option<&str>,
        version: Option<&str>,
        max_score: i64,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A walk over the lane index that jumps from each key to the next, reading one entry per
        // key however many runs a key has, and passing over the runs locked to another version.
        let rows = sqlx::query(
            "WITH RECURSIVE lane(key, n) AS ( \
               SELECT (SELECT concurrency_key FROM runs WHERE queue_id = $1 AND concurrency_key > $2 \
                       AND queue_score IS NOT NULL AND queue_score <= $4 AND (version IS NULL OR version = $5) \
                       ORDER BY concurrency_key LIMIT 1), 1 \
               UNION ALL SELECT (SELECT concurrency_key FROM runs WHERE queue_id = $1 AND concurrency_key > lane.key \
                       AND queue_score IS NOT NULL AND queue_score <= $4 AND (version IS NULL OR version = $5) \
                       ORDER BY concurrency_key LIMIT 1), n + 1 \
               FROM lane WHERE key IS NOT NULL AND n < $3) \
             SELECT key FROM lane WHERE key IS NOT NULL",
        )
        .bind(queue_id.as_str())
        .bind(after.unwrap_or(""))
        .bind(big(limit))
        .bind(max_score)
        .bind(version)
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter().map(|row| get::<String>(row, 0)).collect()
    }

    async fn queue_take(
        &mut self,
        queue_id: &QueueId,
        lane: Lane<'_>,
        task_ids: &[String],
        version: Option<&str>,
        max_score: i64,
        limit: u32,
    ) -> Result<Vec<RunRow>, Error> {
        if task_ids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let in_lane = match lane {
            Lane::All => "",
            Lane::Unkeyed => "AND concurrency_key IS NULL",
            Lane::Key(_) => "AND concurrency_key = $6",
        };
        // In a write transaction the runs taken are locked until it ends, and runs another
        // transaction has locked are skipped, not waited for: nodes dequeuing from one queue at
        // once never get the same run, and none waits for another.
        let lock = if self.locking { "FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT {} FROM runs WHERE queue_id = $1 {in_lane} AND queue_score IS NOT NULL AND queue_score <= $2 \
             AND task_id = ANY($3) AND (version IS NULL OR version = $5) ORDER BY queue_score, id LIMIT $4 {lock}",
            run_columns!()
        );
        // Runs locked to another version are passed over in the walk by score, like runs of other
        // tasks; a NULL version (a worker without one) matches only runs not locked.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(queue_id.as_str())
            .bind(max_score)
            .bind(task_ids)
            .bind(big(limit))
            .bind(version);
        if let Lane::Key(key) = lane {
            query = query.bind(key);
        }
        let rows = query.fetch_all(&mut *self.connection).await.map_err(map_error)?;
        runs_from_rows(&rows)
    }
}
