//! A fake Stint server speaking the worker protocol from memory, scripted by each test, so the
//! SDK's runtime loop can be tested without the real server.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};
use stint_sdk::protocol::types::ExecutionStatus;
use stint_sdk::protocol::worker::{
    CompleteRequest, CompleteResponse, Completion, CompletionOutcome, CompletionResult, DequeueRequest,
    DequeueResponse, DequeuedRun, HeartbeatAction, HeartbeatRequest, HeartbeatResponse, RegisterRequest,
    RegisterResponse, RunAction, RunRef, SnapshotRef,
};
use tokio::sync::Notify;

/// The key the fake server accepts.
pub const KEY: &str = "tr_dev_test";

/// What the fake server has seen, and how it is told to answer.
#[derive(Default)]
pub struct Fake {
    queue: Mutex<VecDeque<DequeuedRun>>,
    queued: Notify,
    /// Every completion received, in order.
    pub completions: Mutex<Vec<Completion>>,
    /// The size of each completion call.
    pub completion_batches: Mutex<Vec<usize>>,
    completed: Notify,
    /// Every heartbeat received.
    pub heartbeats: Mutex<Vec<Vec<RunRef>>>,
    heartbeat_seen: Notify,
    /// Answers to give to heartbeats, by run id.
    pub heartbeat_actions: Mutex<HashMap<String, (RunAction, Option<String>)>>,
    /// Runs whose next completion is answered STALE with this snapshot.
    pub stale_once: Mutex<HashMap<String, SnapshotRef>>,
    /// Registrations to refuse with 503 before accepting one.
    pub register_failures: AtomicU32,
    /// Registrations accepted.
    pub registrations: AtomicU32,
    /// The last registration body.
    pub registered: Mutex<Option<RegisterRequest>>,
    /// Answer the next dequeue with 404, as for a forgotten worker.
    pub forget_worker: AtomicBool,
    /// Largest `maxRuns` asked for.
    pub max_runs_seen: AtomicU32,
    /// Dequeue calls answered.
    pub dequeue_calls: AtomicU32,
}

impl Fake {
    /// Starts a fake server; returns its URL and state.
    pub async fn start() -> (String, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        let app = Router::new()
            .route("/api/v1/workers/register", post(register))
            .route("/api/v1/workers/{id}/dequeue", post(dequeue))
            .route("/api/v1/workers/{id}/heartbeat", post(heartbeat))
            .route("/api/v1/workers/{id}/complete", post(complete))
            .with_state(Arc::clone(&fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, fake)
    }

    /// Queues runs for dequeue.
    pub fn push(&self, runs: impl IntoIterator<Item = DequeuedRun>) {
        self.queue.lock().extend(runs);
        self.queued.notify_waiters();
    }

    /// Waits until at least `n` completions arrived, failing the test after 20 s.
    pub async fn wait_for_completions(&self, n: usize) -> Vec<Completion> {
        let waiting = async {
            loop {
                let notified = self.completed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.completions.lock().len() >= n {
                    return self.completions.lock().clone();
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), waiting).await.expect("completions did not arrive in time")
    }

    /// Waits until a heartbeat mentioning `run_id` arrived, failing the test after 20 s.
    pub async fn wait_for_heartbeat(&self, run_id: &str) {
        let waiting = async {
            loop {
                let notified = self.heartbeat_seen.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.heartbeats.lock().iter().flatten().any(|run| run.run_id == run_id) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), waiting).await.expect("no heartbeat in time");
    }
}

/// A run of `task` with this payload; its snapshot id is `s_<run_id>`.
pub fn run(run_id: &str, task: &str, payload: Value) -> DequeuedRun {
    DequeuedRun {
        run_id: run_id.into(),
        snapshot_id: format!("s_{run_id}"),
        task_identifier: task.into(),
        attempt_number: 1,
        max_attempts: 3,
        payload,
        payload_type: "application/json".into(),
        tags: Vec::new(),
        metadata: None,
        queue: format!("task/{task}"),
        concurrency_key: None,
        max_duration: None,
        is_test: false,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {KEY}");
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": "wrong key"}))).into_response()
}

async fn register(State(fake): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<RegisterRequest>) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let failures_left = fake.register_failures.load(Ordering::SeqCst);
    if failures_left > 0 {
        fake.register_failures.store(failures_left - 1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")], Json(json!({"error": "busy"})))
            .into_response();
    }
    let n = fake.registrations.fetch_add(1, Ordering::SeqCst) + 1;
    *fake.registered.lock() = Some(body);
    Json(RegisterResponse { worker_id: format!("worker_{n}"), heartbeat_interval_ms: 50 }).into_response()
}

async fn dequeue(
    State(fake): State<Arc<Fake>>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<DequeueRequest>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if fake.forget_worker.swap(false, Ordering::SeqCst) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such worker"}))).into_response();
    }
    fake.max_runs_seen.fetch_max(body.max_runs, Ordering::SeqCst);
    fake.dequeue_calls.fetch_add(1, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(body.wait_ms);
    loop {
        let notified = fake.queued.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let runs: Vec<DequeuedRun> = {
            let mut queue = fake.queue.lock();
            let n = queue.len().min(body.max_runs as usize);
            queue.drain(..n).collect()
        };
        if !runs.is_empty() {
            return Json(DequeueResponse { runs }).into_response();
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Json(DequeueResponse { runs: Vec::new() }).into_response();
        }
    }
}

async fn heartbeat(
    State(fake): State<Arc<Fake>>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<HeartbeatRequest>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let actions = fake.heartbeat_actions.lock();
    let runs = body
        .runs
        .iter()
        .map(|run| {
            let (action, snapshot_id) = actions.get(&run.run_id).cloned().unwrap_or((RunAction::Continue, None));
            HeartbeatAction { run_id: run.run_id.clone(), action, snapshot_id }
        })
        .collect();
    drop(actions);
    fake.heartbeats.lock().push(body.runs);
    fake.heartbeat_seen.notify_waiters();
    Json(HeartbeatResponse { runs }).into_response()
}

async fn complete(
    State(fake): State<Arc<Fake>>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CompleteRequest>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let results = body
        .completions
        .iter()
        .map(|completion| match fake.stale_once.lock().remove(&completion.run_id) {
            Some(current) => CompletionResult {
                run_id: completion.run_id.clone(),
                outcome: CompletionOutcome::Stale,
                status: None,
                current_snapshot: Some(current),
            },
            None => CompletionResult {
                run_id: completion.run_id.clone(),
                outcome: CompletionOutcome::RunFinished,
                status: None,
                current_snapshot: None,
            },
        })
        .collect();
    fake.completion_batches.lock().push(body.completions.len());
    fake.completions.lock().extend(body.completions);
    fake.completed.notify_waiters();
    Json(CompleteResponse { results }).into_response()
}

/// A snapshot in PENDING_CANCEL, as a server reports a run cancelled meanwhile.
pub fn pending_cancel(id: &str) -> SnapshotRef {
    SnapshotRef { id: id.into(), execution_status: ExecutionStatus::PendingCancel }
}
