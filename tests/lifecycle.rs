//! The example worker's tasks through the built binaries: complete, retry, fail, cancel, and a
//! killed worker's run retried after the heartbeat timeout.

use std::time::Duration;

use serde_json::json;
use stint_e2e::Stack;
use stint_testkit::ledger;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_world_and_noop_complete_with_their_output() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let hello = stack.api.trigger("hello-world", json!({"name": "Ada"})).await.unwrap();
    let noop = stack.api.trigger("noop", json!({"anything": [1, 2]})).await.unwrap();
    let sleep = stack.api.trigger("sleep", json!({"ms": 50})).await.unwrap();

    let run = stack.api.wait_finished(&hello, LIMIT).await;
    assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    assert_eq!(run["output"], json!({"message": "Hello, Ada!"}));
    assert_eq!(run["attemptCount"], json!(1));
    assert!(run["startedAt"].is_string() && run["finishedAt"].is_string());
    assert_eq!(run["isSuccess"], json!(true));

    let run = stack.api.wait_finished(&noop, LIMIT).await;
    assert_eq!(run["status"], json!("COMPLETED"));
    assert_eq!(run["output"], json!(null));
    let run = stack.api.wait_finished(&sleep, LIMIT).await;
    assert_eq!(run["output"], json!({"slept_ms": 50}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_retries_until_it_succeeds_or_runs_out_of_attempts() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let twice = stack.api.trigger("flaky", json!({"fail_times": 2})).await.unwrap();
    let always = stack.api.trigger("flaky", json!({"fail_times": 10})).await.unwrap();

    let run = stack.api.wait_finished(&twice, LIMIT).await;
    assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    assert_eq!(run["output"], json!({"attempts": 3}));
    assert_eq!(run["attemptCount"], json!(3));

    let run = stack.api.wait_finished(&always, LIMIT).await;
    assert_eq!(run["status"], json!("FAILED"), "{run}");
    assert_eq!(run["attemptCount"], json!(5), "flaky allows five attempts");
    assert_eq!(run["isFailed"], json!(true));
    let message = run["error"]["message"].as_str().unwrap();
    assert!(message.contains("attempt 5"), "the error is the last attempt's: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executing_run_is_cancelled_through_its_worker() {
    let stack = Stack::start(&["--executing-timeout", "4s"]);
    let _worker = stack.worker(5);
    let id = stack.api.trigger("sleep", json!({"ms": 120_000})).await.unwrap();
    stack.api.wait_until(&id, LIMIT, |run| run["status"] == json!("EXECUTING")).await;
    stack.api.cancel(&id).await.unwrap();
    let run = stack.api.wait_finished(&id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], json!("CANCELED"), "{run}");
    let entries = ledger::read(&stack.ledger);
    assert!(!entries.iter().any(|e| e.run_id == id && e.event == "end"), "the task was stopped, not finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_worker_was_killed_is_retried_after_the_heartbeat_timeout() {
    let stack = Stack::start(&["--executing-timeout", "2s", "--sweep-interval", "200ms"]);
    let mut first = stack.worker(5);
    let id = stack.api.trigger("sleep", json!({"ms": 2_500})).await.unwrap();
    stack.api.wait_until(&id, LIMIT, |run| run["status"] == json!("EXECUTING")).await;
    let first_pid = first.pid();
    first.kill();
    let _second = stack.worker(5);

    let run = stack.api.wait_finished(&id, LIMIT).await;
    assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    assert_eq!(run["attemptCount"], json!(2));
    let starts: Vec<_> =
        ledger::read(&stack.ledger).into_iter().filter(|e| e.run_id == id && e.event == "start").collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(starts[0].pid, first_pid);
    assert_eq!((starts[0].attempt, starts[1].attempt), (1, 2));
    assert_ne!(starts[1].pid, first_pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_worker_stop_cleanly_on_sigterm() {
    let mut stack = Stack::start(&[]);
    let mut worker = stack.worker(2);
    let id = stack.api.trigger("noop", json!(null)).await.unwrap();
    stack.api.wait_finished(&id, LIMIT).await;
    // The worker is now waiting in a long poll; the server must not wait for it to end.
    let started = std::time::Instant::now();
    assert!(stack.server.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    assert!(worker.terminate().success());
}
