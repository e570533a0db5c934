//! Waitpoints, the edges blocking runs on them, runs' journals and named secrets.
//!
//! Lists of ids are bound as one array (`= ANY($1)`). Inserts refuse duplicates with
//! `ON CONFLICT DO NOTHING`, which keeps the transaction usable for the caller to look up the
//! row holding the key.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder};
use stint_store::{Error, JournalRow, WaitpointListParams, WaitpointRow, WaitpointTable};
use stint_types::{BatchId, EnvId, RunId, Timestamp, WaitpointId};

use crate::codec::{big, count, from_json, get, inserted, map_error, parsed, to_json, ts, ts_opt};
use crate::tx::PgTx;

/// Every column of `waitpoints`, in the order [`waitpoint_from_row`] reads them.
macro_rules! waitpoint_columns {
    () => {
        "id, env_id, kind, status, idempotency_key, user_key, idempotency_key_expires_at, inactive_idempotency_key, \
         completed_by_run_id, completed_by_batch_id, completed_after, completed_at, output, output_type, \
         output_is_error, tags, created_at"
    };
}

/// Every column of `run_journal`, in the order [`journal_from_row`] reads them.
macro_rules! journal_columns {
    () => {
        "run_id, seq, kind, name, waitpoint_id, output, child_run_id, batch_id, created_at"
    };
}

fn waitpoint_from_row(r: &PgRow) -> Result<WaitpointRow, Error> {
    Ok(WaitpointRow {
        id: WaitpointId::from_stored(get(r, 0)?),
        env_id: EnvId::from_stored(get(r, 1)?),
        kind: parsed(r, 2)?,
        status: parsed(r, 3)?,
        idempotency_key: get(r, 4)?,
        user_key: get(r, 5)?,
        idempotency_key_expires_at: ts_opt(r, 6)?,
        inactive_idempotency_key: get(r, 7)?,
        completed_by_run_id: get::<Option<String>>(r, 8)?.map(RunId::from_stored),
        completed_by_batch_id: get::<Option<String>>(r, 9)?.map(BatchId::from_stored),
        completed_after: ts_opt(r, 10)?,
        completed_at: ts_opt(r, 11)?,
        output: get(r, 12)?,
        output_type: get(r, 13)?,
        output_is_error: get(r, 14)?,
        tags: from_json(&get::<String>(r, 15)?)?,
        created_at: ts(r, 16)?,
    })
}

fn waitpoints_from_rows(rows: &[PgRow]) -> Result<Vec<WaitpointRow>, Error> {
    rows.iter().map(waitpoint_from_row).collect()
}

fn journal_from_row(r: &PgRow) -> Result<JournalRow, Error> {
    Ok(JournalRow {
        run_id: RunId::from_stored(get(r, 0)?),
        seq: count(r, 1)?,
        kind: parsed(r, 2)?,
        name: get(r, 3)?,
        waitpoint_id: get::<Option<String>>(r, 4)?.map(WaitpointId::from_stored),
        output: get(r, 5)?,
        child_run_id: get::<Option<String>>(r, 6)?.map(RunId::from_stored),
        batch_id: get::<Option<String>>(r, 7)?.map(BatchId::from_stored),
        created_at: ts(r, 8)?,
    })
}

/// Ids as the text array `= ANY($1)` takes.
fn texts<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    ids.map(str::to_string).collect()
}

