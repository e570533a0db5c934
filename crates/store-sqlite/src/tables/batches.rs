use async_trait::async_trait;
use rusqlite::{Row, params};
use stint_store::{BatchItemRow, BatchRow, BatchTable, Error};
use stint_types::{BatchId, EnvId, RunId, Timestamp};

use crate::codec::{count, map_error, parse, ts};
use crate::tx::SqliteTx;

/// Every column of `batches`, in the order [`batch_from_row`] reads them.
const BATCH_COLUMNS: &str =
    "id, env_id, run_count, items_received, idempotency_key, status, created_at, updated_at, sealed_at";

fn batch_from_row(r: &Row<'_>) -> Result<BatchRow, Error> {
    Ok(BatchRow {
        id: BatchId::from_stored(r.get(0).map_err(map_error)?),
        env_id: EnvId::from_stored(r.get(1).map_err(map_error)?),
        run_count: count(r.get(2).map_err(map_error)?)?,
        items_received: count(r.get(3).map_err(map_error)?)?,
        idempotency_key: r.get(4).map_err(map_error)?,
        status: parse(&r.get::<_, String>(5).map_err(map_error)?)?,
        created_at: Timestamp(r.get(6).map_err(map_error)?),
        updated_at: Timestamp(r.get(7).map_err(map_error)?),
        sealed_at: ts(r.get(8).map_err(map_error)?),
    })
}

impl SqliteTx<'_> {
    fn batch_where(&mut self, clause: &str, values: impl rusqlite::Params) -> Result<Option<BatchRow>, Error> {
        let sql = format!("SELECT {BATCH_COLUMNS} FROM batches WHERE {clause}");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query(values).map_err(map_error)?;
        rows.next().map_err(map_error)?.map(batch_from_row).transpose()
    }
}

#[async_trait]
impl BatchTable for SqliteTx<'_> {
    async fn batch_insert(&mut self, row: &BatchRow) -> Result<(), Error> {
        let sql = format!("INSERT INTO batches ({BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.env_id.as_str(),
                    row.run_count,
                    row.items_received,
                    row.idempotency_key,
                    row.status.as_str(),
                    row.created_at.0,
                    row.updated_at.0,
                    row.sealed_at.map(|t| t.0),
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn batch_get(&mut self, id: &BatchId) -> Result<Option<BatchRow>, Error> {
        self.batch_where("id = ?", [id.as_str()])
    }

    async fn batch_lock(&mut self, id: &BatchId) -> Result<Option<BatchRow>, Error> {
        // The single writer already serialises write transactions: reading is locking.
        self.batch_get(id).await
    }

    async fn batch_by_idempotency_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<BatchRow>, Error> {
        self.batch_where("env_id = ? AND idempotency_key = ?", params![env_id.as_str(), key])
    }

    async fn batch_update(&mut self, row: &BatchRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "UPDATE batches SET items_received = ?, status = ?, updated_at = ?, sealed_at = ? WHERE id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.items_received,
                    row.status.as_str(),
                    row.updated_at.0,
                    row.sealed_at.map(|t| t.0),
                    row.id.as_str()
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn batch_item_insert(&mut self, batch_id: &BatchId, index: u32, run_id: &RunId) -> Result<(), Error> {
        self.connection
            .prepare_cached("INSERT INTO batch_items (batch_id, batch_index, run_id) VALUES (?, ?, ?)")
            .and_then(|mut s| s.execute(params![batch_id.as_str(), index, run_id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn batch_indexes(&mut self, batch_id: &BatchId) -> Result<Vec<u32>, Error> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT batch_index FROM runs WHERE batch_id = ?1 \
                 UNION ALL SELECT batch_index FROM batch_items WHERE batch_id = ?1",
            )
            .map_err(map_error)?;
        let rows = statement.query_map([batch_id.as_str()], |r| r.get::<_, i64>(0)).map_err(map_error)?;
        rows.map(|index| count(index.map_err(map_error)?)).collect()
    }

    async fn batch_items(&mut self, batch_id: &BatchId) -> Result<Vec<BatchItemRow>, Error> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT batch_index, id, task_id, status, finished_at FROM runs WHERE batch_id = ?1 \
                 UNION ALL \
                 SELECT i.batch_index, r.id, r.task_id, r.status, r.finished_at \
                 FROM batch_items i JOIN runs r ON r.id = i.run_id WHERE i.batch_id = ?1 \
                 ORDER BY 1",
            )
            .map_err(map_error)?;
        let mut rows = statement.query([batch_id.as_str()]).map_err(map_error)?;
        let mut items = Vec::new();
        while let Some(r) = rows.next().map_err(map_error)? {
            items.push(BatchItemRow {
                index: count(r.get(0).map_err(map_error)?)?,
                run_id: RunId::from_stored(r.get(1).map_err(map_error)?),
                task_id: r.get(2).map_err(map_error)?,
                status: parse(&r.get::<_, String>(3).map_err(map_error)?)?,
                finished_at: ts(r.get(4).map_err(map_error)?),
            });
        }
        Ok(items)
    }
}
