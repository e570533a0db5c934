//! The worker runtime's side of durable calls, against a small fake server that speaks the worker
//! protocol and answers as each test scripts it: a suspended run frees its slot without a
//! completion and is replayed from its journal, a wait that completes in place goes on under the
//! new snapshot, a STOP ends the attempt, a heartbeat's new snapshot is adopted. The real server's
//! side of these calls is tested black-box elsewhere.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};
use stint_sdk::protocol::durable::{
    CallOutcome, CallResponse, ContinueAction, ContinueRequest, ContinueResponse, JournalEntry, StepRequest,
    WaitRequest,
};
use stint_sdk::protocol::types::JournalKind;
use stint_sdk::protocol::worker::{
    CompleteRequest, CompleteResponse, Completion, CompletionOutcome, CompletionResult, DequeueRequest,
    DequeueResponse, DequeuedRun, HeartbeatAction, HeartbeatRequest, HeartbeatResponse, MetadataOutcome,
    MetadataRequest, MetadataResponse, MetadataResult, RegisterResponse, RunAction, RunRef,
};
use stint_sdk::{DurableError, Error, Task, TaskContext, TaskError, Worker};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// How long a test waits for something before failing.
const PATIENCE: Duration = Duration::from_secs(20);

/// A continue answer, given once a heartbeat named `after_heartbeat_on` if set, after which
/// `then_queue` is handed to the next dequeue.
struct Resume {
    after_heartbeat_on: Option<&'static str>,
    answer: ContinueResponse,
    then_queue: Option<DequeuedRun>,
}

/// The fake server's state: what it was sent, and what it answers next.
#[derive(Default)]
struct Fake {
    queue: Mutex<VecDeque<DequeuedRun>>,
    queued: Notify,
    waits: Mutex<VecDeque<Result<CallResponse, (StatusCode, String)>>>,
    resumes: Mutex<VecDeque<Resume>>,
    /// A heartbeat about this run answers CONTINUE with this snapshot id.
    heartbeat_snapshot: Mutex<Option<(&'static str, &'static str)>>,
    steps: Mutex<Vec<StepRequest>>,
    heartbeats: Mutex<Vec<RunRef>>,
    metadata: Mutex<Vec<MetadataRequest>>,
    completions: Mutex<Vec<Completion>>,
    registrations: AtomicUsize,
    changed: Notify,
}

impl Fake {
    fn record<T>(&self, list: &Mutex<Vec<T>>, item: T) {
        list.lock().push(item);
        self.changed.notify_waiters();
    }

    fn queue(&self, run: DequeuedRun) {
        self.queue.lock().push_back(run);
        self.queued.notify_one();
    }

    /// Waits until `check` gives something, failing the test after [`PATIENCE`].
    async fn until<T>(&self, what: &str, check: impl Fn(&Fake) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = check(self) {
                return found;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("{what}: not within {PATIENCE:?}");
            }
        }
    }

    fn heartbeat_named(&self, snapshot_id: &str) -> bool {
        self.heartbeats.lock().iter().any(|run| run.snapshot_id == snapshot_id)
    }
}

type Shared = State<Arc<Fake>>;

async fn register(State(fake): Shared) -> Json<RegisterResponse> {
    fake.registrations.fetch_add(1, Ordering::Relaxed);
    Json(RegisterResponse { worker_id: "worker_1".into(), heartbeat_interval_ms: 100, version: None, versions: None })
}

async fn dequeue(State(fake): Shared, Json(request): Json<DequeueRequest>) -> Json<DequeueResponse> {
    let deadline = Instant::now() + Duration::from_millis(request.wait_ms);
    loop {
        if let Some(run) = fake.queue.lock().pop_front() {
            return Json(DequeueResponse { runs: vec![run] });
        }
        if tokio::time::timeout_at(deadline, fake.queued.notified()).await.is_err() {
            return Json(DequeueResponse { runs: Vec::new() });
        }
    }
}

