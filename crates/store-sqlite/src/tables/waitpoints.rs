//! Waitpoints, the edges blocking runs on them, runs' journals and named secrets.
//!
//! Lists of ids are bound as one JSON array and read back with `json_each`, so each statement is
//! prepared once whatever the length of the list.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use stint_store::{Error, JournalRow, WaitpointListParams, WaitpointRow, WaitpointTable};
use stint_types::{BatchId, EnvId, RunId, Timestamp, WaitpointId};

use crate::codec::{count, from_json, map_error, parse, to_json, ts};
use crate::tx::SqliteTx;

/// Every column of `waitpoints`, in the order [`waitpoint_from_row`] reads them.
const WAITPOINT_COLUMNS: &str = "id, env_id, kind, status, idempotency_key, user_key, idempotency_key_expires_at, \
    inactive_idempotency_key, completed_by_run_id, completed_by_batch_id, completed_after, completed_at, output, \
    output_type, output_is_error, tags, created_at";

/// Every column of `run_journal`, in the order [`journal_from_row`] reads them.
const JOURNAL_COLUMNS: &str = "run_id, seq, kind, name, waitpoint_id, output, child_run_id, batch_id, created_at";

fn waitpoint_from_row(r: &Row<'_>) -> Result<WaitpointRow, Error> {
    Ok(WaitpointRow {
        id: WaitpointId::from_stored(r.get(0).map_err(map_error)?),
        env_id: EnvId::from_stored(r.get(1).map_err(map_error)?),
        kind: parse(&r.get::<_, String>(2).map_err(map_error)?)?,
        status: parse(&r.get::<_, String>(3).map_err(map_error)?)?,
        idempotency_key: r.get(4).map_err(map_error)?,
        user_key: r.get(5).map_err(map_error)?,
        idempotency_key_expires_at: ts(r.get(6).map_err(map_error)?),
        inactive_idempotency_key: r.get(7).map_err(map_error)?,
        completed_by_run_id: r.get::<_, Option<String>>(8).map_err(map_error)?.map(RunId::from_stored),
        completed_by_batch_id: r.get::<_, Option<String>>(9).map_err(map_error)?.map(BatchId::from_stored),
        completed_after: ts(r.get(10).map_err(map_error)?),
        completed_at: ts(r.get(11).map_err(map_error)?),
        output: r.get(12).map_err(map_error)?,
        output_type: r.get(13).map_err(map_error)?,
        output_is_error: r.get(14).map_err(map_error)?,
        tags: from_json(&r.get::<_, String>(15).map_err(map_error)?)?,
        created_at: Timestamp(r.get(16).map_err(map_error)?),
    })
}

fn journal_from_row(r: &Row<'_>) -> Result<JournalRow, Error> {
    Ok(JournalRow {
        run_id: RunId::from_stored(r.get(0).map_err(map_error)?),
        seq: count(r.get(1).map_err(map_error)?)?,
        kind: parse(&r.get::<_, String>(2).map_err(map_error)?)?,
        name: r.get(3).map_err(map_error)?,
        waitpoint_id: r.get::<_, Option<String>>(4).map_err(map_error)?.map(WaitpointId::from_stored),
        output: r.get(5).map_err(map_error)?,
        child_run_id: r.get::<_, Option<String>>(6).map_err(map_error)?.map(RunId::from_stored),
        batch_id: r.get::<_, Option<String>>(7).map_err(map_error)?.map(BatchId::from_stored),
        created_at: Timestamp(r.get(8).map_err(map_error)?),
    })
}

/// A list of ids as the JSON array text `json_each` reads.
fn id_list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    to_json(&ids.collect::<Vec<_>>())
}

impl SqliteTx<'_> {
    fn waitpoints_where(&mut self, clause: &str, values: impl rusqlite::Params) -> Result<Vec<WaitpointRow>, Error> {
        let sql = format!("SELECT {WAITPOINT_COLUMNS} FROM waitpoints WHERE {clause}");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query(values).map_err(map_error)?;
        let mut found = Vec::new();
        while let Some(r) = rows.next().map_err(map_error)? {
            found.push(waitpoint_from_row(r)?);
        }
        Ok(found)
    }

    fn waitpoint_where(&mut self, clause: &str, values: impl rusqlite::Params) -> Result<Option<WaitpointRow>, Error> {
        Ok(self.waitpoints_where(clause, values)?.into_iter().next())
    }
}

