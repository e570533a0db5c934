//! The table traits of `stint-store`, implemented on PostgreSQL.

/// Every column of `runs`, in the order [`rows::run_from_row`] reads them, as a literal so that
/// statements naming them stay `&'static str`.
macro_rules! run_columns {
    () => {
        "id, env_id, task_id, queue_id, queue_name, status, snapshot_id, execution_status, attempt_number, \
         max_attempts, retry, max_duration, payload, payload_type, output, output_type, error, tags, metadata, \
         concurrency_key, priority_ms, is_test, machine, worker_id, version, heartbeat_deadline, \
         attempt_started_at, duration_ms, replayed_from, created_at, updated_at, started_at, finished_at, queue_score, \
         idempotency_key, idempotency_key_expires_at, delay_until, ttl_secs, ttl_expires_at, debounce_key, \
         parent_run_id, root_run_id, depth, batch_id, batch_index, resuming"
    };
}

mod batch;
mod batches;
pub(crate) mod leases;
mod limits;
mod options;
mod queues;
mod rates;
mod rows;
mod runs;
mod schedules;
mod tenancy;
mod waitpoints;
mod workers;