async fn heartbeat(State(fake): Shared, Json(request): Json<HeartbeatRequest>) -> Json<HeartbeatResponse> {
    let moved = *fake.heartbeat_snapshot.lock();
    let runs = request
        .runs
        .iter()
        .map(|run| HeartbeatAction {
            run_id: run.run_id.clone(),
            action: RunAction::Continue,
            snapshot_id: moved.filter(|(id, _)| *id == run.run_id).map(|(_, snapshot)| snapshot.to_string()),
        })
        .collect();
    for run in request.runs {
        fake.record(&fake.heartbeats, run);
    }
    Json(HeartbeatResponse { runs })
}

async fn complete(State(fake): Shared, Json(request): Json<CompleteRequest>) -> Json<CompleteResponse> {
    let mut results = Vec::new();
    for completion in request.completions {
        results.push(CompletionResult {
            run_id: completion.run_id.clone(),
            outcome: CompletionOutcome::RunFinished,
            status: None,
            current_snapshot: None,
        });
        fake.record(&fake.completions, completion);
    }
    Json(CompleteResponse { results })
}

async fn metadata(State(fake): Shared, Json(request): Json<MetadataRequest>) -> Json<MetadataResponse> {
    let runs = request
        .runs
        .iter()
        .map(|run| MetadataResult { run_id: run.run_id.clone(), outcome: MetadataOutcome::Updated, error: None })
        .collect();
    fake.record(&fake.metadata, request);
    Json(MetadataResponse { runs })
}

async fn steps(State(fake): Shared, Json(request): Json<StepRequest>) -> Json<CallResponse> {
    let entry = entry(request.seq, JournalKind::Step, &request.name, Some(request.output.clone()));
    fake.record(&fake.steps, request);
    Json(CallResponse { outcome: CallOutcome::Completed, snapshot_id: None, entry: Some(entry), error: None })
}

async fn waits(
    State(fake): Shared,
    Json(_request): Json<WaitRequest>,
) -> Result<Json<CallResponse>, (StatusCode, Json<Value>)> {
    let answer = fake.waits.lock().pop_front().expect("the test scripts every wait");
    fake.changed.notify_waiters();
    answer.map(Json).map_err(|(status, error)| (status, Json(json!({"error": error}))))
}

async fn resume(State(fake): Shared, Json(_request): Json<ContinueRequest>) -> Json<ContinueResponse> {
    let resume = fake.resumes.lock().pop_front().expect("the test scripts every continue");
    if let Some(snapshot_id) = resume.after_heartbeat_on {
        fake.until("a heartbeat naming the blocked snapshot", |fake| fake.heartbeat_named(snapshot_id).then_some(()))
            .await;
    }
    if let Some(run) = resume.then_queue {
        fake.queue(run);
    }
    Json(resume.answer)
}

async fn disconnect(Path(id): Path<String>) -> Json<Value> {
    Json(json!({"workerId": id}))
}

