//! The worker's runtime loop against a fake server: results and errors reach the server,
//! heartbeat answers stop attempts, stale completions of cancelled runs are confirmed, and
//! shutdown is graceful.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use stint_sdk::protocol::types::{ErrorCode, TaskRunError};
use stint_sdk::protocol::worker::{Completion, RunAction};
use stint_sdk::{Error, Retry, Task, TaskContext, TaskError, Worker};
use support::{Fake, KEY, pending_cancel, run};
use tokio::sync::{Notify, oneshot};

#[derive(Deserialize)]
struct Hello {
    name: String,
}

async fn hello(_ctx: TaskContext, payload: Hello) -> Result<Value, TaskError> {
    Ok(json!({"message": format!("Hello, {}!", payload.name)}))
}

/// A worker of the fake server that stops soon after being asked.
fn worker(url: &str) -> Worker {
    Worker::new(url, KEY).dequeue_wait(Duration::from_millis(100)).task(Task::new("hello", hello))
}

/// Starts `worker`; the returned sender stops it.
fn start(worker: Worker) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), Error>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    (stop, handle)
}

/// Signals when dropped, which is how a test sees a task future being stopped.
struct DropSignal(Option<oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(signal) = self.0.take() {
            let _ = signal.send(());
        }
    }
}

/// A task that runs until stopped, signalling on `dropped` when its future is dropped.
fn forever(dropped: oneshot::Sender<()>) -> Task {
    let dropped = Arc::new(parking_lot::Mutex::new(Some(dropped)));
    Task::new("forever", move |_ctx, _payload: Value| {
        let guard = DropSignal(dropped.lock().take());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<_, TaskError>(())
        }
    })
}

fn find<'a>(completions: &'a [Completion], run_id: &str) -> &'a Completion {
    completions.iter().find(|c| c.run_id == run_id).unwrap_or_else(|| panic!("no completion for {run_id}"))
}

fn code(completion: &Completion) -> Option<ErrorCode> {
    completion.error.as_ref().and_then(TaskRunError::code)
}

#[tokio::test]
async fn outputs_and_every_kind_of_failure_reach_the_server() {
    let (url, fake) = Fake::start().await;
    let worker = worker(&url)
        .task(Task::new("fails", |ctx: TaskContext, _: Value| async move {
            Err::<(), _>(TaskError::new(format!("failing on attempt {}", ctx.attempt())))
        }))
        .task(Task::new("fatal", |_ctx, _: Value| async { Err::<(), _>(TaskError::fatal("no point retrying")) }))
        .task(Task::new("panics", |_ctx, _: Value| async {
            panic!("task exploded");
            #[allow(unreachable_code)]
            Ok::<(), TaskError>(())
        }))
        .task(
            Task::new("slow", |_ctx, _: Value| async {
                std::future::pending::<()>().await;
                Ok::<(), TaskError>(())
            })
            .max_duration(Duration::from_millis(50)),
        );
    let (stop, handle) = start(worker);
    fake.push([
        run("run_ok", "hello", json!({"name": "Ada"})),
        run("run_fails", "fails", json!({})),
        run("run_fatal", "fatal", json!({})),
        run("run_panics", "panics", json!({})),
        run("run_unknown", "nobody", json!({})),
        run("run_bad_input", "hello", json!({"nom": "Ada"})),
        run("run_slow", "slow", json!({})),
    ]);
    let completions = fake.wait_for_completions(7).await;

    let ok = find(&completions, "run_ok");
    assert!(ok.ok);
    assert_eq!(ok.output, Some(json!({"message": "Hello, Ada!"})));
    assert_eq!(ok.snapshot_id, "s_run_ok");
    let fails = find(&completions, "run_fails");
    assert!(!fails.ok && !fails.skip_retrying);
    assert!(
        matches!(&fails.error, Some(TaskRunError::BuiltInError { name, message, .. }) if name == "Error" && message == "failing on attempt 1")
    );
    assert!(find(&completions, "run_fatal").skip_retrying);
    let panicked = find(&completions, "run_panics");
    assert!(
        matches!(&panicked.error, Some(TaskRunError::BuiltInError { name, message, .. }) if name == "Panic" && message == "task exploded")
    );
    assert_eq!(code(find(&completions, "run_unknown")), Some(ErrorCode::CouldNotFindTask));
    let bad_input = find(&completions, "run_bad_input");
    assert_eq!(code(bad_input), Some(ErrorCode::TaskInputError));
    assert!(bad_input.skip_retrying);
    assert_eq!(code(find(&completions, "run_slow")), Some(ErrorCode::MaxDurationExceeded));

    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    let registered = fake.registered.lock().clone().unwrap();
    assert_eq!(registered.tasks.len(), 5);
    assert_eq!(registered.tasks.iter().find(|t| t.id == "slow").unwrap().max_duration, Some(1));
}

