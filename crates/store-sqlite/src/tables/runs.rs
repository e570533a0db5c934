use std::str::FromStr;

use async_trait::async_trait;
use rusqlite::types::{Type, Value};
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use stint_store::{Error, NewRun, RunListParams, RunRow, RunTable, SnapshotRow};
use stint_types::{BatchId, EnvId, QueueId, RunId, SnapshotId, Timestamp, WorkerId};

use crate::codec::{map_error, to_json, ts};
use crate::tx::{SqliteTx, placeholders};

/// Every column of `runs`, in the order [`run_from_row`] reads them.
pub(crate) const RUN_COLUMNS: &str = "id, env_id, task_id, queue_id, queue_name, status, snapshot_id, \
    execution_status, attempt_number, max_attempts, retry, max_duration, payload, payload_type, output, output_type, \
    error, tags, metadata, concurrency_key, priority_ms, is_test, machine, worker_id, version, heartbeat_deadline, \
    attempt_started_at, duration_ms, replayed_from, created_at, updated_at, started_at, finished_at, queue_score, \
    idempotency_key, idempotency_key_expires_at, delay_until, ttl_secs, ttl_expires_at, debounce_key, parent_run_id, \
    root_run_id, depth, batch_id, batch_index, resuming";

/// Every column of `snapshots`, in the order `snapshot_from_row` reads them.
pub(crate) const SNAPSHOT_COLUMNS: &str =
    "id, run_id, status, run_status, attempt_number, description, worker_id, created_at";

/// A column holding an enum's text form.
fn text_enum<T: FromStr<Err = String>>(r: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = r.get(index)?;
    text.parse().map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
}

/// A column holding JSON text.
fn json<T: serde::de::DeserializeOwned>(r: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = r.get(index)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
    })
    .transpose()
}

/// A run from a row selected with [`RUN_COLUMNS`].
pub(crate) fn run_from_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: RunId::from_stored(r.get(0)?),
        env_id: EnvId::from_stored(r.get(1)?),
        task_id: r.get(2)?,
        queue_id: QueueId::from_stored(r.get(3)?),
        queue_name: r.get(4)?,
        status: text_enum(r, 5)?,
        snapshot_id: SnapshotId::from_stored(r.get(6)?),
        execution_status: text_enum(r, 7)?,
        attempt_number: r.get(8)?,
        max_attempts: r.get(9)?,
        retry: json(r, 10)?,
        max_duration: r.get(11)?,
        payload: r.get(12)?,
        payload_type: r.get(13)?,
        output: r.get(14)?,
        output_type: r.get(15)?,
        error: json(r, 16)?,
        tags: json(r, 17)?.unwrap_or_default(),
        metadata: r.get(18)?,
        concurrency_key: r.get(19)?,
        priority_ms: r.get(20)?,
        is_test: r.get(21)?,
        machine: r.get(22)?,
        worker_id: r.get::<_, Option<String>>(23)?.map(WorkerId::from_stored),
        version: r.get(24)?,
        heartbeat_deadline: ts(r.get(25)?),
        attempt_started_at: ts(r.get(26)?),
        duration_ms: r.get(27)?,
        replayed_from: r.get::<_, Option<String>>(28)?.map(RunId::from_stored),
        created_at: Timestamp(r.get(29)?),
        updated_at: Timestamp(r.get(30)?),
        started_at: ts(r.get(31)?),
        finished_at: ts(r.get(32)?),
        queue_score: r.get(33)?,
        idempotency_key: r.get(34)?,
        idempotency_key_expires_at: ts(r.get(35)?),
        delay_until: ts(r.get(36)?),
        ttl_secs: r.get(37)?,
        ttl_expires_at: ts(r.get(38)?),
        debounce_key: r.get(39)?,
        parent_run_id: r.get::<_, Option<String>>(40)?.map(RunId::from_stored),
        root_run_id: r.get::<_, Option<String>>(41)?.map(RunId::from_stored),
        depth: r.get(42)?,
        batch_id: r.get::<_, Option<String>>(43)?.map(BatchId::from_stored),
        batch_index: r.get(44)?,
        resuming: r.get(45)?,
    })
}

fn snapshot_from_row(r: &Row<'_>) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        id: SnapshotId::from_stored(r.get(0)?),
        run_id: RunId::from_stored(r.get(1)?),
        status: text_enum(r, 2)?,
        run_status: text_enum(r, 3)?,
        attempt_number: r.get(4)?,
        description: r.get(5)?,
        worker_id: r.get::<_, Option<String>>(6)?.map(WorkerId::from_stored),
        created_at: Timestamp(r.get(7)?),
    })
}

