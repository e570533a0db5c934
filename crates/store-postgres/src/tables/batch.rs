//! Run statements over many runs at once: a batch of dequeued or completed runs costs a few
//! round trips instead of one or two per run.

use std::collections::{HashMap, HashSet};

use stint_store::{Error, RunRow, Transition};
use stint_types::{RunId, SnapshotId, WorkerId};

use crate::codec::{big, big_opt, get, map_error, to_json};
use crate::tables::rows::{runs_from_rows, snapshot_columns};
use crate::tx::PgTx;

impl PgTx<'_> {
    /// The runs with these ids, in one statement.
    pub(crate) async fn runs_by_ids(&mut self, ids: &[RunId]) -> Result<Vec<RunRow>, Error> {
        let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_string()).collect();
        let rows = sqlx::query(concat!("SELECT ", run_columns!(), " FROM runs WHERE id = ANY($1)"))
            .bind(&ids)
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        runs_from_rows(&rows)
    }

    /// Many fenced transitions: the rows are locked in id order, then moved and their snapshots
    /// appended by one statement; each move that did not match its expected snapshot is answered
    /// stale (or not found).
    pub(crate) async fn transitions(&mut self, moves: &[Transition]) -> Result<Vec<Result<(), Error>>, Error> {
        if moves.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = moves.iter().map(|m| m.run.id.as_str().to_string()).collect();
        if self.locking {
            // Locking in id order keeps batches on several nodes from waiting on each other in a
            // cycle; the update below then finds its rows locked by this transaction already.
            sqlx::query("SELECT id FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ids)
                .execute(&mut *self.connection)
                .await
                .map_err(map_error)?;
        }
        let runs: Vec<&RunRow> = moves.iter().map(|m| &m.run).collect();
        let text = |f: &dyn Fn(&RunRow) -> String| runs.iter().map(|r| f(r)).collect::<Vec<String>>();
        let text_opt =
            |f: &dyn Fn(&RunRow) -> Option<String>| runs.iter().map(|r| f(r)).collect::<Vec<Option<String>>>();
        let int = |f: &dyn Fn(&RunRow) -> i64| runs.iter().map(|r| f(r)).collect::<Vec<i64>>();
        let int_opt = |f: &dyn Fn(&RunRow) -> Option<i64>| runs.iter().map(|r| f(r)).collect::<Vec<Option<i64>>>();
        let snapshots: Vec<_> = moves.iter().map(|m| &m.snapshot).collect();
        let moved = sqlx::query(concat!(
            "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[], \
             $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], \
             $19::bigint[], $20::bigint[], $21::bigint[], $22::text[], $23::bigint[], $24::bigint[], \
             $25::bigint[], $26::text[], $27::text[], $28::text[]) \
             AS t(queue_id, queue_name, status, snapshot_id, execution_status, attempt_number, max_attempts, retry, \
             max_duration, output, output_type, error, worker_id, version, heartbeat_deadline, \
             attempt_started_at, duration_ms, updated_at, started_at, finished_at, queue_score, idempotency_key, \
             idempotency_key_expires_at, delay_until, ttl_expires_at, debounce_key, id, expected)), \
             moved AS (UPDATE runs SET queue_id = i.queue_id, queue_name = i.queue_name, status = i.status, \
             snapshot_id = i.snapshot_id, execution_status = i.execution_status, attempt_number = i.attempt_number, \
             max_attempts = i.max_attempts, retry = i.retry, max_duration = i.max_duration, output = i.output, \
             output_type = i.output_type, error = i.error, worker_id = i.worker_id, \
             version = i.version, heartbeat_deadline = i.heartbeat_deadline, \
             attempt_started_at = i.attempt_started_at, duration_ms = i.duration_ms, updated_at = i.updated_at, \
             started_at = i.started_at, finished_at = i.finished_at, queue_score = i.queue_score, \
             idempotency_key = i.idempotency_key, idempotency_key_expires_at = i.idempotency_key_expires_at, \
             delay_until = i.delay_until, ttl_expires_at = i.ttl_expires_at, debounce_key = i.debounce_key \
             FROM input i WHERE runs.id = i.id AND runs.snapshot_id = i.expected RETURNING runs.id), \
             appended AS (SELECT * FROM unnest($29::text[], $30::text[], $31::text[], $32::text[], $33::bigint[], \
             $34::text[], $35::text[], $36::bigint[]) \
             AS s(id, run_id, status, run_status, attempt_number, description, worker_id, created_at)) \
             INSERT INTO snapshots (",
            snapshot_columns!(),
            ") SELECT a.id, a.run_id, a.status, a.run_status, a.attempt_number, a.description, a.worker_id, \
             a.created_at FROM appended a JOIN moved ON moved.id = a.run_id RETURNING run_id"
        ))
        .bind(text(&|r| r.queue_id.as_str().to_string()))
        .bind(text(&|r| r.queue_name.clone()))
        .bind(text(&|r| r.status.as_str().to_string()))
        .bind(text(&|r| r.snapshot_id.as_str().to_string()))
        .bind(text(&|r| r.execution_status.as_str().to_string()))
        .bind(int(&|r| big(r.attempt_number)))
        .bind(int_opt(&|r| big_opt(r.max_attempts)))
        .bind(text_opt(&|r| r.retry.as_ref().map(to_json)))
        .bind(int_opt(&|r| big_opt(r.max_duration)))
        .bind(text_opt(&|r| r.output.clone()))
        .bind(text_opt(&|r| r.output_type.clone()))
        .bind(text_opt(&|r| r.error.as_ref().map(to_json)))
        .bind(text_opt(&|r| r.worker_id.as_ref().map(|w| w.as_str().to_string())))
        .bind(text_opt(&|r| r.version.clone()))
        .bind(int_opt(&|r| r.heartbeat_deadline.map(|t| t.0)))
        .bind(int_opt(&|r| r.attempt_started_at.map(|t| t.0)))
        .bind(int(&|r| r.duration_ms))
        .bind(int(&|r| r.updated_at.0))
        .bind(int_opt(&|r| r.started_at.map(|t| t.0)))
        .bind(int_opt(&|r| r.finished_at.map(|t| t.0)))
        .bind(int_opt(&|r| r.queue_score))
        .bind(text_opt(&|r| r.idempotency_key.clone()))
        .bind(int_opt(&|r| r.idempotency_key_expires_at.map(|t| t.0)))
        .bind(int_opt(&|r| r.delay_until.map(|t| t.0)))
        .bind(int_opt(&|r| r.ttl_expires_at.map(|t| t.0)))
        .bind(text_opt(&|r| r.debounce_key.clone()))
        .bind(&ids)
        .bind(moves.iter().map(|m| m.expected.as_str().to_string()).collect::<Vec<_>>())
        .bind(snapshots.iter().map(|s| s.id.as_str().to_string()).collect::<Vec<_>>())
        .bind(snapshots.iter().map(|s| s.run_id.as_str().to_string()).collect::<Vec<_>>())
        .bind(snapshots.iter().map(|s| s.status.as_str().to_string()).collect::<Vec<_>>())
        .bind(snapshots.iter().map(|s| s.run_status.as_str().to_string()).collect::<Vec<_>>())
        .bind(snapshots.iter().map(|s| big(s.attempt_number)).collect::<Vec<_>>())
        .bind(snapshots.iter().map(|s| s.description.clone()).collect::<Vec<_>>())
        .bind(
            snapshots
                .iter()
                .map(|s| s.worker_id.as_ref().map(WorkerId::as_str).map(str::to_string))
                .collect::<Vec<_>>(),
        )
        .bind(snapshots.iter().map(|s| s.created_at.0).collect::<Vec<_>>())
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        let moved: HashSet<String> = moved.iter().map(|row| get::<String>(row, 0)).collect::<Result<_, _>>()?;
        if moved.len() == moves.len() {
            return Ok(vec![Ok(()); moves.len()]);
        }
        // Some did not match: say where each of those runs is now.
        let missed: Vec<String> = ids.iter().filter(|id| !moved.contains(*id)).cloned().collect();
        let rows = sqlx::query("SELECT id, snapshot_id FROM runs WHERE id = ANY($1)")
            .bind(&missed)
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        let mut current = HashMap::with_capacity(rows.len());
        for row in &rows {
            current.insert(get::<String>(row, 0)?, SnapshotId::from_stored(get(row, 1)?));
        }
        Ok(moves
            .iter()
            .map(|m| {
                let id = m.run.id.as_str();
                if moved.contains(id) {
                    return Ok(());
                }
                match current.get(id) {
                    Some(snapshot) => Err(Error::Stale { run_id: m.run.id.clone(), current: snapshot.clone() }),
                    None => Err(Error::NotFound(format!("run {id}"))),
                }
            })
            .collect())
    }
}