#[async_trait]
impl WaitpointTable for SqliteTx<'_> {
    async fn waitpoint_insert(&mut self, row: &WaitpointRow) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO waitpoints ({WAITPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.env_id.as_str(),
                    row.kind.as_str(),
                    row.status.as_str(),
                    row.idempotency_key,
                    row.user_key,
                    row.idempotency_key_expires_at.map(|t| t.0),
                    row.inactive_idempotency_key,
                    row.completed_by_run_id.as_ref().map(RunId::as_str),
                    row.completed_by_batch_id.as_ref().map(BatchId::as_str),
                    row.completed_after.map(|t| t.0),
                    row.completed_at.map(|t| t.0),
                    row.output,
                    row.output_type,
                    row.output_is_error,
                    to_json(&row.tags),
                    row.created_at.0,
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn waitpoint_get(&mut self, id: &WaitpointId) -> Result<Option<WaitpointRow>, Error> {
        self.waitpoint_where("id = ?", [id.as_str()])
    }

    async fn waitpoint_get_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.waitpoints_where(
            "id IN (SELECT value FROM json_each(?)) ORDER BY id",
            [id_list(ids.iter().map(WaitpointId::as_str))],
        )
    }

    async fn waitpoint_lock_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error> {
        // The single writer already serialises write transactions: reading is locking.
        self.waitpoint_get_many(ids).await
    }

    async fn waitpoint_by_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<WaitpointRow>, Error> {
        self.waitpoint_where("env_id = ? AND idempotency_key = ?", params![env_id.as_str(), key])
    }

    async fn waitpoint_retire_key(&mut self, id: &WaitpointId, replacement: &str) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "UPDATE waitpoints SET inactive_idempotency_key = idempotency_key, idempotency_key = ? WHERE id = ?",
            )
            .and_then(|mut s| s.execute(params![replacement, id.as_str()]))
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
        self.connection
            .prepare_cached(
                "UPDATE waitpoints SET status = 'COMPLETED', output = ?, output_type = ?, output_is_error = ?, \
                 completed_at = ? WHERE id = ? AND status = 'PENDING'",
            )
            .and_then(|mut s| s.execute(params![output, output_type, is_error, at.0, id.as_str()]))
            .map(|changed| changed > 0)
            .map_err(map_error)
    }

    async fn waitpoint_list(&mut self, params: &WaitpointListParams) -> Result<Vec<WaitpointRow>, Error> {
        let mut clauses: Vec<&str> = vec!["kind = 'MANUAL'"];
        let mut values: Vec<Value> = Vec::new();
        if let Some(env_id) = &params.env_id {
            clauses.push("env_id = ?");
            values.push(env_id.as_str().to_string().into());
        }
        if let Some(status) = params.status {
            clauses.push("status = ?");
            values.push(status.as_str().to_string().into());
        }
        if let Some(is_error) = params.is_error {
            clauses.push("status = 'COMPLETED' AND output_is_error = ?");
            values.push(is_error.into());
        }
        if let Some(key) = &params.idempotency_key {
            clauses.push("user_key = 1 AND idempotency_key = ?");
            values.push(key.clone().into());
        }
        if !params.tags.is_empty() {
            clauses.push(
                "EXISTS (SELECT 1 FROM json_each(waitpoints.tags) AS t \
                 WHERE t.value IN (SELECT value FROM json_each(?)))",
            );
            values.push(to_json(&params.tags).into());
        }
        if let Some(from) = params.created_from {
            clauses.push("created_at >= ?");
            values.push(from.0.into());
        }
        if let Some(to) = params.created_to {
            clauses.push("created_at <= ?");
            values.push(to.0.into());
        }
        if let Some(after) = &params.after {
            clauses.push("id < ?");
            values.push(after.as_str().to_string().into());
        }
        if let Some(before) = &params.before {
            clauses.push("id > ?");
            values.push(before.as_str().to_string().into());
        }
        // Ids grow with creation time, so id order is creation order. The previous page is the
        // one nearest the cursor: read it upwards, then flip it.
        let upwards = params.before.is_some() && params.after.is_none();
        let order = if upwards { "ASC" } else { "DESC" };
        values.push(i64::from(params.limit).into());
        let clause = format!("{} ORDER BY id {order} LIMIT ?", clauses.join(" AND "));
        let mut found = self.waitpoints_where(&clause, params_from_iter(values))?;
        if upwards {
            found.reverse();
        }
        Ok(found)
    }

    async fn waitpoint_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<WaitpointRow>, Error> {
        self.waitpoints_where(
            "status = 'PENDING' AND completed_after IS NOT NULL AND completed_after <= ? \
             AND kind IN ('DATETIME', 'MANUAL') ORDER BY completed_after, id LIMIT ?",
            params![now.0, limit],
        )
    }

    async fn waitpoint_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        // The same waitpoints as `waitpoint_due`, so a time given here always finds one there.
        self.connection
            .prepare_cached(
                "SELECT completed_after FROM waitpoints WHERE status = 'PENDING' AND completed_after IS NOT NULL \
                 AND kind IN ('DATETIME', 'MANUAL') ORDER BY completed_after LIMIT 1",
            )
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
            .map(ts)
            .map_err(map_error)
    }

    async fn waitpoint_pending_for_runs(&mut self, run_ids: &[RunId]) -> Result<Vec<WaitpointRow>, Error> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.waitpoints_where(
            "completed_by_run_id IN (SELECT value FROM json_each(?)) AND kind = 'RUN' AND status = 'PENDING' \
             ORDER BY id",
            [id_list(run_ids.iter().map(RunId::as_str))],
        )
    }

    async fn waitpoint_pending_for_batches(&mut self, batch_ids: &[BatchId]) -> Result<Vec<WaitpointRow>, Error> {
        if batch_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.waitpoints_where(
            "completed_by_batch_id IN (SELECT value FROM json_each(?)) AND kind = 'BATCH' AND status = 'PENDING' \
             ORDER BY id",
            [id_list(batch_ids.iter().map(BatchId::as_str))],
        )
    }

    async fn waitpoint_of_run(&mut self, run_id: &RunId) -> Result<Option<WaitpointRow>, Error> {
        self.waitpoint_where("completed_by_run_id = ? AND kind = 'RUN'", [run_id.as_str()])
    }

    async fn waitpoint_block(
        &mut self,
        run_id: &RunId,
        waitpoint_ids: &[WaitpointId],
        at: Timestamp,
    ) -> Result<(), Error> {
        let mut statement = self
            .connection
            .prepare_cached(
                "INSERT INTO run_waitpoints (run_id, waitpoint_id, created_at) VALUES (?, ?, ?) \
                 ON CONFLICT (run_id, waitpoint_id) DO NOTHING",
            )
            .map_err(map_error)?;
        for waitpoint_id in waitpoint_ids {
            statement.execute(params![run_id.as_str(), waitpoint_id.as_str(), at.0]).map_err(map_error)?;
        }
        Ok(())
    }

    async fn waitpoint_blocked_runs(&mut self, waitpoint_ids: &[WaitpointId]) -> Result<Vec<RunId>, Error> {
        if waitpoint_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT DISTINCT run_id FROM run_waitpoints \
                 WHERE waitpoint_id IN (SELECT value FROM json_each(?)) ORDER BY run_id",
            )
            .map_err(map_error)?;
        let rows = statement
            .query_map([id_list(waitpoint_ids.iter().map(WaitpointId::as_str))], |r| r.get::<_, String>(0))
            .map_err(map_error)?;
        rows.map(|id| id.map(RunId::from_stored).map_err(map_error)).collect()
    }

    async fn waitpoint_pending_count(&mut self, run_id: &RunId) -> Result<u32, Error> {
        self.connection
            .prepare_cached(
                "SELECT COUNT(*) FROM run_waitpoints e JOIN waitpoints w ON w.id = e.waitpoint_id \
                 WHERE e.run_id = ? AND w.status = 'PENDING'",
            )
            .and_then(|mut s| s.query_row([run_id.as_str()], |r| r.get::<_, i64>(0)))
            .map_err(map_error)
            .and_then(count)
    }

    async fn waitpoint_unblock(&mut self, run_id: &RunId) -> Result<(), Error> {
        self.connection
            .prepare_cached("DELETE FROM run_waitpoints WHERE run_id = ?")
            .and_then(|mut s| s.execute([run_id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn batch_unfinished(&mut self, batch_id: &BatchId) -> Result<u32, Error> {
        self.connection
            .prepare_cached(
                "SELECT COUNT(*) FROM runs INDEXED BY runs_unfinished_by_batch \
                 WHERE batch_id = ? AND finished_at IS NULL",
            )
            .and_then(|mut s| s.query_row([batch_id.as_str()], |r| r.get::<_, i64>(0)))
            .map_err(map_error)
            .and_then(count)
    }

    async fn journal_insert(&mut self, row: &JournalRow) -> Result<(), Error> {
        let sql = format!("INSERT INTO run_journal ({JOURNAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.execute(params![
                    row.run_id.as_str(),
                    row.seq,
                    row.kind.as_str(),
                    row.name,
                    row.waitpoint_id.as_ref().map(WaitpointId::as_str),
                    row.output,
                    row.child_run_id.as_ref().map(RunId::as_str),
                    row.batch_id.as_ref().map(BatchId::as_str),
                    row.created_at.0,
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn journal_list(&mut self, run_id: &RunId) -> Result<Vec<JournalRow>, Error> {
        let sql = format!("SELECT {JOURNAL_COLUMNS} FROM run_journal WHERE run_id = ? ORDER BY seq");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query([run_id.as_str()]).map_err(map_error)?;
        let mut entries = Vec::new();
        while let Some(r) = rows.next().map_err(map_error)? {
            entries.push(journal_from_row(r)?);
        }
        Ok(entries)
    }

    async fn secret_get_or_insert(&mut self, name: &str, value: &str) -> Result<String, Error> {
        self.connection
            .prepare_cached("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)")
            .and_then(|mut s| s.execute(params![name, value]))
            .map_err(map_error)?;
        self.connection
            .prepare_cached("SELECT value FROM secrets WHERE name = ?")
            .and_then(|mut s| s.query_row([name], |r| r.get(0)))
            .map_err(map_error)
    }
}