impl SqliteTx<'_> {
    fn current_snapshot(&mut self, id: &RunId) -> Result<Option<SnapshotId>, Error> {
        self.connection
            .prepare_cached("SELECT snapshot_id FROM runs WHERE id = ?")
            .and_then(|mut s| s.query_row([id.as_str()], |r| r.get::<_, String>(0)).optional())
            .map(|found| found.map(SnapshotId::from_stored))
            .map_err(map_error)
    }
}

#[async_trait]
impl RunTable for SqliteTx<'_> {
    async fn run_insert(&mut self, run: &RunRow, snapshot: &SnapshotRow) -> Result<(), Error> {
        self.insert_run(run)?;
        self.insert_snapshot(snapshot)
    }

    async fn run_insert_many(&mut self, runs: &[NewRun]) -> Result<Vec<bool>, Error> {
        self.insert_runs(runs)
    }

    async fn run_get(&mut self, id: &RunId) -> Result<Option<RunRow>, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([id.as_str()], run_from_row).optional())
            .map_err(map_error)
    }

    async fn run_by_idempotency_key(
        &mut self,
        env_id: &EnvId,
        task_id: &str,
        key: &str,
    ) -> Result<Option<RunRow>, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE env_id = ? AND task_id = ? AND idempotency_key = ?");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(params![env_id.as_str(), task_id, key], run_from_row).optional())
            .map_err(map_error)
    }

    async fn run_forget_idempotency_key(&mut self, id: &RunId) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL WHERE id = ?")
            .and_then(|mut s| s.execute([id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn run_list(&mut self, params: &RunListParams) -> Result<Vec<RunRow>, Error> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(env_id) = &params.env_id {
            clauses.push("env_id = ?".into());
            values.push(env_id.as_str().to_string().into());
        }
        if !params.statuses.is_empty() {
            clauses.push(format!("status IN ({})", placeholders(params.statuses.len())));
            values.extend(params.statuses.iter().map(|s| Value::from(s.as_str().to_string())));
        }
        if !params.task_ids.is_empty() {
            clauses.push(format!("task_id IN ({})", placeholders(params.task_ids.len())));
            values.extend(params.task_ids.iter().map(|t| Value::from(t.clone())));
        }
        if !params.tags.is_empty() {
            clauses.push(format!(
                "id IN (SELECT run_id FROM run_tags WHERE tag IN ({}))",
                placeholders(params.tags.len())
            ));
            values.extend(params.tags.iter().map(|t| Value::from(t.clone())));
        }
        if let Some(batch_id) = &params.batch_id {
            clauses.push("batch_id = ?".into());
            values.push(batch_id.as_str().to_string().into());
        }
        if let Some(from) = params.created_from {
            clauses.push("created_at >= ?".into());
            values.push(from.0.into());
        }
        if let Some(to) = params.created_to {
            clauses.push("created_at <= ?".into());
            values.push(to.0.into());
        }
        if let Some(after) = &params.after {
            clauses.push("id < ?".into());
            values.push(after.as_str().to_string().into());
        }
        if let Some(before) = &params.before {
            clauses.push("id > ?".into());
            values.push(before.as_str().to_string().into());
        }
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        // The previous page is the one nearest the cursor: read it upwards, then flip it.
        let order = if params.before.is_some() && params.after.is_none() { "ASC" } else { "DESC" };
        values.push(i64::from(params.limit).into());
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs {filter} ORDER BY id {order} LIMIT ?");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement.query_map(params_from_iter(values), run_from_row).map_err(map_error)?;
        let mut runs = rows.collect::<Result<Vec<_>, _>>().map_err(map_error)?;
        if order == "ASC" {
            runs.reverse();
        }
        Ok(runs)
    }

    async fn run_transition(
        &mut self,
        expected: &SnapshotId,
        run: &RunRow,
        snapshot: &SnapshotRow,
    ) -> Result<(), Error> {
        debug_assert_eq!(run.snapshot_id, snapshot.id);
        let changed = self
            .connection
            .prepare_cached(
                "UPDATE runs SET queue_id = ?, queue_name = ?, status = ?, snapshot_id = ?, execution_status = ?, \
                 attempt_number = ?, max_attempts = ?, retry = ?, max_duration = ?, output = ?, output_type = ?, \
                 error = ?, worker_id = ?, version = ?, heartbeat_deadline = ?, \
                 attempt_started_at = ?, duration_ms = ?, updated_at = ?, started_at = ?, finished_at = ?, \
                 queue_score = ?, idempotency_key = ?, idempotency_key_expires_at = ?, delay_until = ?, \
                 ttl_expires_at = ?, debounce_key = ?, resuming = ? WHERE id = ? AND snapshot_id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.queue_id.as_str(),
                    run.queue_name,
                    run.status.as_str(),
                    run.snapshot_id.as_str(),
                    run.execution_status.as_str(),
                    run.attempt_number,
                    run.max_attempts,
                    run.retry.as_ref().map(to_json),
                    run.max_duration,
                    run.output,
                    run.output_type,
                    run.error.as_ref().map(to_json),
                    run.worker_id.as_ref().map(WorkerId::as_str),
                    run.version,
                    run.heartbeat_deadline.map(|t| t.0),
                    run.attempt_started_at.map(|t| t.0),
                    run.duration_ms,
                    run.updated_at.0,
                    run.started_at.map(|t| t.0),
                    run.finished_at.map(|t| t.0),
                    run.queue_score,
                    run.idempotency_key,
                    run.idempotency_key_expires_at.map(|t| t.0),
                    run.delay_until.map(|t| t.0),
                    run.ttl_expires_at.map(|t| t.0),
                    run.debounce_key,
                    run.resuming,
                    run.id.as_str(),
                    expected.as_str(),
                ])
            })
            .map_err(map_error)?;
        if changed == 0 {
            return match self.current_snapshot(&run.id)? {
                Some(current) => Err(Error::Stale { run_id: run.id.clone(), current }),
                None => Err(Error::NotFound(format!("run {}", run.id))),
            };
        }
        self.insert_snapshot(snapshot)
    }

    async fn run_lock(&mut self, id: &RunId) -> Result<Option<RunRow>, Error> {
        // One writer: nothing else changes the run before this transaction ends.
        self.run_get(id).await
    }

    async fn run_set_metadata(&mut self, id: &RunId, metadata: Option<&str>, at: Timestamp) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE runs SET metadata = ?, updated_at = ? WHERE id = ?")
            .and_then(|mut s| s.execute(params![metadata, at.0, id.as_str()]))
            .map_err(map_error)
            .and_then(|changed| if changed == 0 { Err(Error::NotFound(format!("run {id}"))) } else { Ok(()) })
    }

    async fn run_set_tags(&mut self, id: &RunId, tags: &[String], at: Timestamp) -> Result<(), Error> {
        let changed = self
            .connection
            .prepare_cached("UPDATE runs SET tags = ?, updated_at = ? WHERE id = ?")
            .and_then(|mut s| s.execute(params![to_json(&tags), at.0, id.as_str()]))
            .map_err(map_error)?;
        if changed == 0 {
            return Err(Error::NotFound(format!("run {id}")));
        }
        for tag in tags {
            self.connection
                .prepare_cached("INSERT OR IGNORE INTO run_tags (tag, run_id) VALUES (?, ?)")
                .and_then(|mut s| s.execute(params![tag, id.as_str()]))
                .map_err(map_error)?;
        }
        Ok(())
    }

    async fn run_children(&mut self, parent: &RunId, limit: u32) -> Result<Vec<RunRow>, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE parent_run_id = ? ORDER BY id LIMIT ?");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement.query_map(params![parent.as_str(), limit], run_from_row).map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }

    async fn run_heartbeat(
        &mut self,
        id: &RunId,
        snapshot_id: &SnapshotId,
        deadline: Timestamp,
    ) -> Result<bool, Error> {
        self.connection
            .prepare_cached(
                "UPDATE runs SET heartbeat_deadline = ? \
                 WHERE id = ? AND snapshot_id = ? AND heartbeat_deadline IS NOT NULL",
            )
            .and_then(|mut s| s.execute(params![deadline.0, id.as_str(), snapshot_id.as_str()]))
            .map(|n| n > 0)
            .map_err(map_error)
    }

    async fn run_stalled(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE heartbeat_deadline IS NOT NULL AND heartbeat_deadline <= ? \
             ORDER BY heartbeat_deadline LIMIT ?"
        );
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement.query_map(params![now.0, limit], run_from_row).map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }

    async fn snapshot_list(&mut self, run_id: &RunId) -> Result<Vec<SnapshotRow>, Error> {
        let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE run_id = ? ORDER BY id");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement.query_map([run_id.as_str()], snapshot_from_row).map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }
}
