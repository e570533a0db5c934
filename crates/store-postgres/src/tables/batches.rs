use async_trait::async_trait;
use sqlx::postgres::PgRow;
use stint_store::{BatchItemRow, BatchRow, BatchTable, Error};
use stint_types::{BatchId, EnvId, RunId};

use crate::codec::{big, count, get, inserted, map_error, parsed, ts, ts_opt};
use crate::tx::PgTx;

/// Every column of `batches`, in the order [`batch_from_row`] reads them.
macro_rules! batch_columns {
    () => {
        "id, env_id, run_count, items_received, idempotency_key, status, created_at, updated_at, sealed_at"
    };
}

fn batch_from_row(r: &PgRow) -> Result<BatchRow, Error> {
    Ok(BatchRow {
        id: BatchId::from_stored(get(r, 0)?),
        env_id: EnvId::from_stored(get(r, 1)?),
        run_count: count(r, 2)?,
        items_received: count(r, 3)?,
        idempotency_key: get(r, 4)?,
        status: parsed(r, 5)?,
        created_at: ts(r, 6)?,
        updated_at: ts(r, 7)?,
        sealed_at: ts_opt(r, 8)?,
    })
}

#[async_trait]
impl BatchTable for PgTx<'_> {
    async fn batch_insert(&mut self, row: &BatchRow) -> Result<(), Error> {
        let result = sqlx::query(concat!(
            "INSERT INTO batches (",
            batch_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
        ))
        .bind(row.id.as_str())
        .bind(row.env_id.as_str())
        .bind(big(row.run_count))
        .bind(big(row.items_received))
        .bind(&row.idempotency_key)
        .bind(row.status.as_str())
        .bind(row.created_at.0)
        .bind(row.updated_at.0)
        .bind(row.sealed_at.map(|t| t.0))
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("batch {} or its idempotency key exists already", row.id))
    }

    async fn batch_get(&mut self, id: &BatchId) -> Result<Option<BatchRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", batch_columns!(), " FROM batches WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(batch_from_row).transpose()
    }

    async fn batch_lock(&mut self, id: &BatchId) -> Result<Option<BatchRow>, Error> {
        // Held until the transaction ends: another transaction adding items to the batch waits,
        // then sees the items this one committed.
        let locked = concat!("SELECT ", batch_columns!(), " FROM batches WHERE id = $1 FOR UPDATE");
        let plain = concat!("SELECT ", batch_columns!(), " FROM batches WHERE id = $1");
        let row = sqlx::query(if self.locking { locked } else { plain })
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(batch_from_row).transpose()
    }

    async fn batch_by_idempotency_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<BatchRow>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            batch_columns!(),
            " FROM batches WHERE env_id = $1 AND idempotency_key = $2"
        ))
        .bind(env_id.as_str())
        .bind(key)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(batch_from_row).transpose()
    }

    async fn batch_update(&mut self, row: &BatchRow) -> Result<(), Error> {
        sqlx::query(
            "UPDATE batches SET items_received = $1, status = $2, updated_at = $3, sealed_at = $4 WHERE id = $5",
        )
        .bind(big(row.items_received))
        .bind(row.status.as_str())
        .bind(row.updated_at.0)
        .bind(row.sealed_at.map(|t| t.0))
        .bind(row.id.as_str())
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn batch_item_insert(&mut self, batch_id: &BatchId, index: u32, run_id: &RunId) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO batch_items (batch_id, batch_index, run_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(batch_id.as_str())
        .bind(big(index))
        .bind(run_id.as_str())
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("item {index} of batch {batch_id} exists already"))
    }

    async fn batch_indexes(&mut self, batch_id: &BatchId) -> Result<Vec<u32>, Error> {
        let rows = sqlx::query(
            "SELECT batch_index FROM runs WHERE batch_id = $1 \
             UNION ALL SELECT batch_index FROM batch_items WHERE batch_id = $1",
        )
        .bind(batch_id.as_str())
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter().map(|row| count(row, 0)).collect()
    }

    async fn batch_items(&mut self, batch_id: &BatchId) -> Result<Vec<BatchItemRow>, Error> {
        let rows = sqlx::query(
            "SELECT batch_index, id, task_id, status, finished_at FROM runs WHERE batch_id = $1 \
             UNION ALL \
             SELECT i.batch_index, r.id, r.task_id, r.status, r.finished_at \
             FROM batch_items i JOIN runs r ON r.id = i.run_id WHERE i.batch_id = $1 \
             ORDER BY 1",
        )
        .bind(batch_id.as_str())
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter()
            .map(|r| {
                Ok(BatchItemRow {
                    index: count(r, 0)?,
                    run_id: RunId::from_stored(get(r, 1)?),
                    task_id: get(r, 2)?,
                    status: parsed(r, 3)?,
                    finished_at: ts_opt(r, 4)?,
                })
            })
            .collect()
    }
}
