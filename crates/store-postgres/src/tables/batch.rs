//! Run statements over many runs at once: a batch of dequeued or completed runs costs a few
//! round trips instead of one or two per run.

use std::collections::{HashMap, HashSet};

use sqlx::Postgres;
use sqlx::query::Query;
use stint_store::{Error, NewRun, RunRow, SnapshotRow, Transition};
use stint_types::{BatchId, RunId, SnapshotId, WorkerId};

use crate::codec::{big, big_opt, get, map_error, to_json};
use crate::tables::rows::{runs_from_rows, snapshot_columns};
use crate::tx::PgTx;

/// A statement of this store with its arguments.
type PgQuery<'q> = Query<'q, Postgres, <Postgres as sqlx::Database>::Arguments>;

/// Binds the eight columns of `snapshots`, each as one array, in `snapshot_columns!()` order.
fn bind_snapshots<'q>(query: PgQuery<'q>, snapshots: &[&SnapshotRow]) -> PgQuery<'q> {
    query
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
}

impl PgTx<'_> {
    /// Adds runs with their snapshots and tags in one statement: the runs through one
    /// `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`, then the snapshots and tags of
    /// the runs it added. A run a unique key refuses is skipped, which keeps the transaction
    /// usable, and answered `false`.
    pub(crate) async fn insert_runs(&mut self, new: &[NewRun]) -> Result<Vec<bool>, Error> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let runs: Vec<&RunRow> = new.iter().map(|n| &n.run).collect();
        let text = |f: &dyn Fn(&RunRow) -> String| runs.iter().map(|r| f(r)).collect::<Vec<String>>();
        let text_opt =
            |f: &dyn Fn(&RunRow) -> Option<String>| runs.iter().map(|r| f(r)).collect::<Vec<Option<String>>>();
        let int = |f: &dyn Fn(&RunRow) -> i64| runs.iter().map(|r| f(r)).collect::<Vec<i64>>();
        let int_opt = |f: &dyn Fn(&RunRow) -> Option<i64>| runs.iter().map(|r| f(r)).collect::<Vec<Option<i64>>>();
        let (mut tags, mut tagged) = (Vec::new(), Vec::new());
        for run in &runs {
            for tag in &run.tags {
                tags.push(tag.clone());
                tagged.push(run.id.as_str().to_string());
            }
        }
        let snapshots: Vec<_> = new.iter().map(|n| &n.snapshot).collect();
        let added = sqlx::query::<Postgres>(concat!(
            "WITH added AS (INSERT INTO runs (",
            run_columns!(),
            ") SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::text[], \
             $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], \
             $21::bigint[], $22::boolean[], $23::text[], $24::text[], $25::text[], $26::bigint[], $27::bigint[], \
             $28::bigint[], $29::text[], $30::bigint[], $31::bigint[], $32::bigint[], $33::bigint[], $34::bigint[], \
             $35::text[], $36::bigint[], $37::bigint[], $38::bigint[], $39::bigint[], $40::text[], $41::text[], \
             $42::text[], $43::bigint[], $44::text[], $45::bigint[], $46::boolean[]) \
             ON CONFLICT DO NOTHING RETURNING id), \
             snapshots_added AS (INSERT INTO snapshots (",
            snapshot_columns!(),
            ") SELECT s.id, s.run_id, s.status, s.run_status, s.attempt_number, s.description, s.worker_id, \
             s.created_at FROM unnest($47::text[], $48::text[], $49::text[], $50::text[], $51::bigint[], \
             $52::text[], $53::text[], $54::bigint[]) \
             AS s(id, run_id, status, run_status, attempt_number, description, worker_id, created_at) \
             JOIN added ON added.id = s.run_id), \
             tags_added AS (INSERT INTO run_tags (tag, run_id) SELECT DISTINCT t.tag, t.run_id \
             FROM unnest($55::text[], $56::text[]) AS t(tag, run_id) JOIN added ON added.id = t.run_id \
             ON CONFLICT DO NOTHING) \
             SELECT id FROM added"
        ))
        .bind(text(&|r| r.id.as_str().to_string()))
        .bind(text(&|r| r.env_id.as_str().to_string()))
        .bind(text(&|r| r.task_id.clone()))
        .bind(text(&|r| r.queue_id.as_str().to_string()))
        .bind(text(&|r| r.queue_name.clone()))
        .bind(text(&|r| r.status.as_str().to_string()))
        .bind(text(&|r| r.snapshot_id.as_str().to_string()))
        .bind(text(&|r| r.execution_status.as_str().to_string()))
        .bind(int(&|r| big(r.attempt_number)))
        .bind(int_opt(&|r| big_opt(r.max_attempts)))
        .bind(text_opt(&|r| r.retry.as_ref().map(to_json)))
        .bind(int_opt(&|r| big_opt(r.max_duration)))
        .bind(text(&|r| r.payload.clone()))
        .bind(text(&|r| r.payload_type.clone()))
        .bind(text_opt(&|r| r.output.clone()))
        .bind(text_opt(&|r| r.output_type.clone()))
        .bind(text_opt(&|r| r.error.as_ref().map(to_json)))
        .bind(text(&|r| to_json(&r.tags)))
        .bind(text_opt(&|r| r.metadata.clone()))
        .bind(text_opt(&|r| r.concurrency_key.clone()))
        .bind(int(&|r| r.priority_ms))
        .bind(runs.iter().map(|r| r.is_test).collect::<Vec<bool>>())
        .bind(text_opt(&|r| r.machine.clone()))
        .bind(text_opt(&|r| r.worker_id.as_ref().map(|w| w.as_str().to_string())))
        .bind(text_opt(&|r| r.version.clone()))
        .bind(int_opt(&|r| r.heartbeat_deadline.map(|t| t.0)))
        .bind(int_opt(&|r| r.attempt_started_at.map(|t| t.0)))
        .bind(int(&|r| r.duration_ms))
        .bind(text_opt(&|r| r.replayed_from.as_ref().map(|id| id.as_str().to_string())))
        .bind(int(&|r| r.created_at.0))
        .bind(int(&|r| r.updated_at.0))
        .bind(int_opt(&|r| r.started_at.map(|t| t.0)))
        .bind(int_opt(&|r| r.finished_at.map(|t| t.0)))
        .bind(int_opt(&|r| r.queue_score))
        .bind(text_opt(&|r| r.idempotency_key.clone()))
        .bind(int_opt(&|r| r.idempotency_key_expires_at.map(|t| t.0)))
        .bind(int_opt(&|r| r.delay_until.map(|t| t.0)))
        .bind(int_opt(&|r| big_opt(r.ttl_secs)))
        .bind(int_opt(&|r| r.ttl_expires_at.map(|t| t.0)))
        .bind(text_opt(&|r| r.debounce_key.clone()))
        .bind(text_opt(&|r| r.parent_run_id.as_ref().map(|id| id.as_str().to_string())))
        .bind(text_opt(&|r| r.root_run_id.as_ref().map(|id| id.as_str().to_string())))
        .bind(int(&|r| big(r.depth)))
        .bind(text_opt(&|r| r.batch_id.as_ref().map(|id| BatchId::as_str(id).to_string())))
        .bind(int_opt(&|r| big_opt(r.batch_index)))
        .bind(runs.iter().map(|r| r.resuming).collect::<Vec<bool>>());
        let added = bind_snapshots(added, &snapshots)
            .bind(&tags)
            .bind(&tagged)
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        let added: HashSet<String> = added.iter().map(|row| get::<String>(row, 0)).collect::<Result<_, _>>()?;
        Ok(runs.iter().map(|r| added.contains(r.id.as_str())).collect())
    }

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
        let moved = sqlx::query::<Postgres>(concat!(
            "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[], \
             $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], \
             $19::bigint[], $20::bigint[], $21::bigint[], $22::text[], $23::bigint[], $24::bigint[], \
             $25::bigint[], $26::text[], $27::boolean[], $28::text[], $29::text[]) \
             AS t(queue_id, queue_name, status, snapshot_id, execution_status, attempt_number, max_attempts, retry, \
             max_duration, output, output_type, error, worker_id, version, heartbeat_deadline, \
             attempt_started_at, duration_ms, updated_at, started_at, finished_at, queue_score, idempotency_key, \
             idempotency_key_expires_at, delay_until, ttl_expires_at, debounce_key, resuming, id, expected)), \
             moved AS (UPDATE runs SET queue_id = i.queue_id, queue_name = i.queue_name, status = i.status, \
             snapshot_id = i.snapshot_id, execution_status = i.execution_status, attempt_number = i.attempt_number, \
             max_attempts = i.max_attempts, retry = i.retry, max_duration = i.max_duration, output = i.output, \
             output_type = i.output_type, error = i.error, worker_id = i.worker_id, \
             version = i.version, heartbeat_deadline = i.heartbeat_deadline, \
             attempt_started_at = i.attempt_started_at, duration_ms = i.duration_ms, updated_at = i.updated_at, \
             started_at = i.started_at, finished_at = i.finished_at, queue_score = i.queue_score, \
             idempotency_key = i.idempotency_key, idempotency_key_expires_at = i.idempotency_key_expires_at, \
             delay_until = i.delay_until, ttl_expires_at = i.ttl_expires_at, debounce_key = i.debounce_key, \
             resuming = i.resuming \
             FROM input i WHERE runs.id = i.id AND runs.snapshot_id = i.expected RETURNING runs.id), \
             appended AS (SELECT * FROM unnest($30::text[], $31::text[], $32::text[], $33::text[], $34::bigint[], \
             $35::text[], $36::text[], $37::bigint[]) \
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
        .bind(runs.iter().map(|r| r.resuming).collect::<Vec<bool>>())
        .bind(&ids)
        .bind(moves.iter().map(|m| m.expected.as_str().to_string()).collect::<Vec<_>>());
        let moved = bind_snapshots(moved, &snapshots).fetch_all(&mut *self.connection).await.map_err(map_error)?;
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
