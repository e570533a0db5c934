//! The worker's runtime against the real server, started in-process for each test: results and
//! errors reach the runs, retries follow the task's settings, cancels and stalls stop attempts,
//! registration survives a server that is not up yet or has forgotten the worker, and shutdown
//! is graceful and prompt.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use stint_sdk::{Error, Retry, Task, TaskContext, TaskError, Worker};
use support::{Logs, PATIENCE, TestServer, free_address};
use tokio::sync::{Notify, oneshot};

#[derive(Deserialize)]
struct Hello {
    name: String,
}

async fn hello(_ctx: TaskContext, payload: Hello) -> Result<Value, TaskError> {
    Ok(json!({"message": format!("Hello, {}!", payload.name)}))
}

/// Two attempts in all, 10 ms apart, so retries are quick to observe.
fn two_quick_attempts() -> Retry {
    Retry {
        max_attempts: 2,
        factor: 1.0,
        min_timeout: Duration::from_millis(10),
        max_timeout: Duration::from_millis(10),
        randomize: false,
    }
}

/// Starts `worker`; the returned sender stops it.
fn start(worker: Worker) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), Error>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    (stop, handle)
}

/// Waits for a signal, failing the test after [`PATIENCE`].
async fn signalled<T>(signal: oneshot::Receiver<T>, what: &str) -> T {
    match tokio::time::timeout(PATIENCE, signal).await {
        Ok(Ok(value)) => value,
        Ok(Err(_)) => panic!("{what}: never signalled"),
        Err(_) => panic!("{what}: not within {PATIENCE:?}"),
    }
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

/// A task `forever` that runs until stopped and is never retried, with signals from its first
/// attempt: when it started and when its future was dropped.
struct Forever {
    task: Task,
    started: oneshot::Receiver<()>,
    dropped: oneshot::Receiver<()>,
}

fn forever() -> Forever {
    let (started, has_started) = oneshot::channel();
    let (dropped, was_dropped) = oneshot::channel();
    let signals = Arc::new(Mutex::new(Some((started, dropped))));
    let task = Task::new("forever", move |_ctx, _payload: Value| {
        let signals = signals.lock().take();
        async move {
            let _guard = signals.map(|(started, dropped)| {
                let _ = started.send(());
                DropSignal(Some(dropped))
            });
            std::future::pending::<()>().await;
            Ok::<_, TaskError>(())
        }
    })
    .retry(Retry::never());
    Forever { task, started: has_started, dropped: was_dropped }
}

/// The `name` and `message` of a run's error.
fn error_of(run: &Value) -> (&str, &str) {
    let error = &run["error"];
    (error["name"].as_str().unwrap_or_default(), error["message"].as_str().unwrap_or_default())
}

/// A task `id` whose attempts wait for a permit of the returned gate, then return `"done"`, with
/// a signal of when its first attempt started.
fn gated(id: &str) -> (Arc<Notify>, oneshot::Receiver<()>, Task) {
    let gate = Arc::new(Notify::new());
    let (started, has_started) = oneshot::channel();
    let started = Arc::new(Mutex::new(Some(started)));
    let task = Task::new(id, {
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
    (gate, has_started, task)
}

/// Server settings with an executing timeout of `timeout`.
fn executing_timeout(timeout: Duration) -> impl FnOnce(&mut stint_server::Config) {
    move |config| config.engine.timeouts.executing = timeout
}

#[tokio::test]
async fn outputs_and_every_kind_of_failure_reach_the_run() {
    let server = TestServer::start().await;
    let worker = server
        .worker()
        .task(Task::new("hello", hello))
        .task(
            Task::new("fails", |ctx: TaskContext, _: Value| async move {
                Err::<(), _>(TaskError::new(format!("failing on attempt {}", ctx.attempt())))
            })
            .retry(two_quick_attempts()),
        )
        .task(Task::new("fatal", |_ctx, _: Value| async { Err::<(), _>(TaskError::fatal("no point retrying")) }))
        .task(
            Task::new("panics", |_ctx, _: Value| async {
                panic!("task exploded");
                #[allow(unreachable_code)]
                Ok::<(), TaskError>(())
            })
            .retry(two_quick_attempts()),
        )
        .task(
            Task::new("slow", |_ctx, _: Value| async {
                std::future::pending::<()>().await;
                Ok::<(), TaskError>(())
            })
            .max_duration(Duration::from_secs(1)),
        );
    let (stop, handle) = start(worker);
    let ok = server.trigger("hello", json!({"name": "Ada"})).await;
    let fails = server.trigger("fails", json!({})).await;
    let fatal = server.trigger("fatal", json!({})).await;
    let panics = server.trigger("panics", json!({})).await;
    let bad_input = server.trigger("hello", json!({"nom": "Ada"})).await;
    let slow = server.trigger("slow", json!({})).await;

    let run = server.wait_finished(&ok).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("COMPLETED"), json!(1)), "{run}");
    assert_eq!(run["output"], json!({"message": "Hello, Ada!"}));

    // Retried as the task's Retry says: two attempts, the error of the last one kept.
    let run = server.wait_finished(&fails).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("FAILED"), json!(2)), "{run}");
    assert_eq!(error_of(&run), ("Error", "failing on attempt 2"));

    // The default Retry allows three attempts; a fatal error ends the run at the first.
    let run = server.wait_finished(&fatal).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("FAILED"), json!(1)), "{run}");
    assert_eq!(error_of(&run), ("Error", "no point retrying"));

    // A panic fails its attempt only: the run is retried, and the worker goes on.
    let run = server.wait_finished(&panics).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("FAILED"), json!(2)), "{run}");
    assert_eq!(error_of(&run), ("Panic", "task exploded"));

    // A payload that does not decode fails the run at once, despite three attempts allowed.
    let run = server.wait_finished(&bad_input).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("FAILED"), json!(1)), "{run}");
    assert_eq!(error_of(&run).0, "TASK_INPUT_ERROR");
    assert!(error_of(&run).1.contains("missing field `name`"), "{run}");

    let run = server.wait_finished(&slow).await;
    assert_eq!(run["status"], json!("TIMED_OUT"), "{run}");
    assert_eq!(error_of(&run).0, "MAX_DURATION_EXCEEDED");

    let after = server.trigger("hello", json!({"name": "Bo"})).await;
    assert_eq!(server.wait_finished(&after).await["output"], json!({"message": "Hello, Bo!"}));
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_output_the_server_refuses_as_too_large_fails_the_run() {
    // Encoding and sending the output takes a second or more in a debug build. The encoding runs
    // on the blocking pool and heartbeats cover the attempt until its completion is answered, so
    // the run does not stall meanwhile, despite the executing timeout of 2 s.
    let server = TestServer::start().await;
    // The server takes worker requests of up to 64 MiB; this output alone is larger.
    let huge = Task::new("huge", |_ctx, _: Value| async { Ok::<_, TaskError>("x".repeat(65 << 20)) });
    let (stop, handle) = start(server.worker().task(huge));
    let id = server.trigger("huge", json!(null)).await;
    let run = server.wait_finished(&id).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("FAILED"), json!(1)), "{run}");
    assert_eq!(error_of(&run).0, "TASK_OUTPUT_ERROR");
    assert!(error_of(&run).1.contains("status 413"), "{run}");
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn cancelling_a_run_stops_its_task_and_the_run_ends_cancelled() {
    // The worker hears of the cancel from its next heartbeat, within 500 ms. Were the cancel
    // not confirmed, the run would end only after the 60 s pending-cancel timeout.
    let server = TestServer::start().await;
    let Forever { task, started, dropped } = forever();
    let (stop, handle) = start(server.worker().task(task));
    let id = server.trigger("forever", json!(null)).await;
    signalled(started, "the attempt started").await;
    server.api.cancel(&id).await.unwrap();
    signalled(dropped, "the task future was dropped").await;
    let run = server.wait_status(&id, "CANCELED").await;
    assert_eq!(run["attemptCount"], json!(1));
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_run_cancelled_while_its_attempt_finishes_ends_cancelled() {
    // Heartbeats every 5 s: the attempt below finishes long before the first one, so the worker
    // learns of the cancel only from the answer to its completion.
    let server = TestServer::start_with(|config| config.engine.timeouts.executing = Duration::from_secs(20)).await;
    let api = server.api.clone();
    let returned = Arc::new(AtomicUsize::new(0));
    let task = Task::new("cancels-itself", {
        let returned = Arc::clone(&returned);
        move |ctx: TaskContext, _: Value| {
            let (api, returned) = (api.clone(), Arc::clone(&returned));
            async move {
                api.cancel(ctx.run_id()).await.map_err(TaskError::new)?;
                returned.fetch_add(1, Ordering::SeqCst);
                Ok::<_, TaskError>(json!("done anyway"))
            }
        }
    });
    let (stop, handle) = start(server.worker().task(task));
    let id = server.trigger("cancels-itself", json!(null)).await;
    // Without a confirmation the run would wait for the 60 s pending-cancel timeout.
    let run = server.wait_status(&id, "CANCELED").await;
    assert!(run.get("output").is_none(), "{run}");
    assert_eq!(returned.load(Ordering::SeqCst), 1, "the task ran to its end");
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_attempt_that_stalled_is_stopped_and_its_slot_reused() {
    // The server declares attempts stalled after 50 ms without a heartbeat, but the worker sends
    // heartbeats at most every 100 ms, so its attempt stalls; its next heartbeat is answered STOP.
    let server = TestServer::start_with(|config| {
        config.engine.timeouts.executing = Duration::from_millis(50);
        config.sweep_interval = Duration::from_millis(20);
    })
    .await;
    let Forever { task, started, dropped } = forever();
    let worker = server.worker().concurrency(1).task(task).task(Task::new("hello", hello));
    let (stop, handle) = start(worker);
    let id = server.trigger("forever", json!(null)).await;
    signalled(started, "the attempt started").await;
    signalled(dropped, "the task future was dropped").await;
    let run = server.wait_finished(&id).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("FAILED"), json!(1)), "{run}");
    assert_eq!(error_of(&run).0, "TASK_RUN_STALLED_EXECUTING");
    // The worker's only slot is free again. (Should this quick run stall too, it is retried.)
    let next = server.trigger("hello", json!({"name": "Cy"})).await;
    assert_eq!(server.wait_finished(&next).await["status"], json!("COMPLETED"));
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn registration_waits_for_the_server_and_is_repeated_when_the_server_forgets_the_worker() {
    let logs = Logs::capture();
    let address = free_address();
    let (stop, handle) = start(Worker::new(format!("http://{address}"), support::KEY).task(Task::new("hello", hello)));
    logs.wait_for("could not register with the server; retrying").await;

    let first = TestServer::start_with(|config| config.listen = address).await;
    let id = first.trigger("hello", json!({"name": "Di"})).await;
    assert_eq!(first.wait_finished(&id).await["status"], json!("COMPLETED"));
    first.stop().await;

    // A server on a new data directory has never heard of the worker and answers it 404.
    let second = TestServer::start_with(|config| config.listen = address).await;
    let id = second.trigger("hello", json!({"name": "Ed"})).await;
    assert_eq!(second.wait_finished(&id).await["status"], json!("COMPLETED"));
    logs.wait_for("the server does not know this worker; registering again").await;
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_wrong_key_is_an_error_naming_the_call() {
    let server = TestServer::start().await;
    let result = Worker::new(&server.url, "tr_prod_wrongwrongwrongwrong").run_until(std::future::pending()).await;
    assert!(matches!(result, Err(Error::Rejected { call: "register", status: 401, .. })), "{result:?}");
}

#[tokio::test]
async fn shutdown_lets_attempts_in_progress_finish_and_sends_their_completions() {
    let logs = Logs::capture();
    let server = TestServer::start().await;
    let (gate, has_started, task) = gated("gated");
    let (stop, handle) = start(server.worker().task(task));
    let id = server.trigger("gated", json!(null)).await;
    signalled(has_started, "the attempt started").await;
    stop.send(()).unwrap();
    logs.wait_for("stopped taking runs; waiting for attempts in progress").await;
    // The worker cannot return while the attempt waits at the gate, within the 30 s grace.
    assert!(!handle.is_finished());
    gate.notify_one();
    handle.await.unwrap().unwrap();
    // The completion was sent before the worker returned.
    let run = server.run(&id).await;
    assert_eq!((run["status"].clone(), run["output"].clone()), (json!("COMPLETED"), json!("done")), "{run}");
}

#[tokio::test]
async fn attempts_still_running_after_the_grace_period_are_stopped_without_completing() {
    let server = TestServer::start_with(|config| config.engine.timeouts.executing = Duration::from_secs(1)).await;
    let Forever { task, started, dropped } = forever();
    let (stop, handle) = start(server.worker().task(task).shutdown_grace(Duration::from_millis(100)));
    let id = server.trigger("forever", json!(null)).await;
    signalled(started, "the attempt started").await;
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    signalled(dropped, "the task future was dropped").await;
    assert_eq!(server.run(&id).await["status"], json!("EXECUTING"), "nothing was reported");
    // The server takes over once the heartbeats have stopped.
    let run = server.wait_finished(&id).await;
    assert_eq!(error_of(&run).0, "TASK_RUN_STALLED_EXECUTING", "{run}");
}

#[tokio::test]
async fn dropping_the_run_future_stops_the_worker_and_its_attempts() {
    let server = TestServer::start().await;
    let Forever { task, started, dropped } = forever();
    let handle = tokio::spawn(server.worker().task(task).run_until(std::future::pending()));
    server.trigger("forever", json!(null)).await;
    signalled(started, "the attempt started").await;
    handle.abort();
    signalled(dropped, "the task future was dropped").await;
}

#[tokio::test]
async fn an_idle_worker_stops_at_once_when_asked() {
    let server = TestServer::start().await;
    // The default dequeue wait is 10 s; only the disconnect ends the call in flight sooner.
    let (stop, handle) = start(server.worker().task(Task::new("hello", hello)));
    // Once a run has completed, the worker has taken it and is waiting in its next dequeue call.
    let id = server.trigger("hello", json!({"name": "Flo"})).await;
    assert_eq!(server.wait_finished(&id).await["status"], json!("COMPLETED"));
    let asked = Instant::now();
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "the worker took {took:?} to stop");
}

#[tokio::test]
async fn a_stopping_worker_finishes_every_run_its_last_dequeue_took() {
    // Each worker is stopped just as a run is triggered: either its disconnect reaches the server
    // first and the run stays queued, or its dequeue call in flight took the run, which it then
    // must execute and complete before returning. Never is a run left executing.
    let server = TestServer::start().await;
    let (mut taken, mut left) = (0, 0);
    for round in 0..20 {
        let logs = Logs::capture();
        let (stop, handle) = start(server.worker().task(Task::new("hello", hello)));
        logs.wait_for("registered with the server").await;
        let (id, ()) = tokio::join!(server.trigger("hello", json!({"name": format!("round {round}")})), async {
            stop.send(()).unwrap();
        });
        handle.await.unwrap().unwrap();
        match server.run(&id).await["status"].as_str() {
            Some("COMPLETED") => taken += 1,
            Some("QUEUED") => left += 1,
            other => panic!("round {round}: the run is {other:?} after its worker stopped"),
        }
    }
    println!("of 20 runs triggered as their worker stopped, {taken} were taken and completed, {left} left queued");
}

#[tokio::test]
async fn a_worker_stops_promptly_while_its_server_is_down() {
    let server = TestServer::start().await;
    let (stop, handle) = start(server.worker().task(Task::new("hello", hello)));
    let id = server.trigger("hello", json!({"name": "Gil"})).await;
    assert_eq!(server.wait_finished(&id).await["status"], json!("COMPLETED"));
    server.stop().await;
    // Neither the disconnect nor the dequeue call can reach the server now.
    let asked = Instant::now();
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "the worker took {took:?} to stop");
}

