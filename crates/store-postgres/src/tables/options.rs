use async_trait::async_trait;
use stint_store::{Error, OptionTable, RequestKeyRow, RunRow};
use stint_types::{EnvId, RunId, Timestamp};

use crate::codec::{get, map_error, to_json, ts_opt};
use crate::tables::rows::{run_from_row, runs_from_rows};
use crate::tx::PgTx;

#[async_trait]
impl OptionTable for PgTx<'_> {
    async fn run_delayed_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE execution_status = 'DELAYED' AND delay_until <= $1 ORDER BY delay_until LIMIT $2"
        ))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        runs_from_rows(&rows)
    }

    async fn run_ttl_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE ttl_expires_at IS NOT NULL AND ttl_expires_at <= $1 ORDER BY ttl_expires_at LIMIT $2"
        ))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        runs_from_rows(&rows)
    }

    async fn run_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        let row = sqlx::query(
            "SELECT least((SELECT min(delay_until) FROM runs WHERE execution_status = 'DELAYED'), \
             (SELECT min(ttl_expires_at) FROM runs WHERE ttl_expires_at IS NOT NULL))",
        )
        .fetch_one(&mut *self.connection)
        .await
        .map_err(map_error)?;
        ts_opt(&row, 0)
    }

    async fn run_by_debounce_key(&mut self, env_id: &EnvId, task_id: &str, key: &str) -> Result<Option<RunRow>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE env_id = $1 AND task_id = $2 AND debounce_key = $3"
        ))
        .bind(env_id.as_str())
        .bind(task_id)
        .bind(key)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn run_forget_debounce_key(&mut self, id: &RunId) -> Result<(), Error> {
        sqlx::query("UPDATE runs SET debounce_key = NULL WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn run_set_input(&mut self, run: &RunRow) -> Result<(), Error> {
        sqlx::query("UPDATE runs SET payload = $1, payload_type = $2, tags = $3, machine = $4 WHERE id = $5")
            .bind(&run.payload)
            .bind(&run.payload_type)
            .bind(to_json(&run.tags))
            .bind(&run.machine)
            .bind(run.id.as_str())
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        sqlx::query("DELETE FROM run_tags WHERE run_id = $1")
            .bind(run.id.as_str())
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        if !run.tags.is_empty() {
            sqlx::query(
                "INSERT INTO run_tags (tag, run_id) SELECT DISTINCT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
            )
            .bind(&run.tags)
            .bind(run.id.as_str())
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        }
        Ok(())
    }

    async fn request_key_get(&mut self, env_id: &EnvId, key: &str) -> Result<Option<RequestKeyRow>, Error> {
        let row =
            sqlx::query("SELECT run_id, cached, expires_at FROM request_keys WHERE env_id = $1 AND request_key = $2")
                .bind(env_id.as_str())
                .bind(key)
                .fetch_optional(&mut *self.connection)
                .await
                .map_err(map_error)?;
        row.map(|row| {
            Ok(RequestKeyRow {
                env_id: env_id.clone(),
                key: key.to_string(),
                run_id: RunId::from_stored(get(&row, 0)?),
                cached: get(&row, 1)?,
                expires_at: Timestamp(get(&row, 2)?),
            })
        })
        .transpose()
    }

    async fn request_key_put(&mut self, row: &RequestKeyRow, now: Timestamp) -> Result<(), Error> {
        // A request in flight with the same key makes this wait for its commit, then find its
        // answer.
        let result = sqlx::query(
            "INSERT INTO request_keys (env_id, request_key, run_id, cached, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (env_id, request_key) DO UPDATE SET run_id = excluded.run_id, cached = excluded.cached, \
             expires_at = excluded.expires_at WHERE request_keys.expires_at <= $6",
        )
        .bind(row.env_id.as_str())
        .bind(&row.key)
        .bind(row.run_id.as_str())
        .bind(row.cached)
        .bind(row.expires_at.0)
        .bind(now.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        if result.rows_affected() == 0 {
            return Err(Error::Duplicate(format!("request key {} has an answer already", row.key)));
        }
        Ok(())
    }

    async fn request_key_purge(&mut self, before: Timestamp, limit: u32) -> Result<u64, Error> {
        sqlx::query(
            "DELETE FROM request_keys WHERE (env_id, request_key) IN \
             (SELECT env_id, request_key FROM request_keys WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(before.0)
        .bind(i64::from(limit))
        .execute(&mut *self.connection)
        .await
        .map(|r| r.rows_affected())
        .map_err(map_error)
    }
}
