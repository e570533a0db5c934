//! Runs and snapshots from PostgreSQL rows.

use sqlx::postgres::PgRow;
use stint_store::{Error, RunRow, SnapshotRow};
use stint_types::{BatchId, EnvId, QueueId, RunId, SnapshotId, WorkerId};

use crate::codec::{count, count_opt, get, json, parsed, ts, ts_opt};

/// Every column of `snapshots`, in the order [`snapshot_from_row`] reads them.
macro_rules! snapshot_columns {
    () => {
        "id, run_id, status, run_status, attempt_number, description, worker_id, created_at"
    };
}
pub(crate) use snapshot_columns;

/// A run from a row selected with `run_columns!()`.
pub(crate) fn run_from_row(r: &PgRow) -> Result<RunRow, Error> {
    Ok(RunRow {
        id: RunId::from_stored(get(r, 0)?),
        env_id: EnvId::from_stored(get(r, 1)?),
        task_id: get(r, 2)?,
        queue_id: QueueId::from_stored(get(r, 3)?),
        queue_name: get(r, 4)?,
        status: parsed(r, 5)?,
        snapshot_id: SnapshotId::from_stored(get(r, 6)?),
        execution_status: parsed(r, 7)?,
        attempt_number: count(r, 8)?,
        max_attempts: count_opt(r, 9)?,
        retry: json(r, 10)?,
        max_duration: count_opt(r, 11)?,
        payload: get(r, 12)?,
        payload_type: get(r, 13)?,
        output: get(r, 14)?,
        output_type: get(r, 15)?,
        error: json(r, 16)?,
        tags: json(r, 17)?.unwrap_or_default(),
        metadata: get(r, 18)?,
        concurrency_key: get(r, 19)?,
        priority_ms: get(r, 20)?,
        is_test: get(r, 21)?,
        machine: get(r, 22)?,
        worker_id: get::<Option<String>>(r, 23)?.map(WorkerId::from_stored),
        version: get(r, 24)?,
        heartbeat_deadline: ts_opt(r, 25)?,
        attempt_started_at: ts_opt(r, 26)?,
        duration_ms: get(r, 27)?,
        replayed_from: get::<Option<String>>(r, 28)?.map(RunId::from_stored),
        created_at: ts(r, 29)?,
        updated_at: ts(r, 30)?,
        started_at: ts_opt(r, 31)?,
        finished_at: ts_opt(r, 32)?,
        queue_score: get(r, 33)?,
        idempotency_key: get(r, 34)?,
        idempotency_key_expires_at: ts_opt(r, 35)?,
        delay_until: ts_opt(r, 36)?,
        ttl_secs: count_opt(r, 37)?,
        ttl_expires_at: ts_opt(r, 38)?,
        debounce_key: get(r, 39)?,
        parent_run_id: get::<Option<String>>(r, 40)?.map(RunId::from_stored),
        root_run_id: get::<Option<String>>(r, 41)?.map(RunId::from_stored),
        depth: count(r, 42)?,
        batch_id: get::<Option<String>>(r, 43)?.map(BatchId::from_stored),
        batch_index: count_opt(r, 44)?,
        resuming: get(r, 45)?,
    })
}

/// Runs from rows selected with `run_columns!()`.
pub(crate) fn runs_from_rows(rows: &[PgRow]) -> Result<Vec<RunRow>, Error> {
    rows.iter().map(run_from_row).collect()
}

/// A snapshot from a row selected with `snapshot_columns!()`.
pub(crate) fn snapshot_from_row(r: &PgRow) -> Result<SnapshotRow, Error> {
    Ok(SnapshotRow {
        id: SnapshotId::from_stored(get(r, 0)?),
        run_id: RunId::from_stored(get(r, 1)?),
        status: parsed(r, 2)?,
        run_status: parsed(r, 3)?,
        attempt_number: count(r, 4)?,
        description: get(r, 5)?,
        worker_id: get::<Option<String>>(r, 6)?.map(WorkerId::from_stored),
        created_at: ts(r, 7)?,
    })
}
