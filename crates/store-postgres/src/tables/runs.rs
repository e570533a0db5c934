use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder};
use stint_store::{Error, NewRun, RunListParams, RunRow, RunTable, SnapshotRow, Transition};
use stint_types::{BatchId, EnvId, RunId, SnapshotId, Timestamp, WorkerId};

use crate::codec::{big, big_opt, get, inserted, map_error, to_json};
use crate::tables::rows::{run_from_row, runs_from_rows, snapshot_columns, snapshot_from_row};
use crate::tx::PgTx;

impl PgTx<'_> {
    async fn snapshot_insert(&mut self, snapshot: &SnapshotRow) -> Result<(), Error> {
        let result = sqlx::query(concat!(
            "INSERT INTO snapshots (",
            snapshot_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
        ))
        .bind(snapshot.id.as_str())
        .bind(snapshot.run_id.as_str())
        .bind(snapshot.status.as_str())
        .bind(snapshot.run_status.as_str())
        .bind(big(snapshot.attempt_number))
        .bind(&snapshot.description)
        .bind(snapshot.worker_id.as_ref().map(WorkerId::as_str))
        .bind(snapshot.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("snapshot {} of run {} exists already", snapshot.id, snapshot.run_id))
    }
}

#[async_trait]
impl RunTable for PgTx<'_> {
    async fn run_insert(&mut self, run: &RunRow, snapshot: &SnapshotRow) -> Result<(), Error> {
        let result = sqlx::query(concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
             $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, \
             $41, $42, $43, $44, $45, $46) ON CONFLICT DO NOTHING"
        ))
        .bind(run.id.as_str())
        .bind(run.env_id.as_str())
        .bind(&run.task_id)
        .bind(run.queue_id.as_str())
        .bind(&run.queue_name)
        .bind(run.status.as_str())
        .bind(run.snapshot_id.as_str())
        .bind(run.execution_status.as_str())
        .bind(big(run.attempt_number))
        .bind(big_opt(run.max_attempts))
        .bind(run.retry.as_ref().map(to_json))
        .bind(big_opt(run.max_duration))
        .bind(&run.payload)
        .bind(&run.payload_type)
        .bind(&run.output)
        .bind(&run.output_type)
        .bind(run.error.as_ref().map(to_json))
        .bind(to_json(&run.tags))
        .bind(&run.metadata)
        .bind(&run.concurrency_key)
        .bind(run.priority_ms)
        .bind(run.is_test)
        .bind(&run.machine)
        .bind(run.worker_id.as_ref().map(WorkerId::as_str))
        .bind(&run.version)
        .bind(run.heartbeat_deadline.map(|t| t.0))
        .bind(run.attempt_started_at.map(|t| t.0))
        .bind(run.duration_ms)
        .bind(run.replayed_from.as_ref().map(RunId::as_str))
        .bind(run.created_at.0)
        .bind(run.updated_at.0)
        .bind(run.started_at.map(|t| t.0))
        .bind(run.finished_at.map(|t| t.0))
        .bind(run.queue_score)
        .bind(&run.idempotency_key)
        .bind(run.idempotency_key_expires_at.map(|t| t.0))
        .bind(run.delay_until.map(|t| t.0))
        .bind(big_opt(run.ttl_secs))
        .bind(run.ttl_expires_at.map(|t| t.0))
        .bind(&run.debounce_key)
        .bind(run.parent_run_id.as_ref().map(RunId::as_str))
        .bind(run.root_run_id.as_ref().map(RunId::as_str))
        .bind(big(run.depth))
        .bind(run.batch_id.as_ref().map(BatchId::as_str))
        .bind(big_opt(run.batch_index))
        .bind(run.resuming)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("run {} or its idempotency key exists already", run.id))?;
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
        self.snapshot_insert(snapshot).await
    }

    async fn run_get(&mut self, id: &RunId) -> Result<Option<RunRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn run_insert_many(&mut self, runs: &[NewRun]) -> Result<Vec<bool>, Error> {
        self.insert_runs(runs).await
    }

    async fn run_get_many(&mut self, ids: &[RunId]) -> Result<Vec<RunRow>, Error> {
        self.runs_by_ids(ids).await
    }

    async fn run_transition_many(&mut self, moves: &[Transition]) -> Result<Vec<Result<(), Error>>, Error> {
        self.transitions(moves).await
    }

    async fn run_by_idempotency_key(
        &mut self,
        env_id: &EnvId,
        task_id: &str,
        key: &str,
    ) -> Result<Option<RunRow>, Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE env_id = $1 AND task_id = $2 AND idempotency_key = $3"
        ))
        .bind(env_id.as_str())
        .bind(task_id)
        .bind(key)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn run_forget_idempotency_key(&mut self, id: &RunId) -> Result<(), Error> {
        sqlx::query("UPDATE runs SET idempotency_key = NULL, idempotency_key_expires_at = NULL WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn run_list(&mut self, params: &RunListParams) -> Result<Vec<RunRow>, Error> {
        let mut query = QueryBuilder::<Postgres>::new(concat!("SELECT ", run_columns!(), " FROM runs WHERE TRUE"));
        if let Some(env_id) = &params.env_id {
            query.push(" AND env_id = ").push_bind(env_id.as_str().to_string());
        }
        if !params.statuses.is_empty() {
            let statuses: Vec<String> = params.statuses.iter().map(|s| s.as_str().to_string()).collect();
            query.push(" AND status = ANY(").push_bind(statuses).push(")");
        }
        if !params.task_ids.is_empty() {
            query.push(" AND task_id = ANY(").push_bind(params.task_ids.clone()).push(")");
        }
        if !params.tags.is_empty() {
            query
                .push(" AND id IN (SELECT run_id FROM run_tags WHERE tag = ANY(")
                .push_bind(params.tags.clone())
                .push("))");
        }
        if let Some(batch_id) = &params.batch_id {
            query.push(" AND batch_id = ").push_bind(batch_id.as_str().to_string());
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
        // The previous page is the one nearest the cursor: read it upwards, then flip it.
        let upwards = params.before.is_some() && params.after.is_none();
        query.push(if upwards { " ORDER BY id ASC LIMIT " } else { " ORDER BY id DESC LIMIT " });
        query.push_bind(big(params.limit));
        let rows = query.build().fetch_all(&mut *self.connection).await.map_err(map_error)?;
        let mut runs = runs_from_rows(&rows)?;
        if upwards {
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
        // One statement moves the run and appends its snapshot: the snapshot is inserted only
        // if the fenced update matched. A competing transaction holding the run's row makes the
        // update wait for it and then re-check the fence against the row it committed.
        let result = sqlx::query(concat!(
            "WITH moved AS (UPDATE runs SET queue_id = $1, queue_name = $2, status = $3, snapshot_id = $4, \
             execution_status = $5, attempt_number = $6, max_attempts = $7, retry = $8, max_duration = $9, \
             output = $10, output_type = $11, error = $12, worker_id = $13, version = $14, \
             heartbeat_deadline = $15, attempt_started_at = $16, duration_ms = $17, updated_at = $18, \
             started_at = $19, finished_at = $20, queue_score = $21, idempotency_key = $22, \
             idempotency_key_expires_at = $23, delay_until = $24, ttl_expires_at = $25, debounce_key = $26, \
             resuming = $27 WHERE id = $28 AND snapshot_id = $29 RETURNING id) \
             INSERT INTO snapshots (",
            snapshot_columns!(),
            ") SELECT $30, $31, $32, $33, $34, $35, $36, $37 FROM moved"
        ))
        .bind(run.queue_id.as_str())
        .bind(&run.queue_name)
        .bind(run.status.as_str())
        .bind(run.snapshot_id.as_str())
        .bind(run.execution_status.as_str())
        .bind(big(run.attempt_number))
        .bind(big_opt(run.max_attempts))
        .bind(run.retry.as_ref().map(to_json))
        .bind(big_opt(run.max_duration))
        .bind(&run.output)
        .bind(&run.output_type)
        .bind(run.error.as_ref().map(to_json))
        .bind(run.worker_id.as_ref().map(WorkerId::as_str))
        .bind(&run.version)
        .bind(run.heartbeat_deadline.map(|t| t.0))
        .bind(run.attempt_started_at.map(|t| t.0))
        .bind(run.duration_ms)
        .bind(run.updated_at.0)
        .bind(run.started_at.map(|t| t.0))
        .bind(run.finished_at.map(|t| t.0))
        .bind(run.queue_score)
        .bind(&run.idempotency_key)
        .bind(run.idempotency_key_expires_at.map(|t| t.0))
        .bind(run.delay_until.map(|t| t.0))
        .bind(run.ttl_expires_at.map(|t| t.0))
        .bind(&run.debounce_key)
        .bind(run.resuming)
        .bind(run.id.as_str())
        .bind(expected.as_str())
        .bind(snapshot.id.as_str())
        .bind(snapshot.run_id.as_str())
        .bind(snapshot.status.as_str())
        .bind(snapshot.run_status.as_str())
        .bind(big(snapshot.attempt_number))
        .bind(&snapshot.description)
        .bind(snapshot.worker_id.as_ref().map(WorkerId::as_str))
        .bind(snapshot.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        if result.rows_affected() > 0 {
            return Ok(());
        }
        // Read committed: this statement sees the commit that moved the run on.
        let current = sqlx::query("SELECT snapshot_id FROM runs WHERE id = $1")
            .bind(run.id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        match current {
            Some(row) => Err(Error::Stale { run_id: run.id.clone(), current: SnapshotId::from_stored(get(&row, 0)?) }),
            None => Err(Error::NotFound(format!("run {}", run.id))),
        }
    }

    async fn run_lock(&mut self, id: &RunId) -> Result<Option<RunRow>, Error> {
        // The row lock is held until the transaction ends: a transition or another metadata
        // change of the run waits for it, then sees what this transaction wrote.
        let locked = concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1 FOR UPDATE");
        let plain = concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1");
        let row = sqlx::query(if self.locking { locked } else { plain })
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn run_set_metadata(&mut self, id: &RunId, metadata: Option<&str>, at: Timestamp) -> Result<(), Error> {
        let result = sqlx::query("UPDATE runs SET metadata = $1, updated_at = $2 WHERE id = $3")
            .bind(metadata)
            .bind(at.0)
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound(format!("run {id}")));
        }
        Ok(())
    }

    async fn run_set_tags(&mut self, id: &RunId, tags: &[String], at: Timestamp) -> Result<(), Error> {
        let result = sqlx::query("UPDATE runs SET tags = $1, updated_at = $2 WHERE id = $3")
            .bind(to_json(&tags))
            .bind(at.0)
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound(format!("run {id}")));
        }
        if !tags.is_empty() {
            sqlx::query(
                "INSERT INTO run_tags (tag, run_id) SELECT DISTINCT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
            )
            .bind(tags)
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map_err(map_error)?;
        }
        Ok(())
    }

    async fn run_children(&mut self, parent: &RunId, limit: u32) -> Result<Vec<RunRow>, Error> {
        let rows =
            sqlx::query(concat!("SELECT ", run_columns!(), " FROM runs WHERE parent_run_id = $1 ORDER BY id LIMIT $2"))
                .bind(parent.as_str())
                .bind(big(limit))
                .fetch_all(&mut *self.connection)
                .await
                .map_err(map_error)?;
        runs_from_rows(&rows)
    }

    async fn run_heartbeat(
        &mut self,
        id: &RunId,
        snapshot_id: &SnapshotId,
        deadline: Timestamp,
    ) -> Result<bool, Error> {
        let result = sqlx::query(
            "UPDATE runs SET heartbeat_deadline = $1 \
             WHERE id = $2 AND snapshot_id = $3 AND heartbeat_deadline IS NOT NULL",
        )
        .bind(deadline.0)
        .bind(id.as_str())
        .bind(snapshot_id.as_str())
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn run_stalled(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error> {
        // In a write transaction the stalled runs are locked, as queue claims are: nothing changes
        // them before this transaction ends (as under SQLite's single writer), sweepers on several
        // nodes share the work, and a run another transaction is changing right now (a heartbeat,
        // a completion) is left to it and looked at again by the next sweep.
        let locked = concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE heartbeat_deadline IS NOT NULL AND heartbeat_deadline <= $1 \
             ORDER BY heartbeat_deadline, id LIMIT $2 FOR UPDATE SKIP LOCKED"
        );
        let plain = concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE heartbeat_deadline IS NOT NULL AND heartbeat_deadline <= $1 \
             ORDER BY heartbeat_deadline, id LIMIT $2"
        );
        let rows = sqlx::query(if self.locking { locked } else { plain })
            .bind(now.0)
            .bind(big(limit))
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        runs_from_rows(&rows)
    }

    async fn snapshot_list(&mut self, run_id: &RunId) -> Result<Vec<SnapshotRow>, Error> {
        let rows =
            sqlx::query(concat!("SELECT ", snapshot_columns!(), " FROM snapshots WHERE run_id = $1 ORDER BY id"))
                .bind(run_id.as_str())
                .fetch_all(&mut *self.connection)
                .await
                .map_err(map_error)?;
        rows.iter().map(snapshot_from_row).collect()
    }
}
