//! Queue controls through the built binaries: a paused queue starts nothing until resumed.

use std::time::Duration;

use serde_json::json;
use stint_e2e::Stack;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_starts_nothing_until_resumed() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    // The worker's first run makes sure it has registered, and with it the task's queue.
    let first = stack.api.trigger("noop", json!({})).await.unwrap();
    stack.api.wait_finished(&first, LIMIT).await;

    let paused = stack.api.post("/api/v1/queues/noop/pause", json!({"type": "task", "action": "pause"})).await.unwrap();
    assert_eq!(paused["paused"], json!(true), "{paused}");
    let mut held = Vec::new();
    for i in 0..5 {
        held.push(stack.api.trigger("noop", json!({"i": i})).await.unwrap());
    }
    let other = stack.api.trigger("hello-world", json!({"name": "Ada"})).await.unwrap();
    let run = stack.api.wait_finished(&other, LIMIT).await;
    assert_eq!(run["status"], json!("COMPLETED"), "the worker keeps taking other queues' runs");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for id in &held {
        let run = stack.api.run(id).await.unwrap();
        assert_eq!(run["status"], json!("QUEUED"), "a paused queue starts nothing: {run}");
    }

    let resumed =
        stack.api.post("/api/v1/queues/noop/pause", json!({"type": "task", "action": "resume"})).await.unwrap();
    assert_eq!((resumed["paused"].clone(), resumed["queued"].clone()), (json!(false), json!(5)));
    for id in &held {
        let run = stack.api.wait_finished(id, LIMIT).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
}
