use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use stint_store::{Error, OptionTable, RequestKeyRow, RunRow};
use stint_types::{EnvId, RunId, Timestamp};

use crate::codec::{map_error, to_json, ts};
use crate::tables::runs::{RUN_COLUMNS, run_from_row};
use crate::tx::SqliteTx;

impl SqliteTx<'_> {
    fn runs_where(&mut self, condition: &str, values: (i64, u32)) -> Result<Vec<RunRow>, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE {condition}");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement.query_map(params![values.0, values.1], run_from_row).map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }
}

#[async_trait]
impl OptionTable for SqliteTx<'_> {
    async fn run_delayed_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error> {
        self.runs_where(
            "execution_status = 'DELAYED' AND delay_until <= ? ORDER BY delay_until LIMIT ?",
            (now.0, limit),
        )
    }

    async fn run_ttl_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error> {
        self.runs_where(
            "ttl_expires_at IS NOT NULL AND ttl_expires_at <= ? ORDER BY ttl_expires_at LIMIT ?",
            (now.0, limit),
        )
    }

    async fn run_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        self.connection
            .prepare_cached(
                "SELECT min(due) FROM (SELECT min(delay_until) AS due FROM runs WHERE execution_status = 'DELAYED' \
                 UNION ALL SELECT min(ttl_expires_at) FROM runs WHERE ttl_expires_at IS NOT NULL)",
            )
            .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
            .map(ts)
            .map_err(map_error)
    }

    async fn run_by_debounce_key(&mut self, env_id: &EnvId, task_id: &str, key: &str) -> Result<Option<RunRow>, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE env_id = ? AND task_id = ? AND debounce_key = ?");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(params![env_id.as_str(), task_id, key], run_from_row).optional())
            .map_err(map_error)
    }

    async fn run_forget_debounce_key(&mut self, id: &RunId) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE runs SET debounce_key = NULL WHERE id = ?")
            .and_then(|mut s| s.execute([id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn run_set_input(&mut self, run: &RunRow) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE runs SET payload = ?, payload_type = ?, tags = ?, machine = ? WHERE id = ?")
            .and_then(|mut s| {
                s.execute(params![run.payload, run.payload_type, to_json(&run.tags), run.machine, run.id.as_str()])
            })
            .map_err(map_error)?;
        self.connection
            .prepare_cached("DELETE FROM run_tags WHERE run_id = ?")
            .and_then(|mut s| s.execute([run.id.as_str()]))
            .map_err(map_error)?;
        for tag in &run.tags {
            self.connection
                .prepare_cached("INSERT OR IGNORE INTO run_tags (tag, run_id) VALUES (?, ?)")
                .and_then(|mut s| s.execute(params![tag, run.id.as_str()]))
                .map_err(map_error)?;
        }
        Ok(())
    }

    async fn request_key_get(&mut self, env_id: &EnvId, key: &str) -> Result<Option<RequestKeyRow>, Error> {
        self.connection
            .prepare_cached("SELECT run_id, cached, expires_at FROM request_keys WHERE env_id = ? AND request_key = ?")
            .and_then(|mut s| {
                s.query_row(params![env_id.as_str(), key], |r| {
                    Ok(RequestKeyRow {
                        env_id: env_id.clone(),
                        key: key.to_string(),
                        run_id: RunId::from_stored(r.get(0)?),
                        cached: r.get(1)?,
                        expires_at: Timestamp(r.get(2)?),
                    })
                })
                .optional()
            })
            .map_err(map_error)
    }

    async fn request_key_put(&mut self, row: &RequestKeyRow, now: Timestamp) -> Result<(), Error> {
        let changed = self
            .connection
            .prepare_cached(
                "INSERT INTO request_keys (env_id, request_key, run_id, cached, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (env_id, request_key) DO UPDATE SET run_id = excluded.run_id, cached = excluded.cached, \
                 expires_at = excluded.expires_at WHERE request_keys.expires_at <= ?6",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.env_id.as_str(),
                    row.key,
                    row.run_id.as_str(),
                    row.cached,
                    row.expires_at.0,
                    now.0,
                ])
            })
            .map_err(map_error)?;
        if changed == 0 {
            return Err(Error::Duplicate(format!("request key {} has an answer already", row.key)));
        }
        Ok(())
    }

    async fn request_key_purge(&mut self, before: Timestamp, limit: u32) -> Result<u64, Error> {
        self.connection
            .prepare_cached(
                "DELETE FROM request_keys WHERE (env_id, request_key) IN \
                 (SELECT env_id, request_key FROM request_keys WHERE expires_at < ? LIMIT ?)",
            )
            .and_then(|mut s| s.execute(params![before.0, limit]))
            .map(|n| n as u64)
            .map_err(map_error)
    }
}
