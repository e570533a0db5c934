//! The worker protocol: how a worker process registers its tasks, takes runs, reports progress
//! and completes attempts. `docs/worker-protocol.md` describes the exchange; these are its bodies.
//!
//! Every call carries the environment's secret key as a bearer token. Calls about a run carry the
//! snapshot id the worker was given; a call with a snapshot id that is no longer current changes
//! nothing and is told so, which is how a worker that lost a run finds out.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stint_types::metadata::Operation;
use stint_types::{ExecutionStatus, RetryOptions, RunStatus, TaskRunError};

/// `POST /api/v1/workers/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    /// The worker's build label, free text (1–64 characters). Part of what the server's version
    /// of the registration is made from: a new label makes a new version even with the same tasks.
    pub version: String,
    /// The SDK that built the worker, for diagnostics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// The tasks this worker can run.
    pub tasks: Vec<TaskDeclaration>,
    /// The environments a worker pool serves, by slug (`dev`, `staging`, `prod`, `preview`), when
    /// it registers with a personal access token of their project; it then takes their runs in
    /// turn. Absent for a worker registering with an environment's secret key, which serves that
    /// environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

/// A task a worker offers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDeclaration {
    /// The task's identifier.
    pub id: String,
    /// The task's queue; by default its own queue `task/<id>` with no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueDeclaration>,
    /// How failed attempts are retried; Trigger.dev's defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOptions>,
    /// Seconds an attempt may run before it is stopped with `MAX_DURATION_EXCEEDED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
    /// Seconds a run of the task may wait for its first attempt once queued before it expires,
    /// when its trigger sets no `ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The task's declarative schedule: the server keeps one `DECLARATIVE` schedule of the task
    /// in step with it in each environment it names, as of the environment's current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleDeclaration>,
}

/// A schedule a task declares in its code (Trigger.dev's `schedules.task({cron})`): the task is
/// triggered at each time of the expression with a [`crate::schedules::SchedulePayload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleDeclaration {
    /// A 5-field cron expression (minute, hour, day of month, month, day of week).
    pub cron: String,
    /// The IANA time zone the expression is read in; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The environments it fires in, by slug (`dev`, `staging`, `prod`, `preview`) or kind
    /// (`PRODUCTION`, …); every environment the task is registered in when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
}

/// A queue a task declares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueDeclaration {
    /// The queue's name.
    pub name: String,
    /// Most runs of this queue executing at once; unlimited when absent. Runs with a
    /// concurrency key get this limit for each key, as Trigger.dev gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<u32>,
    /// Most runs of all the queue's concurrency keys together executing at once; unlimited when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined_concurrency_limit: Option<u32>,
    /// Most runs of this queue starting per period; no limit when absent. Runs over it stay
    /// queued and start when it allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// A limit on how often a queue's runs start: at most `limit` starts per `period_ms`, for the
/// whole queue or, with `per_key`, for each concurrency key (and the runs without one) on its own.
/// `limit` starts may happen at once after a quiet period, then one every `period_ms / limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Most starts per period, 1 to 100,000.
    pub limit: u32,
    /// The period in ms, 1,000 (one second) to 86,400,000 (one day).
    pub period_ms: u64,
    /// Whether each concurrency key gets the limit on its own; `false` when absent.
    #[serde(default)]
    pub per_key: bool,
}

/// Response of a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// The id to use in the worker's later calls.
    pub worker_id: String,
    /// How often to send heartbeats for executing runs, in ms. Derived from the server's stall
    /// timeout so a run is never declared stalled while its worker is healthy.
    pub heartbeat_interval_ms: u64,
    /// The version the server gave this registration in its environment, `YYYYMMDD.N`: runs it
    /// starts first lock to it. For a worker of one environment; absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A worker pool's version in each environment it serves, in the order they were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<EnvironmentVersion>>,
}

/// A worker pool's version in one of its environments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVersion {
    /// The environment's slug (`dev`, `staging`, `prod`, `preview`).
    pub environment: String,
    /// The pool's version there, `YYYYMMDD.N`.
    pub version: String,
}

