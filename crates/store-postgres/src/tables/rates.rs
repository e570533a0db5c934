use async_trait::async_trait;
use stint_store::{Error, RateLimit, RateOverride, RateTable};
use stint_types::QueueId;

use crate::codec::{big_opt, get, map_error};
use crate::tx::PgTx;

/// A period as stored: periods are checked far below `i64::MAX` ms before they get here.
pub(crate) fn period(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[async_trait]
impl RateTable for PgTx<'_> {
    async fn rate_set_declared(&mut self, queue_id: &QueueId, rate: Option<RateLimit>) -> Result<(), Error> {
        sqlx::query("UPDATE queues SET rate_limit = $1, rate_period_ms = $2, rate_per_key = $3 WHERE id = $4")
            .bind(big_opt(rate.map(|r| r.limit)))
            .bind(rate.map(|r| period(r.period_ms)))
            .bind(rate.map(|r| r.per_key))
            .bind(queue_id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn rate_set_override(&mut self, queue_id: &QueueId, rate: Option<RateOverride>) -> Result<(), Error> {
        sqlx::query(
            "UPDATE queues SET rate_override_limit = $1, rate_override_period_ms = $2, rate_override_per_key = $3, \
             rate_overridden_at = $4 WHERE id = $5",
        )
        .bind(big_opt(rate.map(|o| o.rate.limit)))
        .bind(rate.map(|o| period(o.rate.period_ms)))
        .bind(rate.map(|o| o.rate.per_key))
        .bind(rate.map(|o| o.at.0))
        .bind(queue_id.as_str())
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn rate_tats(&mut self, queue_id: &QueueId, lanes: &[&str]) -> Result<Vec<(String, i64)>, Error> {
        if lanes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT concurrency_key, tat_us FROM rate_slots WHERE queue_id = $1 AND concurrency_key = ANY($2)",
        )
        .bind(queue_id.as_str())
        .bind(lanes)
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
    }

    async fn rate_set_tats(&mut self, queue_id: &QueueId, tats: &[(&str, i64)]) -> Result<(), Error> {
        if tats.is_empty() {
            return Ok(());
        }
        // In key order, so that transactions writing several rows never wait on each other in a
        // cycle (a queue's rows are written under its lock anyway).
        let mut sorted = tats.to_vec();
        sorted.sort();
        let lanes: Vec<&str> = sorted.iter().map(|(lane, _)| *lane).collect();
        let times: Vec<i64> = sorted.iter().map(|(_, tat)| *tat).collect();
        sqlx::query(
            "INSERT INTO rate_slots (queue_id, concurrency_key, tat_us) \
             SELECT $1, lane, tat FROM unnest($2::text[], $3::bigint[]) AS t(lane, tat) \
             ON CONFLICT (queue_id, concurrency_key) DO UPDATE SET tat_us = EXCLUDED.tat_us",
        )
        .bind(queue_id.as_str())
        .bind(&lanes)
        .bind(&times)
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn rate_prune(&mut self, queue_id: &QueueId, before: i64, limit: u32) -> Result<u64, Error> {
        // The time is checked again on the row deleted: a row another transaction moved forward
        // after this one listed it stays.
        let result = sqlx::query(
            "DELETE FROM rate_slots WHERE queue_id = $1 AND tat_us <= $2 AND concurrency_key IN \
             (SELECT concurrency_key FROM rate_slots WHERE queue_id = $1 AND tat_us <= $2 LIMIT $3)",
        )
        .bind(queue_id.as_str())
        .bind(before)
        .bind(i64::from(limit))
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        Ok(result.rows_affected())
    }
}
