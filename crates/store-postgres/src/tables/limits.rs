use async_trait::async_trait;
use sqlx::postgres::PgRow;
use stint_store::{EnvLimits, Error, LimitTable};
use stint_types::{EnvId, QueueId};

use crate::codec::{big_opt, count, count_opt, get, map_error, total};
use crate::tx::PgTx;

fn limits_from_row(r: &PgRow) -> Result<EnvLimits, Error> {
    Ok(EnvLimits { concurrency_limit: count_opt(r, 0)?, burst_factor: get(r, 1)?, paused: get(r, 2)? })
}

#[async_trait]
impl LimitTable for PgTx<'_> {
    async fn env_limits(&mut self, env_id: &EnvId) -> Result<Option<EnvLimits>, Error> {
        let row = sqlx::query("SELECT concurrency_limit, burst_factor, paused FROM environments WHERE id = $1")
            .bind(env_id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(limits_from_row).transpose()
    }

    async fn env_lock(&mut self, env_id: &EnvId) -> Result<Option<EnvLimits>, Error> {
        // Held until the transaction ends: another transaction taking slots in the environment
        // waits, then sums the running counts this one committed.
        let locked = "SELECT concurrency_limit, burst_factor, paused FROM environments WHERE id = $1 FOR UPDATE";
        let plain = "SELECT concurrency_limit, burst_factor, paused FROM environments WHERE id = $1";
        let row = sqlx::query(if self.locking { locked } else { plain })
            .bind(env_id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(limits_from_row).transpose()
    }

    async fn env_set_limits(&mut self, env_id: &EnvId, limits: &EnvLimits) -> Result<(), Error> {
        sqlx::query("UPDATE environments SET concurrency_limit = $1, burst_factor = $2, paused = $3 WHERE id = $4")
            .bind(big_opt(limits.concurrency_limit))
            .bind(limits.burst_factor)
            .bind(limits.paused)
            .bind(env_id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn env_running(&mut self, env_id: &EnvId) -> Result<u64, Error> {
        let row = sqlx::query("SELECT COALESCE(SUM(running), 0)::BIGINT FROM queues WHERE env_id = $1")
            .bind(env_id.as_str())
            .fetch_one(&mut *self.connection)
            .await
            .map_err(map_error)?;
        total(&row, 0)
    }

    async fn lane_running(&mut self, queue_id: &QueueId) -> Result<Vec<(String, u32)>, Error> {
        let rows = sqlx::query("SELECT concurrency_key, running FROM lane_slots WHERE queue_id = $1")
            .bind(queue_id.as_str())
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        rows.iter().map(|r| Ok((get(r, 0)?, count(r, 1)?))).collect()
    }

    async fn lane_add_running(&mut self, queue_id: &QueueId, key: &str, delta: i64) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO lane_slots (queue_id, concurrency_key, running) VALUES ($1, $2, GREATEST(0, $3)) \
             ON CONFLICT (queue_id, concurrency_key) DO UPDATE SET running = GREATEST(0, lane_slots.running + $3)",
        )
        .bind(queue_id.as_str())
        .bind(key)
        .bind(delta)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        if delta >= 0 {
            return Ok(());
        }
        // A key with no running run keeps no row, so a queue's rows are its running keys.
        sqlx::query("DELETE FROM lane_slots WHERE queue_id = $1 AND concurrency_key = $2 AND running = 0")
            .bind(queue_id.as_str())
            .bind(key)
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }
}