/// `POST /api/v1/workers/{workerId}/dequeue`: take runs and start their attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DequeueRequest {
    /// Most runs to take (1–1000).
    pub max_runs: u32,
    /// How long to wait for a run when none is ready, in ms (0–30000). The call returns as soon
    /// as at least one run was taken.
    #[serde(default)]
    pub wait_ms: u64,
}

/// Response of a dequeue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DequeueResponse {
    /// The runs taken, each with an attempt started.
    pub runs: Vec<DequeuedRun>,
}

/// A run handed to a worker with a fresh attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DequeuedRun {
    /// The run's id.
    pub run_id: String,
    /// The snapshot id to send with every later call about this attempt.
    pub snapshot_id: String,
    /// The task to run.
    pub task_identifier: String,
    /// The attempt's number, from 1.
    pub attempt_number: u32,
    /// The attempts the run may have in all.
    pub max_attempts: u32,
    /// The payload, decoded when it is JSON.
    pub payload: Value,
    /// The payload's content type.
    pub payload_type: String,
    /// The run's tags.
    pub tags: Vec<String>,
    /// The run's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The queue the run was taken from.
    pub queue: String,
    /// The run's concurrency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// Seconds the attempt may run, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
    /// Whether the run is a test run.
    pub is_test: bool,
    /// When the run was created, RFC 3339.
    pub created_at: String,
    /// The run's journal: its durable calls so far, in call order, for a run that goes on after
    /// a suspension or a failed attempt. A replaying task gets these results instead of making
    /// the calls again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<crate::durable::JournalEntry>,
}

/// `POST /api/v1/workers/{workerId}/heartbeat`: the worker is alive and still running these
/// attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// The attempts in progress.
    pub runs: Vec<RunRef>,
}

/// A run and the snapshot its holder was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRef {
    /// The run's id.
    pub run_id: String,
    /// The snapshot id the worker holds.
    pub snapshot_id: String,
}

/// Response of a heartbeat: what to do with each attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// One entry per run in the request, in the same order.
    pub runs: Vec<HeartbeatAction>,
}

/// What a worker should do with one attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAction {
    /// The run's id.
    pub run_id: String,
    /// The instruction.
    pub action: RunAction,
    /// The run's current snapshot id. After `cancel`, send the completion with this id; with
    /// `continue`, hold this id from now on (it changes when a wait completes in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

/// Instruction for an attempt in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunAction {
    /// Keep going.
    Continue,
    /// The run was cancelled: stop the task and complete with `TASK_RUN_CANCELLED`, using the
    /// snapshot id given alongside.
    Cancel,
    /// The attempt is no longer this worker's (it stalled and was retried, or the run ended):
    /// stop the task and drop its result.
    Stop,
}

/// `POST /api/v1/workers/{workerId}/complete`: results of finished attempts, several at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteRequest {
    /// The results, each judged on its own.
    pub completions: Vec<Completion>,
}

/// The result of one attempt: `ok: true` with an `output`, or `ok: false` with an `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Completion {
    /// The run's id.
    pub run_id: String,
    /// The snapshot id the worker holds.
    pub snapshot_id: String,
    /// Whether the task succeeded.
    pub ok: bool,
    /// The output of a successful attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The error of a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskRunError>,
    /// Do not retry a failed attempt, whatever the retry settings say.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_retrying: bool,
    /// Changes of the run's metadata the attempt made and has not sent yet (Trigger.dev's
    /// `flushedMetadata`): applied with the completion, dropped when it is stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata_operations: Vec<Operation>,
}

impl Completion {
    /// A successful completion.
    pub fn success(run: RunRef, output: Value) -> Completion {
        Completion {
            run_id: run.run_id,
            snapshot_id: run.snapshot_id,
            ok: true,
            output: Some(output),
            error: None,
            skip_retrying: false,
            metadata_operations: Vec::new(),
        }
    }

    /// A failed completion.
    pub fn failure(run: RunRef, error: TaskRunError, skip_retrying: bool) -> Completion {
        Completion {
            run_id: run.run_id,
            snapshot_id: run.snapshot_id,
            ok: false,
            output: None,
            error: Some(error),
            skip_retrying,
            metadata_operations: Vec::new(),
        }
    }