#[tokio::test]
async fn a_heartbeat_cancel_stops_the_task_and_confirms_with_the_new_snapshot() {
    let (url, fake) = Fake::start().await;
    let (dropped, was_dropped) = oneshot::channel();
    fake.heartbeat_actions.lock().insert("run_c".into(), (RunAction::Cancel, Some("s_cancelled".into())));
    let (stop, handle) = start(worker(&url).task(forever(dropped)));
    fake.push([run("run_c", "forever", json!(null))]);
    let completions = fake.wait_for_completions(1).await;
    assert_eq!(completions[0].snapshot_id, "s_cancelled");
    assert_eq!(code(&completions[0]), Some(ErrorCode::TaskRunCancelled));
    assert!(completions[0].skip_retrying);
    was_dropped.await.expect("the task future was dropped");
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_heartbeat_stop_drops_the_attempt_without_completing_it() {
    let (url, fake) = Fake::start().await;
    let (dropped, was_dropped) = oneshot::channel();
    fake.heartbeat_actions.lock().insert("run_s".into(), (RunAction::Stop, None));
    let (stop, handle) = start(worker(&url).task(forever(dropped)));
    fake.push([run("run_s", "forever", json!(null))]);
    was_dropped.await.expect("the task future was dropped");
    // Completions are sent in order, so once a later run's arrives an earlier one would have too.
    fake.push([run("run_after", "hello", json!({"name": "Bo"}))]);
    let completions = fake.wait_for_completions(1).await;
    assert_eq!(completions.iter().map(|c| c.run_id.as_str()).collect::<Vec<_>>(), ["run_after"]);
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_completion_made_stale_by_a_cancel_is_sent_again_as_a_cancellation() {
    let (url, fake) = Fake::start().await;
    fake.stale_once.lock().insert("run_x".into(), pending_cancel("s_pending_cancel"));
    let (stop, handle) = start(worker(&url));
    fake.push([run("run_x", "hello", json!({"name": "Cy"}))]);
    let completions = fake.wait_for_completions(2).await;
    assert!(completions[0].ok);
    assert_eq!(completions[1].snapshot_id, "s_pending_cancel");
    assert_eq!(code(&completions[1]), Some(ErrorCode::TaskRunCancelled));
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn registration_is_retried_and_repeated_when_the_server_forgets_the_worker() {
    let (url, fake) = Fake::start().await;
    fake.register_failures.store(2, std::sync::atomic::Ordering::SeqCst);
    fake.forget_worker.store(true, std::sync::atomic::Ordering::SeqCst);
    let (stop, handle) = start(worker(&url));
    fake.push([run("run_1", "hello", json!({"name": "Di"}))]);
    fake.wait_for_completions(1).await;
    assert_eq!(fake.registrations.load(std::sync::atomic::Ordering::SeqCst), 2);
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_wrong_key_is_an_error_naming_the_call() {
    let (url, _fake) = Fake::start().await;
    let result = Worker::new(&url, "tr_dev_wrong").run_until(std::future::pending()).await;
    assert!(matches!(result, Err(Error::Rejected { call: "register", status: 401, .. })), "{result:?}");
}

#[tokio::test]
async fn shutdown_lets_attempts_in_progress_finish_and_sends_their_completions() {
    let (url, fake) = Fake::start().await;
    let gate = Arc::new(Notify::new());
    let (started, has_started) = oneshot::channel();
    let started = Arc::new(parking_lot::Mutex::new(Some(started)));
    let task = Task::new("gated", {
        let gate = Arc::clone(&gate);
        move |_ctx, _: Value| {
            let gate = Arc::clone(&gate);
            let started = started.lock().take();
            async move {
                let _ = started.map(|s| s.send(()));
                gate.notified().await;
                Ok::<_, TaskError>(json!("done"))
            }
        }
    });
    let (stop, handle) = start(worker(&url).task(task));
    fake.push([run("run_g", "gated", json!(null))]);
    has_started.await.unwrap();
    stop.send(()).unwrap();
    // The worker cannot return while the attempt waits at the gate, within the 30 s grace.
    fake.wait_for_heartbeat("run_g").await;
    assert!(!handle.is_finished());
    gate.notify_one();
    handle.await.unwrap().unwrap();
    let completions = fake.completions.lock().clone();
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].output, Some(json!("done")));
}

#[tokio::test]
async fn attempts_still_running_after_the_grace_period_are_stopped_without_completing() {
    let (url, fake) = Fake::start().await;
    let (dropped, was_dropped) = oneshot::channel();
    let worker = worker(&url).task(forever(dropped)).shutdown_grace(Duration::from_millis(100));
    let (stop, handle) = start(worker);
    fake.push([run("run_f", "forever", json!(null))]);
    fake.wait_for_heartbeat("run_f").await;
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    was_dropped.await.expect("the task future was dropped");
    assert!(fake.completions.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn noop_runs_are_drained_in_batches() {
    // STINT_BENCH_RUNS=20000 turns this into the throughput benchmark; it prints, never asserts
    // timing.
    let total: usize = std::env::var("STINT_BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let (url, fake) = Fake::start().await;
    fake.push((0..total).map(|i| run(&format!("run_{i}"), "noop", json!(null))));
    let worker = worker(&url)
        .concurrency(50)
        .task(Task::new("noop", |_ctx, _: Value| async { Ok::<_, TaskError>(()) }).retry(Retry::never()));
    let began = Instant::now();
    let (stop, handle) = start(worker);
    let completions = fake.wait_for_completions(total).await;
    let elapsed = began.elapsed();
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    // A null output arrives as no output, which the protocol reads as null.
    assert!(completions.iter().all(|c| c.ok && c.output.is_none()));
    assert!(fake.max_runs_seen.load(std::sync::atomic::Ordering::SeqCst) <= 50);
    let batches = fake.completion_batches.lock().len();
    let dequeues = fake.dequeue_calls.load(std::sync::atomic::Ordering::SeqCst);
    println!(
        "{total} noop runs in {:.3}s: {:.0} runs/s, {dequeues} dequeue calls, {batches} completion calls",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn dropping_the_run_future_stops_the_worker_and_its_attempts() {
    let (url, fake) = Fake::start().await;
    let (dropped, was_dropped) = oneshot::channel();
    let handle = tokio::spawn(worker(&url).task(forever(dropped)).run_until(std::future::pending()));
    fake.push([run("run_d", "forever", json!(null))]);
    fake.wait_for_heartbeat("run_d").await;
    handle.abort();
    was_dropped.await.expect("the task future was dropped");
}
