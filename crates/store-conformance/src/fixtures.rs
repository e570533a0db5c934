//! Rows for the cases, built with plain defaults.

use std::sync::atomic::{AtomicU64, Ordering};

use stint_store::{
    EnvironmentRow, OrganizationRow, ProjectRow, QueueRow, RunRow, ScheduleRow, SnapshotRow, WaitpointRow,
};
use stint_types::{
    BatchId, EnvId, EnvironmentType, ExecutionStatus, OrgId, ProjectId, QueueId, RunId, RunStatus, ScheduleId,
    SnapshotId, Timestamp, WaitpointId, WaitpointKind, WaitpointStatus,
};

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A number no other call in this process got, to make ids unique and increasing.
fn next() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh run id, later than every id made before it.
pub fn run_id() -> RunId {
    RunId::from_parts(1_000_000 + next(), 0)
}

/// A fresh batch id, later than every id made before it.
pub fn batch_id() -> BatchId {
    BatchId::from_parts(1_000_000 + next(), 0)
}

/// A fresh snapshot id, later than every id made before it.
pub fn snapshot_id() -> SnapshotId {
    SnapshotId::from_parts(1_000_000 + next(), 0)
}

/// A fresh waitpoint id, later than every id made before it.
pub fn waitpoint_id() -> WaitpointId {
    WaitpointId::from_parts(1_000_000 + next(), 0)
}

/// A fresh schedule id, later than every id made before it.
pub fn schedule_id() -> ScheduleId {
    ScheduleId::from_parts(1_000_000 + next(), 0)
}

/// An active `IMPERATIVE` schedule of `task` in `env_id`, every minute in UTC, next due at
/// `next_run`, without an external id or a dedup key.
pub fn schedule(env_id: &EnvId, task: &str, next_run: Option<i64>) -> ScheduleRow {
    ScheduleRow {
        id: schedule_id(),
        env_id: env_id.clone(),
        kind: "IMPERATIVE".into(),
        task_id: task.to_string(),
        cron: "* * * * *".into(),
        timezone: "UTC".into(),
        external_id: None,
        dedup_key: None,
        active: true,
        next_run: next_run.map(Timestamp),
        due_at: next_run.map(Timestamp),
        last_run: None,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    }
}

/// A pending waitpoint of `kind` in `env_id`, made at `created_at`, with a random key.
pub fn waitpoint(env_id: &EnvId, kind: WaitpointKind, created_at: i64) -> WaitpointRow {
    let id = waitpoint_id();
    WaitpointRow {
        idempotency_key: format!("random-{id}"),
        id,
        env_id: env_id.clone(),
        kind,
        status: WaitpointStatus::Pending,
        user_key: false,
        idempotency_key_expires_at: None,
        inactive_idempotency_key: None,
        completed_by_run_id: None,
        completed_by_batch_id: None,
        completed_after: None,
        completed_at: None,
        output: None,
        output_type: None,
        output_is_error: false,
        tags: Vec::new(),
        created_at: Timestamp(created_at),
    }
}

/// An organization, project and environment, each new.
pub fn tenancy() -> (OrganizationRow, ProjectRow, EnvironmentRow) {
    let n = next();
    let org = OrganizationRow {
        id: OrgId::from_parts(n, 1),
        title: format!("Org {n}"),
        slug: format!("org-{n}"),
        created_at: Timestamp(1),
    };
    let project = ProjectRow {
        id: ProjectId::from_parts(n, 2),
        org_id: org.id.clone(),
        name: format!("Project {n}"),
        reference: format!("proj_ref{n}"),
        created_at: Timestamp(1),
    };
    let env = EnvironmentRow {
        id: EnvId::from_parts(n, 3),
        project_id: project.id.clone(),
        org_id: org.id.clone(),
        kind: EnvironmentType::Production,
        created_at: Timestamp(1),
    };
    (org, project, env)
}

/// A new environment id that no row uses.
pub fn env_id() -> EnvId {
    EnvId::from_parts(next(), 9)
}

/// A queue in `env_id` with a limit.
pub fn queue(env_id: &EnvId, name: &str, limit: Option<u32>) -> QueueRow {
    QueueRow {
        id: QueueId::from_parts(next(), 4),
        env_id: env_id.clone(),
        name: name.to_string(),
        concurrency_limit: limit,
        limit_override: None,
        combined_limit: None,
        paused: false,
        running: 0,
        keyed_running: 0,
        created_at: Timestamp(1),
        rate_limit: None,
        rate_override: None,
    }
}

/// A run of `task` waiting in `queue` with score `created_at`, with its first snapshot.
pub fn queued_run(queue: &QueueRow, task: &str, created_at: i64) -> (RunRow, SnapshotRow) {
    let id = run_id();
    let snapshot = snapshot_id();
    let run = RunRow {
        id: id.clone(),
        env_id: queue.env_id.clone(),
        task_id: task.to_string(),
        queue_id: queue.id.clone(),
        queue_name: queue.name.clone(),
        status: RunStatus::Queued,
        snapshot_id: snapshot.clone(),
        execution_status: ExecutionStatus::Queued,
        attempt_number: 0,
        max_attempts: None,
        retry: None,
        max_duration: None,
        payload: "{\"n\":1}".into(),
        payload_type: "application/json".into(),
        output: None,
        output_type: None,
        error: None,
        tags: Vec::new(),
        metadata: None,
        concurrency_key: None,
        priority_ms: 0,
        queue_score: Some(created_at),
        is_test: false,
        machine: None,
        worker_id: None,
        version: None,
        heartbeat_deadline: None,
        attempt_started_at: None,
        duration_ms: 0,
        replayed_from: None,
        idempotency_key: None,
        idempotency_key_expires_at: None,
        delay_until: None,
        ttl_secs: None,
        ttl_expires_at: None,
        debounce_key: None,
        parent_run_id: None,
        root_run_id: None,
        depth: 0,
        batch_id: None,
        batch_index: None,
        resuming: false,
        created_at: Timestamp(created_at),
        updated_at: Timestamp(created_at),
        started_at: None,
        finished_at: None,
    };
    let snapshot = SnapshotRow {
        id: snapshot,
        run_id: id,
        status: ExecutionStatus::Queued,
        run_status: RunStatus::Queued,
        attempt_number: 0,
        description: "Run was queued".into(),
        worker_id: None,
        created_at: Timestamp(created_at),
    };
    (run, snapshot)
}

/// The next state of `run`: a new snapshot with `status`, out of its queue, and the snapshot row
/// for it.
pub fn moved(run: &RunRow, status: ExecutionStatus, run_status: RunStatus, at: i64) -> (RunRow, SnapshotRow) {
    let mut next = run.clone();
    next.snapshot_id = snapshot_id();
    next.execution_status = status;
    next.status = run_status;
    next.updated_at = Timestamp(at);
    next.queue_score = None;
    let snapshot = SnapshotRow {
        id: next.snapshot_id.clone(),
        run_id: run.id.clone(),
        status,
        run_status,
        attempt_number: next.attempt_number,
        description: format!("moved to {status}"),
        worker_id: next.worker_id.clone(),
        created_at: Timestamp(at),
    };
    (next, snapshot)
}