    /// The outcome, checking that `ok` agrees with the fields that are set.
    pub fn outcome(&self) -> Result<AttemptOutcome, String> {
        match (self.ok, &self.output, &self.error) {
            (true, output, None) => Ok(AttemptOutcome::Success { output: output.clone().unwrap_or(Value::Null) }),
            (false, None, Some(error)) => {
                Ok(AttemptOutcome::Failure { error: error.clone(), skip_retrying: self.skip_retrying })
            }
            (true, _, Some(_)) => Err(format!("completion of {} has ok: true and an error", self.run_id)),
            (false, Some(_), _) => Err(format!("completion of {} has ok: false and an output", self.run_id)),
            (false, None, None) => Err(format!("completion of {} has ok: false but no error", self.run_id)),
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// The task returned a value.
    Success {
        /// The output.
        output: Value,
    },
    /// The task failed.
    Failure {
        /// The error.
        error: TaskRunError,
        /// Do not retry, whatever the retry settings say.
        skip_retrying: bool,
    },
}

/// `POST /api/v1/workers/{workerId}/metadata`: changes of the metadata of runs the worker is
/// executing, sent while they run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataRequest {
    /// The changes, each judged on its own.
    pub runs: Vec<RunMetadata>,
}

/// Changes of one run's metadata, fenced on the snapshot the worker holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunMetadata {
    /// The run's id.
    pub run_id: String,
    /// The snapshot id the worker holds.
    pub snapshot_id: String,
    /// The operations, in order.
    pub operations: Vec<Operation>,
}

/// Response of a metadata call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataResponse {
    /// One entry per run in the request, in the same order.
    pub runs: Vec<MetadataResult>,
}

/// What became of one run's metadata changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataResult {
    /// The run's id.
    pub run_id: String,
    /// What happened.
    pub outcome: MetadataOutcome,
    /// Why the operations were refused, for `INVALID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What became of one run's metadata changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MetadataOutcome {
    /// The metadata changed.
    Updated,
    /// The worker no longer holds the run at that snapshot; nothing changed.
    Stale,
    /// No such run in the worker's environments; nothing changed.
    NotFound,
    /// The operations cannot apply (a forbidden or unreachable key, a result over 256 KB);
    /// nothing changed.
    Invalid,
}

/// Response of a completion call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResponse {
    /// One entry per completion, in the same order.
    pub results: Vec<CompletionResult>,
}

/// What became of one completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionResult {
    /// The run's id.
    pub run_id: String,
    /// What happened.
    pub outcome: CompletionOutcome,
    /// The run's status afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// The run's current snapshot, when the completion was stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_snapshot: Option<SnapshotRef>,
}

/// What became of one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompletionOutcome {
    /// The run has ended.
    RunFinished,
    /// The run was queued again for another attempt.
    RetryQueued,
    /// The snapshot id was not current; nothing changed.
    Stale,
    /// No such run in this environment; nothing changed.
    NotFound,
}

/// A snapshot's id and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRef {
    /// The snapshot id.
    pub id: String,
    /// Its execution status.
    pub execution_status: ExecutionStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completions_carry_output_or_error() {
        let success: Completion = serde_json::from_value(
            json!({"runId": "run_x", "snapshotId": "snapshot_y", "ok": true, "output": {"a": 1}}),
        )
        .unwrap();
        assert_eq!(success.outcome().unwrap(), AttemptOutcome::Success { output: json!({"a": 1}) });
        let failure: Completion = serde_json::from_value(json!({
            "runId": "run_x", "snapshotId": "snapshot_y", "ok": false,
            "error": {"type": "STRING_ERROR", "raw": "boom"}
        }))
        .unwrap();
        assert!(matches!(failure.outcome().unwrap(), AttemptOutcome::Failure { skip_retrying: false, .. }));
        let confused: Completion =
            serde_json::from_value(json!({"runId": "run_x", "snapshotId": "s", "ok": false})).unwrap();
        assert!(confused.outcome().unwrap_err().contains("no error"));
    }
}
