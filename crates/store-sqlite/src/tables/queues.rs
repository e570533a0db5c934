use async_trait::async_trait;
use rusqlite::{Row, params, params_from_iter};
use stint_store::{Error, Lane, LimitOverride, QueueHead, QueueRow, QueueTable, RateLimit, RateOverride, RunRow};
use stint_types::{EnvId, QueueId, Timestamp};

use crate::codec::{count, map_error, total};
use crate::tables::rates::period;
use crate::tables::runs::{RUN_COLUMNS, run_from_row};
use crate::tx::{SqliteTx, placeholders};

/// Every column of `queues`, in the order [`queue_from_row`] reads them.
const QUEUE_COLUMNS: &str = "id, env_id, name, concurrency_limit, limit_override, limit_overridden_at, paused, running, created_at, \
     combined_limit, keyed_running, rate_limit, rate_period_ms, rate_per_key, rate_override_limit, \
     rate_override_period_ms, rate_override_per_key, rate_overridden_at";

/// How many columns [`QUEUE_COLUMNS`] names: a column selected after them is at this index.
const QUEUE_COLUMN_COUNT: usize = 18;

/// A queue from a row selected with [`QUEUE_COLUMNS`].
fn queue_from_row(r: &Row<'_>) -> Result<QueueRow, Error> {
    let limit_override = match (r.get(4).map_err(map_error)?, r.get(5).map_err(map_error)?) {
        (Some(limit), Some(at)) => Some(LimitOverride { limit: count(limit)?, at: Timestamp(at) }),
        _ => None,
    };
    Ok(QueueRow {
        id: QueueId::from_stored(r.get(0).map_err(map_error)?),
        env_id: EnvId::from_stored(r.get(1).map_err(map_error)?),
        name: r.get(2).map_err(map_error)?,
        concurrency_limit: r.get::<_, Option<i64>>(3).map_err(map_error)?.map(count).transpose()?,
        limit_override,
        paused: r.get(6).map_err(map_error)?,
        running: count(r.get(7).map_err(map_error)?)?,
        created_at: Timestamp(r.get(8).map_err(map_error)?),
        combined_limit: r.get::<_, Option<i64>>(9).map_err(map_error)?.map(count).transpose()?,
        keyed_running: count(r.get(10).map_err(map_error)?)?,
        rate_limit: rate_from_row(r, 11)?,
        rate_override: rate_from_row(r, 14)?
            .zip(r.get::<_, Option<i64>>(17).map_err(map_error)?)
            .map(|(rate, at)| RateOverride { rate, at: Timestamp(at) }),
    })
}

/// The rate limit in the three columns from `at` (limit, period, per key), if they hold one.
fn rate_from_row(r: &Row<'_>, at: usize) -> Result<Option<RateLimit>, Error> {
    let limit: Option<i64> = r.get(at).map_err(map_error)?;
    let period: Option<i64> = r.get(at + 1).map_err(map_error)?;
    let per_key: Option<bool> = r.get(at + 2).map_err(map_error)?;
    let (Some(limit), Some(period), Some(per_key)) = (limit, period, per_key) else { return Ok(None) };
    let period_ms = u64::try_from(period).map_err(|_| Error::Corrupt(format!("rate period {period} is negative")))?;
    Ok(Some(RateLimit { limit: count(limit)?, period_ms, per_key }))
}