#[async_trait]
impl WaitpointTable for PgTx<'_> {
    async fn waitpoint_insert(&mut self, row: &WaitpointRow) -> Result<(), Error> {
        let result = sqlx::query(concat!(
            "INSERT INTO waitpoints (",
            waitpoint_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT DO NOTHING"
        ))
        .bind(row.id.as_str())
        .bind(row.env_id.as_str())
        .bind(row.kind.as_str())
        .bind(row.status.as_str())
        .bind(&row.idempotency_key)
        .bind(row.user_key)
        .bind(row.idempotency_key_expires_at.map(|t| t.0))
        .bind(&row.inactive_idempotency_key)
        .bind(row.completed_by_run_id.as_ref().map(RunId::as_str))
        .bind(row.completed_by_batch_id.as_ref().map(BatchId::as_str))
        .bind(row.completed_after.map(|t| t.0))
        .bind(row.completed_at.map(|t| t.0))
        .bind(&row.output)
        .bind(&row.output_type)
        .bind(row.output_is_error)
        .bind(to_json(&row.tags))
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || {
            format!("waitpoint {}, its idempotency key, or its run's or batch's waitpoint exists already", row.id)
        })
    }

    async fn waitpoint_get(&mut self, id: &WaitpointId) -> Result<Option<WaitpointRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", waitpoint_columns!(), " FROM waitpoints WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(waitpoint_from_row).transpose()
    }

    async fn waitpoint_get_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query(concat!("SELECT ", waitpoint_columns!(), " FROM waitpoints WHERE id = ANY($1) ORDER BY id"))
                .bind(texts(ids.iter().map(WaitpointId::as_str)))
                .fetch_all(&mut *self.connection)
                .await
                .map_err(map_error)?;
        waitpoints_from_rows(&rows)
    }

    async fn waitpoint_lock_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Locked in id order, so transactions locking overlapping sets never wait on each other
        // in a cycle; held until the transaction ends, so a completion and a block of a run on
        // the same waitpoint take turns, and the one going second sees what the first wrote.
        let locked =
            concat!("SELECT ", waitpoint_columns!(), " FROM waitpoints WHERE id = ANY($1) ORDER BY id FOR UPDATE");
        let plain = concat!("SELECT ", waitpoint_columns!(), " FROM waitpoints WHERE id = ANY($1) ORDER BY id");
        let rows = sqlx::query(if self.locking { locked } else { plain })
            .bind(texts(ids.iter().map(WaitpointId::as_str)))
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        waitpoints_from_rows(&rows)
    }

    async fn waitpoint_by_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<WaitpointRow>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            waitpoint_columns!(),
            " FROM waitpoints WHERE env_id = $1 AND idempotency_key = $2"
        ))
        .bind(env_id.as_str())
        .bind(key)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(waitpoint_from_row).transpose()
    }

    async fn waitpoint_retire_key(&mut self, id: &WaitpointId, replacement: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE waitpoints SET inactive_idempotency_key = idempotency_key, idempotency_key = $1 WHERE id = $2",
        )
        .bind(replacement)
        .bind(id.as_str())
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn waitpoint_complete(
        &mut self,
        id: &WaitpointId,
        output: Option<&str>,
        output_type: Option<&str>,
        is_error: bool,
        at: Timestamp,
    ) -> Result<bool, Error> {
        // A competing completion holding the row makes this one wait, then re-check the status
        // against the row it committed: exactly one of them completes the waitpoint.
        let result = sqlx::query(
            "UPDATE waitpoints SET status = 'COMPLETED', output = $1, output_type = $2, output_is_error = $3, \
             completed_at = $4 WHERE id = $5 AND status = 'PENDING'",
        )
        .bind(output)
        .bind(output_type)
        .bind(is_error)
        .bind(at.0)
        .bind(id.as_str())
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn waitpoint_list(&mut self, params: &WaitpointListParams) -> Result<Vec<WaitpointRow>, Error> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            waitpoint_columns!(),
            " FROM waitpoints WHERE kind = 'MANUAL'"
        ));
        if let Some(env_id) = &params.env_id {
            query.push(" AND env_id = ").push_bind(env_id.as_str().to_string());
        }
        if let Some(status) = params.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(is_error) = params.is_error {
            query.push(" AND status = 'COMPLETED' AND output_is_error = ").push_bind(is_error);
        }
        if let Some(key) = &params.idempotency_key {
            query.push(" AND user_key AND idempotency_key = ").push_bind(key.clone());
        }
        if !params.tags.is_empty() {
            // Tags are a JSON array of strings: `?|` is true when any of them is in the list.
            query.push(" AND tags::jsonb ?| ").push_bind(params.tags.clone());
        }
        if let Some(from) = params.created_from {
            query.push(" AND created_at >= ").push_bind(from.0);
        }
        if let Some(to) = params.created_to {
            query.push(" AND created_at <= ").push_bind(to.0);
        }
        if let Some(after) = &params.after {
            query.push(" AND id < ").push_bind(after.as_str().to_string());
        }
        if let Some(before) = &params.before {
            query.push(" AND id > ").push_bind(before.as_str().to_string());
        }
        // Ids grow with creation time, so id order is creation order. The previous page is the
        // one nearest the cursor: read it upwards, then flip it.
        let upwards = params.before.is_some() && params.after.is_none();
        query.push(if upwards { " ORDER BY id ASC LIMIT " } else { " ORDER BY id DESC LIMIT " });
        query.push_bind(big(params.limit));
        let rows = query.build().fetch_all(&mut *self.connection).await.map_err(map_error)?;
        let mut found = waitpoints_from_rows(&rows)?;
        if upwards {
            found.reverse();
        }
        Ok(found)
    }

    async fn waitpoint_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<WaitpointRow>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            waitpoint_columns!(),
            " FROM waitpoints WHERE status = 'PENDING' AND completed_after IS NOT NULL AND completed_after <= $1 \
             AND kind IN ('DATETIME', 'MANUAL') ORDER BY completed_after, id LIMIT $2"
        ))
        .bind(now.0)
        .bind(big(limit))
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        waitpoints_from_rows(&rows)
    }

    async fn waitpoint_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        // The same waitpoints as `waitpoint_due`, so a time given here always finds one there.
        let row = sqlx::query(
            "SELECT completed_after FROM waitpoints WHERE status = 'PENDING' AND completed_after IS NOT NULL \
             AND kind IN ('DATETIME', 'MANUAL') ORDER BY completed_after LIMIT 1",
        )
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(|r| ts(r, 0)).transpose()
    }

    async fn waitpoint_pending_for_runs(&mut self, run_ids: &[RunId]) -> Result<Vec<WaitpointRow>, Error> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            waitpoint_columns!(),
            " FROM waitpoints WHERE completed_by_run_id = ANY($1) AND kind = 'RUN' AND status = 'PENDING' \
             ORDER BY id"
        ))
        .bind(texts(run_ids.iter().map(RunId::as_str)))
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        waitpoints_from_rows(&rows)
    }

    async fn waitpoint_pending_for_batches(&mut self, batch_ids: &[BatchId]) -> Result<Vec<WaitpointRow>, Error> {
        if batch_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            waitpoint_columns!(),
            " FROM waitpoints WHERE completed_by_batch_id = ANY($1) AND kind = 'BATCH' AND status = 'PENDING' \
             ORDER BY id"
        ))
        .bind(texts(batch_ids.iter().map(BatchId::as_str)))
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        waitpoints_from_rows(&rows)
    }

    async fn waitpoint_of_run(&mut self, run_id: &RunId) -> Result<Option<WaitpointRow>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            waitpoint_columns!(),
            " FROM waitpoints WHERE completed_by_run_id = $1 AND kind = 'RUN'"
        ))
        .bind(run_id.as_str())
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(waitpoint_from_row).transpose()
    }

    async fn waitpoint_block(
        &mut self,
        run_id: &RunId,
        waitpoint_ids: &[WaitpointId],
        at: Timestamp,
    ) -> Result<(), Error> {
        if waitpoint_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO run_waitpoints (run_id, waitpoint_id, created_at) \
             SELECT $1, w, $3 FROM (SELECT DISTINCT unnest($2::text[]) AS w) AS ids ORDER BY w \
             ON CONFLICT DO NOTHING",
        )
        .bind(run_id.as_str())
        .bind(texts(waitpoint_ids.iter().map(WaitpointId::as_str)))
        .bind(at.0)
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn waitpoint_blocked_runs(&mut self, waitpoint_ids: &[WaitpointId]) -> Result<Vec<RunId>, Error> {
        if waitpoint_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT DISTINCT run_id FROM run_waitpoints WHERE waitpoint_id = ANY($1) ORDER BY run_id")
                .bind(texts(waitpoint_ids.iter().map(WaitpointId::as_str)))
                .fetch_all(&mut *self.connection)
                .await
                .map_err(map_error)?;
        rows.iter().map(|row| get::<String>(row, 0).map(RunId::from_stored)).collect()
    }

    async fn waitpoint_pending_count(&mut self, run_id: &RunId) -> Result<u32, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM run_waitpoints e JOIN waitpoints w ON w.id = e.waitpoint_id \
             WHERE e.run_id = $1 AND w.status = 'PENDING'",
        )
        .bind(run_id.as_str())
        .fetch_one(&mut *self.connection)
        .await
        .map_err(map_error)?;
        count(&row, 0)
    }

    async fn waitpoint_unblock(&mut self, run_id: &RunId) -> Result<(), Error> {
        sqlx::query("DELETE FROM run_waitpoints WHERE run_id = $1")
            .bind(run_id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn batch_unfinished(&mut self, batch_id: &BatchId) -> Result<u32, Error> {
        let row = sqlx::query("SELECT COUNT(*) FROM runs WHERE batch_id = $1 AND finished_at IS NULL")
            .bind(batch_id.as_str())
            .fetch_one(&mut *self.connection)
            .await
            .map_err(map_error)?;
        count(&row, 0)
    }

    async fn journal_insert(&mut self, row: &JournalRow) -> Result<(), Error> {
        let result = sqlx::query(concat!(
            "INSERT INTO run_journal (",
            journal_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
        ))
        .bind(row.run_id.as_str())
        .bind(big(row.seq))
        .bind(row.kind.as_str())
        .bind(&row.name)
        .bind(row.waitpoint_id.as_ref().map(WaitpointId::as_str))
        .bind(&row.output)
        .bind(row.child_run_id.as_ref().map(RunId::as_str))
        .bind(row.batch_id.as_ref().map(BatchId::as_str))
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("entry {} of the journal of run {} exists already", row.seq, row.run_id))
    }

    async fn journal_list(&mut self, run_id: &RunId) -> Result<Vec<JournalRow>, Error> {
        let rows =
            sqlx::query(concat!("SELECT ", journal_columns!(), " FROM run_journal WHERE run_id = $1 ORDER BY seq"))
                .bind(run_id.as_str())
                .fetch_all(&mut *self.connection)
                .await
                .map_err(map_error)?;
        rows.iter().map(journal_from_row).collect()
    }

    async fn secret_get_or_insert(&mut self, name: &str, value: &str) -> Result<String, Error> {
        // A node racing to store another value waits for the first insert's transaction and then
        // inserts nothing; the read that follows, a statement of its own under READ COMMITTED,
        // sees the value committed first.
        sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        let row = sqlx::query("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *self.connection)
            .await
            .map_err(map_error)?;
        get(&row, 0)
    }
}
