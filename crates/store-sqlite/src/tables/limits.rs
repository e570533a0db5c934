use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use stint_store::{EnvLimits, Error, LimitTable};
use stint_types::{EnvId, QueueId};

use crate::codec::{count, map_error, total};
use crate::tx::SqliteTx;

#[async_trait]
impl LimitTable for SqliteTx<'_> {
    async fn env_limits(&mut self, env_id: &EnvId) -> Result<Option<EnvLimits>, Error> {
        let limits = self
            .connection
            .prepare_cached("SELECT concurrency_limit, burst_factor, paused FROM environments WHERE id = ?")
            .and_then(|mut s| {
                s.query_row([env_id.as_str()], |r| {
                    Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, f64>(1)?, r.get::<_, bool>(2)?))
                })
                .optional()
            })
            .map_err(map_error)?;
        limits
            .map(|(limit, burst_factor, paused)| {
                Ok(EnvLimits { concurrency_limit: limit.map(count).transpose()?, burst_factor, paused })
            })
            .transpose()
    }

    async fn env_lock(&mut self, env_id: &EnvId) -> Result<Option<EnvLimits>, Error> {
        // The single writer already serialises write transactions: reading is locking.
        self.env_limits(env_id).await
    }

    async fn env_set_limits(&mut self, env_id: &EnvId, limits: &EnvLimits) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE environments SET concurrency_limit = ?, burst_factor = ?, paused = ? WHERE id = ?")
            .and_then(|mut s| {
                s.execute(params![limits.concurrency_limit, limits.burst_factor, limits.paused, env_id.as_str()])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn env_running(&mut self, env_id: &EnvId) -> Result<u64, Error> {
        self.connection
            .prepare_cached("SELECT COALESCE(SUM(running), 0) FROM queues WHERE env_id = ?")
            .and_then(|mut s| s.query_row([env_id.as_str()], |r| r.get(0)))
            .map_err(map_error)
            .and_then(total)
    }

    async fn lane_running(&mut self, queue_id: &QueueId) -> Result<Vec<(String, u32)>, Error> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT concurrency_key, running FROM lane_slots WHERE queue_id = ?")
            .map_err(map_error)?;
        let mut rows = statement.query([queue_id.as_str()]).map_err(map_error)?;
        let mut lanes = Vec::new();
        while let Some(row) = rows.next().map_err(map_error)? {
            lanes.push((row.get(0).map_err(map_error)?, count(row.get(1).map_err(map_error)?)?));
        }
        Ok(lanes)
    }

    async fn lane_add_running(&mut self, queue_id: &QueueId, key: &str, delta: i64) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "INSERT INTO lane_slots (queue_id, concurrency_key, running) VALUES (?1, ?2, max(0, ?3)) \
                 ON CONFLICT (queue_id, concurrency_key) DO UPDATE SET running = max(0, running + ?3)",
            )
            .and_then(|mut s| s.execute(params![queue_id.as_str(), key, delta]))
            .map_err(map_error)?;
        if delta >= 0 {
            return Ok(());
        }
        // A key with no running run keeps no row, so a queue's rows are its running keys.
        self.connection
            .prepare_cached("DELETE FROM lane_slots WHERE queue_id = ? AND concurrency_key = ? AND running = 0")
            .and_then(|mut s| s.execute(params![queue_id.as_str(), key]))
            .map(drop)
            .map_err(map_error)
    }
}