/// Serves the fake on a free port of 127.0.0.1; returns its URL.
async fn serve(fake: &Arc<Fake>) -> String {
    let workers = "/api/v1/workers/{id}";
    let router = Router::new()
        .route("/api/v1/workers/register", post(register))
        .route(&format!("{workers}/dequeue"), post(dequeue))
        .route(&format!("{workers}/heartbeat"), post(heartbeat))
        .route(&format!("{workers}/complete"), post(complete))
        .route(&format!("{workers}/metadata"), post(metadata))
        .route(&format!("{workers}/disconnect"), post(disconnect))
        .route(&format!("{workers}/runs/{{run}}/steps"), post(steps))
        .route(&format!("{workers}/runs/{{run}}/waits"), post(waits))
        .route(&format!("{workers}/runs/{{run}}/continue"), post(resume))
        .with_state(Arc::clone(fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn entry(seq: u32, kind: JournalKind, name: &str, output: Option<Value>) -> JournalEntry {
    JournalEntry {
        seq,
        kind,
        name: name.into(),
        completed: output.is_some(),
        output,
        is_error: false,
        waitpoint_id: None,
    }
}

fn run(run_id: &str, snapshot_id: &str, task: &str, journal: Vec<JournalEntry>) -> DequeuedRun {
    DequeuedRun {
        run_id: run_id.into(),
        snapshot_id: snapshot_id.into(),
        task_identifier: task.into(),
        attempt_number: 1,
        max_attempts: 3,
        payload: Value::Null,
        payload_type: "application/json".into(),
        tags: Vec::new(),
        metadata: None,
        queue: format!("task/{task}"),
        concurrency_key: None,
        max_duration: None,
        is_test: false,
        created_at: "2026-01-01T00:00:00Z".into(),
        journal,
    }
}

fn waiting(snapshot_id: &str) -> Result<CallResponse, (StatusCode, String)> {
    Ok(CallResponse { outcome: CallOutcome::Waiting, snapshot_id: Some(snapshot_id.into()), entry: None, error: None })
}

fn answer(action: ContinueAction) -> ContinueResponse {
    ContinueResponse { action, snapshot_id: None, entry: None }
}

/// A worker of the fake taking one run at a time, so a second run starts only once the first
/// has let go of its slot. Stopped when the returned sender is dropped.
fn start(url: &str, tasks: Vec<Task>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), Error>>) {
    let worker = tasks.into_iter().fold(
        Worker::new(url, "tr_dev_durabletests").concurrency(1).dequeue_wait(Duration::from_millis(500)),
        Worker::task,
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.shutdown_grace(Duration::from_secs(1)).run_until(async {
        let _ = stopped.await;
    }));
    (stop, handle)
}

/// The completions of `run_id` sent so far.
fn completions_of(fake: &Fake, run_id: &str) -> Vec<Completion> {
    fake.completions.lock().iter().filter(|completion| completion.run_id == run_id).cloned().collect()
}

#[tokio::test]
async fn a_suspended_run_frees_its_slot_without_a_completion_and_is_replayed_from_its_journal() {
    let fake = Arc::new(Fake::default());
    let url = serve(&fake).await;
    let prepared = Arc::new(AtomicUsize::new(0));
    let task = Task::new("durable", {
        let prepared = Arc::clone(&prepared);
        move |ctx: TaskContext, (): ()| {
            let prepared = Arc::clone(&prepared);
            async move {
                let n: usize =
                    ctx.step("prepare", || async move { Ok(prepared.fetch_add(1, Ordering::SeqCst) + 10) }).await?;
                ctx.metadata().set("stage", "waiting")?;
                ctx.wait_for(Duration::from_secs(3_600)).await?;
                Ok::<_, TaskError>(n + 1)
            }
        }
    });
    // The replay's journal: the step and the wait, both completed, as the server would hand it.
    let replay = run(
        "run_1",
        "snapshot_3",
        "durable",
        vec![
            entry(0, JournalKind::Step, "prepare", Some(json!(10))),
            entry(1, JournalKind::Wait, "2026-01-01T01:00:00.000Z", Some(Value::Null)),
        ],
    );
    fake.waits.lock().push_back(waiting("snapshot_2"));
    fake.resumes.lock().push_back(Resume {
        after_heartbeat_on: None,
        answer: answer(ContinueAction::Suspend),
        then_queue: Some(replay),
    });
    fake.queue(run("run_1", "snapshot_1", "durable", Vec::new()));
    let (_stop, _worker) = start(&url, vec![task]);

    let completions = fake
        .until("the replay's completion", |fake| Some(completions_of(fake, "run_1")).filter(|c| !c.is_empty()))
        .await;
    assert_eq!(completions.len(), 1, "the suspended attempt sent no completion");
    assert_eq!(completions[0].snapshot_id, "snapshot_3");
    assert_eq!(completions[0].output, Some(json!(11)), "the replay got the recorded step output");
    assert_eq!(prepared.load(Ordering::SeqCst), 1, "the step ran once, in the first attempt");
    let steps = fake.steps.lock().clone();
    assert_eq!(steps.iter().map(|s| (s.seq, s.snapshot_id.as_str())).collect::<Vec<_>>(), [(0, "snapshot_1")]);
    // The metadata change made before the wait reached the server before the run blocked.
    let metadata = fake.metadata.lock();
    assert_eq!((metadata[0].runs[0].snapshot_id.as_str(), metadata[0].runs[0].operations.len()), ("snapshot_1", 1));
}

#[tokio::test]
async fn a_wait_completed_in_place_goes_on_under_the_new_snapshot() {
    let fake = Arc::new(Fake::default());
    let url = serve(&fake).await;
    let task = Task::new("approval", |ctx: TaskContext, (): ()| async move {
        let decision: String = ctx.wait_for_token("waitpoint_t").await??;
        Ok::<_, TaskError>(decision)
    });
    let mut completed = entry(0, JournalKind::Token, "waitpoint_t", Some(json!("approved")));
    completed.waitpoint_id = Some("waitpoint_t".into());
    fake.waits.lock().push_back(waiting("snapshot_2"));
    fake.resumes.lock().extend([
        // Heartbeats go on while the run is blocked, naming the blocked snapshot.
        Resume { after_heartbeat_on: Some("snapshot_2"), answer: answer(ContinueAction::Wait), then_queue: None },
        Resume {
            after_heartbeat_on: None,
            answer: ContinueResponse {
                action: ContinueAction::Continue,
                snapshot_id: Some("snapshot_3".into()),
                entry: Some(completed),
            },
            then_queue: None,
        },
    ]);
    fake.queue(run("run_2", "snapshot_1", "approval", Vec::new()));
    let (_stop, _worker) = start(&url, vec![task]);

    let completion = fake.until("the completion", |fake| completions_of(fake, "run_2").pop()).await;
    assert_eq!((completion.snapshot_id.as_str(), completion.output), ("snapshot_3", Some(json!("approved"))));
}

#[tokio::test]
async fn a_stopped_wait_ends_the_attempt_without_a_completion_and_frees_its_slot() {
    let fake = Arc::new(Fake::default());
    let url = serve(&fake).await;
    let waiter = Task::new("waiter", |ctx: TaskContext, (): ()| async move {
        ctx.wait_for(Duration::from_secs(60)).await?;
        Ok::<_, TaskError>("waited")
    });
    let refused = Task::new("refused", |ctx: TaskContext, (): ()| async move {
        // An unknown token is the call's answer: no registering again, the task sees a 404.
        match ctx.wait_for_token::<Value>("waitpoint_gone").await {
            Err(DurableError::Rejected { status, message }) => Ok::<_, TaskError>(format!("{status}: {message}")),
            other => Err(TaskError::new(format!("unexpected: {other:?}"))),
        }
    });
    fake.waits
        .lock()
        .extend([waiting("snapshot_2"), Err((StatusCode::NOT_FOUND, "Waitpoint waitpoint_gone not found".into()))]);
    fake.resumes.lock().push_back(Resume {
        after_heartbeat_on: None,
        answer: answer(ContinueAction::Stop),
        then_queue: Some(run("run_4", "snapshot_1", "refused", Vec::new())),
    });
    fake.queue(run("run_3", "snapshot_1", "waiter", Vec::new()));
    let (_stop, _worker) = start(&url, vec![waiter, refused]);

    let next = fake.until("the next run's completion", |fake| completions_of(fake, "run_4").pop()).await;
    assert_eq!(next.output, Some(json!("404: Waitpoint waitpoint_gone not found")));
    assert_eq!(fake.registrations.load(Ordering::Relaxed), 1);
    assert!(completions_of(&fake, "run_3").is_empty(), "the stopped attempt's result is dropped");
}

#[tokio::test]
async fn a_heartbeat_naming_a_new_snapshot_moves_the_attempt_to_it() {
    let fake = Arc::new(Fake::default());
    let url = serve(&fake).await;
    let gate = Arc::new(Notify::new());
    let task = Task::new("gated", {
        let gate = Arc::clone(&gate);
        move |_ctx: TaskContext, (): ()| {
            let gate = Arc::clone(&gate);
            async move {
                gate.notified().await;
                Ok::<_, TaskError>("through")
            }
        }
    });
    *fake.heartbeat_snapshot.lock() = Some(("run_5", "snapshot_9"));
    fake.queue(run("run_5", "snapshot_1", "gated", Vec::new()));
    let (_stop, _worker) = start(&url, vec![task]);

    fake.until("a heartbeat naming the new snapshot", |fake| fake.heartbeat_named("snapshot_9").then_some(())).await;
    gate.notify_one();
    let completion = fake.until("the completion", |fake| completions_of(fake, "run_5").pop()).await;
    assert_eq!(completion.snapshot_id, "snapshot_9");
}