#[async_trait]
impl QueueTable for SqliteTx<'_> {
    async fn queue_by_name(&mut self, env_id: &EnvId, name: &str) -> Result<Option<QueueRow>, Error> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE env_id = ? AND name = ?");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query(params![env_id.as_str(), name]).map_err(map_error)?;
        rows.next().map_err(map_error)?.map(queue_from_row).transpose()
    }

    async fn queue_lock(&mut self, id: &QueueId) -> Result<Option<QueueRow>, Error> {
        // The single writer already serialises write transactions: reading is locking.
        self.queue_get(id).await
    }

    async fn queue_insert(&mut self, row: &QueueRow) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO queues ({QUEUE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.env_id.as_str(),
                    row.name,
                    row.concurrency_limit,
                    row.limit_override.map(|o| o.limit),
                    row.limit_override.map(|o| o.at.0),
                    row.paused,
                    row.running,
                    row.created_at.0,
                    row.combined_limit,
                    row.keyed_running,
                    row.rate_limit.map(|r| r.limit),
                    row.rate_limit.map(|r| period(r.period_ms)),
                    row.rate_limit.map(|r| r.per_key),
                    row.rate_override.map(|o| o.rate.limit),
                    row.rate_override.map(|o| period(o.rate.period_ms)),
                    row.rate_override.map(|o| o.rate.per_key),
                    row.rate_override.map(|o| o.at.0)
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_get(&mut self, id: &QueueId) -> Result<Option<QueueRow>, Error> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE id = ?");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query([id.as_str()]).map_err(map_error)?;
        rows.next().map_err(map_error)?.map(queue_from_row).transpose()
    }

    async fn queue_list(&mut self, env_id: &EnvId, offset: u64, limit: u32) -> Result<Vec<QueueRow>, Error> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE env_id = ? ORDER BY name, id LIMIT ? OFFSET ?");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        // An offset past every row finds none, however far past it is.
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut rows = statement.query(params![env_id.as_str(), limit, offset]).map_err(map_error)?;
        let mut queues = Vec::new();
        while let Some(row) = rows.next().map_err(map_error)? {
            queues.push(queue_from_row(row)?);
        }
        Ok(queues)
    }

    async fn queue_count(&mut self, env_id: &EnvId) -> Result<u64, Error> {
        self.connection
            .prepare_cached("SELECT COUNT(*) FROM queues WHERE env_id = ?")
            .and_then(|mut s| s.query_row([env_id.as_str()], |r| r.get(0)))
            .map_err(map_error)
            .and_then(total)
    }

    async fn queue_waiting(&mut self, id: &QueueId) -> Result<u64, Error> {
        self.connection
            .prepare_cached(
                "SELECT COUNT(*) FROM runs INDEXED BY runs_in_queue WHERE queue_id = ? AND queue_score IS NOT NULL",
            )
            .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)))
            .map_err(map_error)
            .and_then(total)
    }

    async fn queue_set_limit(&mut self, id: &QueueId, limit: Option<u32>, combined: Option<u32>) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE queues SET concurrency_limit = ?, combined_limit = ? WHERE id = ?")
            .and_then(|mut s| s.execute(params![limit, combined, id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_set_override(&mut self, id: &QueueId, limit: Option<LimitOverride>) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE queues SET limit_override = ?, limit_overridden_at = ? WHERE id = ?")
            .and_then(|mut s| s.execute(params![limit.map(|o| o.limit), limit.map(|o| o.at.0), id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_set_paused(&mut self, id: &QueueId, paused: bool) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE queues SET paused = ? WHERE id = ?")
            .and_then(|mut s| s.execute(params![paused, id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_add_running(&mut self, id: &QueueId, delta: i64, keyed_delta: i64) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "UPDATE queues SET running = max(0, running + ?), keyed_running = max(0, keyed_running + ?) WHERE id = ?",
            )
            .and_then(|mut s| s.execute(params![delta, keyed_delta, id.as_str()]))
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
        // The head is found by walking the queue in score order and stopping at the first run of
        // an asked task the worker's version may take, which is the first row in the common case
        // of one task per queue and few runs locked to other versions.
        let sql = format!(
            "SELECT {QUEUE_COLUMNS}, head FROM ( \
               SELECT q.*, (SELECT r.queue_score FROM runs r INDEXED BY runs_in_queue \
                            WHERE r.queue_id = q.id AND r.queue_score IS NOT NULL AND r.task_id IN ({}) \
                            AND (r.version IS NULL OR r.version = ?) \
                            ORDER BY r.queue_score LIMIT 1) AS head \
               FROM queues q WHERE q.env_id = ?) \
             WHERE head IS NOT NULL",
            placeholders(task_ids.len())
        );
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        // A worker without a version compares with NULL, which matches nothing: it takes only
        // runs not locked.
        let params: Vec<rusqlite::types::Value> = task_ids
            .iter()
            .map(|t| t.clone().into())
            .chain([version.map(str::to_string).into(), env_id.as_str().to_string().into()])
            .collect();
        let mut rows = statement.query(params_from_iter(params)).map_err(map_error)?;
        let mut heads = Vec::new();
        while let Some(row) = rows.next().map_err(map_error)? {
            heads.push(QueueHead {
                queue: queue_from_row(row)?,
                head_score: row.get(QUEUE_COLUMN_COUNT).map_err(map_error)?,
            });
        }
        Ok(heads)
    }

    async fn queue_ready(&mut self, queue_id: &QueueId, max_score: i64) -> Result<bool, Error> {
        self.connection
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM runs INDEXED BY runs_in_queue \
                 WHERE queue_id = ? AND queue_score IS NOT NULL AND queue_score <= ?)",
            )
            .and_then(|mut s| s.query_row(params![queue_id.as_str(), max_score], |r| r.get(0)))
            .map_err(map_error)
    }

    async fn queue_lanes(
        &mut self,
        queue_id: &QueueId,
        after: Option<&str>,
        version: Option<&str>,
        max_score: i64,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        // A walk over the lane index that jumps from each key to the next, reading one entry per
        // key however many runs a key has, and passing over the runs locked to another version
        // (the index holds the version, so the walk never reads the table).
        let next = "SELECT concurrency_key FROM runs INDEXED BY runs_in_lane \
                    WHERE queue_id = ?1 AND concurrency_key > {after} AND queue_score IS NOT NULL \
                    AND queue_score <= ?4 AND (version IS NULL OR version = ?5) ORDER BY concurrency_key LIMIT 1";
        let sql = format!(
            "WITH RECURSIVE lane(key, n) AS ( \
               SELECT ({}), 1 \
               UNION ALL SELECT ({}), n + 1 FROM lane WHERE key IS NOT NULL AND n < ?3) \
             SELECT key FROM lane WHERE key IS NOT NULL",
            next.replace("{after}", "?2"),
            next.replace("{after}", "lane.key")
        );
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let keys = statement
            .query_map(params![queue_id.as_str(), after.unwrap_or(""), i64::from(limit), max_score, version], |r| {
                r.get::<_, String>(0)
            })
            .map_err(map_error)?;
        keys.collect::<Result<_, _>>().map_err(map_error)
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
        let (index, in_lane) = match lane {
            Lane::All => ("runs_in_queue", ""),
            Lane::Unkeyed => ("runs_in_lane", "AND concurrency_key IS NULL"),
            Lane::Key(_) => ("runs_in_lane", "AND concurrency_key = ?"),
        };
        // Runs locked to another version are passed over in the walk by score, like runs of
        // other tasks; a NULL version (a worker without one) matches only runs not locked.
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs INDEXED BY {index} \
             WHERE queue_id = ? {in_lane} AND queue_score IS NOT NULL AND queue_score <= ? AND task_id IN ({}) \
             AND (version IS NULL OR version = ?) ORDER BY queue_score, id LIMIT ?",
            placeholders(task_ids.len())
        );
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut params: Vec<rusqlite::types::Value> = vec![queue_id.as_str().to_string().into()];
        if let Lane::Key(key) = lane {
            params.push(key.to_string().into());
        }
        params.push(max_score.into());
        params.extend(task_ids.iter().map(|t| t.clone().into()));
        params.push(version.map(str::to_string).into());
        params.push(i64::from(limit).into());
        let rows = statement.query_map(params_from_iter(params), run_from_row).map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }
}
