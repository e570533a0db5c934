use async_trait::async_trait;
use rusqlite::{params, params_from_iter};
use stint_store::{Error, RateLimit, RateOverride, RateTable};
use stint_types::QueueId;

use crate::codec::map_error;
use crate::tx::{SqliteTx, placeholders};

/// Most lanes read in one statement, well under SQLite's limit on parameters.
const LANES_PER_READ: usize = 500;

/// A period as stored: periods are checked far below `i64::MAX` ms before they get here.
pub(crate) fn period(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[async_trait]
impl RateTable for SqliteTx<'_> {
    async fn rate_set_declared(&mut self, queue_id: &QueueId, rate: Option<RateLimit>) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE queues SET rate_limit = ?, rate_period_ms = ?, rate_per_key = ? WHERE id = ?")
            .and_then(|mut s| {
                s.execute(params![
                    rate.map(|r| r.limit),
                    rate.map(|r| period(r.period_ms)),
                    rate.map(|r| r.per_key),
                    queue_id.as_str()
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn rate_set_override(&mut self, queue_id: &QueueId, rate: Option<RateOverride>) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "UPDATE queues SET rate_override_limit = ?, rate_override_period_ms = ?, rate_override_per_key = ?, \
                 rate_overridden_at = ? WHERE id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    rate.map(|o| o.rate.limit),
                    rate.map(|o| period(o.rate.period_ms)),
                    rate.map(|o| o.rate.per_key),
                    rate.map(|o| o.at.0),
                    queue_id.as_str()
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn rate_tats(&mut self, queue_id: &QueueId, lanes: &[&str]) -> Result<Vec<(String, i64)>, Error> {
        let mut tats = Vec::new();
        for chunk in lanes.chunks(LANES_PER_READ) {
            let sql = format!(
                "SELECT concurrency_key, tat_us FROM rate_slots WHERE queue_id = ? AND concurrency_key IN ({})",
                placeholders(chunk.len())
            );
            let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
            let values = std::iter::once(queue_id.as_str()).chain(chunk.iter().copied());
            let mut rows = statement.query(params_from_iter(values)).map_err(map_error)?;
            while let Some(row) = rows.next().map_err(map_error)? {
                tats.push((row.get(0).map_err(map_error)?, row.get(1).map_err(map_error)?));
            }
        }
        Ok(tats)
    }

    async fn rate_set_tats(&mut self, queue_id: &QueueId, tats: &[(&str, i64)]) -> Result<(), Error> {
        let mut statement = self
            .connection
            .prepare_cached(
                "INSERT INTO rate_slots (queue_id, concurrency_key, tat_us) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (queue_id, concurrency_key) DO UPDATE SET tat_us = excluded.tat_us",
            )
            .map_err(map_error)?;
        for (lane, tat) in tats {
            statement.execute(params![queue_id.as_str(), lane, tat]).map_err(map_error)?;
        }
        Ok(())
    }

    async fn rate_prune(&mut self, queue_id: &QueueId, before: i64, limit: u32) -> Result<u64, Error> {
        let deleted = self
            .connection
            .prepare_cached(
                "DELETE FROM rate_slots WHERE queue_id = ?1 AND concurrency_key IN \
                 (SELECT concurrency_key FROM rate_slots WHERE queue_id = ?1 AND tat_us <= ?2 LIMIT ?3)",
            )
            .and_then(|mut s| s.execute(params![queue_id.as_str(), before, limit]))
            .map_err(map_error)?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}