#[tokio::test]
async fn a_result_that_reaches_the_server_after_the_executing_timeout_still_counts() {
    // The attempt finishes while the server is down, and its completion, retried with backoff,
    // reaches the restarted server more than the executing timeout after the attempt's last
    // heartbeat before the restart. Only the heartbeats the worker sends for an attempt whose
    // completion is unanswered keep the server from declaring it stalled meanwhile and
    // discarding its result as stale.
    let logs = Logs::capture();
    // The worker registers with a server whose executing timeout is 1 s, which asks for a
    // heartbeat every 250 ms. The server then restarts with a timeout of 5 s: long enough for
    // the attempt to outlive the downtime below, too short for the completion's wait after it.
    let first = TestServer::start_with(executing_timeout(Duration::from_secs(1))).await;
    let (gate, started, task) = gated("gated");
    let (stop, handle) = start(first.worker().task(task.retry(Retry::never())));
    logs.wait_for("registered with the server").await;
    let server = first.stop().await.start_with(executing_timeout(Duration::from_secs(5))).await;
    let id = server.trigger("gated", json!(null)).await;
    signalled(started, "the attempt started").await;

    // The attempt's dequeue or last heartbeat reached the server at most 250 ms before it stops,
    // so the run stalls 4.75 s to 5 s after the stop unless a heartbeat reaches the server again.
    // The attempt finishes right after the stop; its completion is tried then and retried with
    // backoff 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s later.
    let down = server.stop().await;
    gate.notify_one();
    logs.wait_for_all(&["call=\"complete\"", "retry_in=3.2s"]).await;
    // Up again once the try at 3.1 s has failed: the worker's next heartbeat arrives within
    // 250 ms, before the run would stall; the completion arrives only at 6.3 s, after that.
    let server = down.start_with(executing_timeout(Duration::from_secs(5))).await;
    let run = server.wait_finished(&id).await;
    assert_eq!((run["status"].clone(), run["attemptCount"].clone()), (json!("COMPLETED"), json!(1)), "{run}");
    assert_eq!(run["output"], json!("done"));
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_are_drained_within_the_worker_concurrency() {
    // STINT_BENCH_RUNS=20000 turns this into a throughput benchmark against the real server; it
    // prints, never asserts timing.
    let total: usize = std::env::var("STINT_BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let server = TestServer::start().await;
    let mut ids = Vec::with_capacity(total);
    for chunk in (0..total).collect::<Vec<_>>().chunks(50) {
        let triggers = chunk.iter().map(|i| server.trigger("noop", json!(i)));
        ids.extend(futures::future::join_all(triggers).await);
    }
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let noop = Task::new("noop", {
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        move |_ctx, _: Value| {
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            async move {
                most.fetch_max(in_flight.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, TaskError>(())
            }
        }
    });
    let began = Instant::now();
    let (stop, handle) = start(server.worker().concurrency(50).task(noop.retry(Retry::never())));
    let last = ids.last().expect("at least one run");
    server.wait_finished(last).await;
    let elapsed = began.elapsed();
    for id in &ids {
        let run = server.wait_finished(id).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
    assert!(most.load(Ordering::SeqCst) <= 50, "{} attempts ran at once", most.load(Ordering::SeqCst));
    println!(
        "{total} noop runs in {:.3}s: {:.0} runs/s through the real server",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}
