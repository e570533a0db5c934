//! Queue controls through the built binaries: a paused queue starts nothing until resumed, and a
//! rate-limited queue starts no faster than its rate.

use std::time::Duration;

use serde_json::json;
use stint_e2e::Stack;
use stint_types::Timestamp;

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

/// Any `n > limit` consecutive starts span at least `(n − limit)·period / limit`: a burst of
/// `limit`, then no faster than the rate. Checked in integers on the runs' start times.
fn assert_within_rate(starts: &mut [i64], limit: i64, period_ms: i64, what: &str) {
    starts.sort_unstable();
    for i in 0..starts.len() {
        for j in i..starts.len() {
            let (n, span) = ((j - i + 1) as i64, starts[j] - starts[i]);
            assert!((n - limit) * period_ms <= span * limit, "{what}: {n} starts within {span} ms: {starts:?}");
        }
    }
}

/// Triggers `n` runs of `task` (with a concurrency key when given), waits for them to finish and
/// returns when each started, in ms.
async fn run_all(stack: &Stack, task: &str, key: Option<&str>, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let options = key.map_or(json!({}), |key| json!({"concurrencyKey": key}));
        ids.push(stack.api.trigger_with(task, json!({"payload": {"i": i}, "options": options})).await.unwrap());
    }
    let mut starts = Vec::new();
    for id in &ids {
        let run = stack.api.wait_finished(id, LIMIT).await;
        assert_eq!(run["status"], json!("COMPLETED"), "a run over the rate waits, it never fails: {run}");
        starts.push(Timestamp::parse(run["startedAt"].as_str().unwrap()).unwrap().millis());
    }
    starts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_queue_starts_no_faster_than_its_rate() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(20);
    let first = stack.api.trigger("noop", json!({})).await.unwrap();
    stack.api.wait_finished(&first, LIMIT).await;

    // `rated` declares 5 starts a second for each concurrency key.
    let queue = stack.api.get("/api/v1/queues/rated?type=task").await.unwrap();
    assert_eq!(queue["rateLimit"], json!({"limit": 5, "periodMs": 1_000, "perKey": true}), "{queue}");
    let (a, b) = tokio::join!(run_all(&stack, "rated", Some("a"), 12), run_all(&stack, "rated", Some("b"), 12));
    for (key, mut starts) in [("a", a), ("b", b)] {
        assert_within_rate(&mut starts, 5, 1_000, &format!("rated, key {key}"));
    }

    // An override puts 3 starts per 2 s on the whole `noop` queue, until it is reset.
    let body = json!({"type": "task", "limit": 3, "periodMs": 2_000});
    let overridden = stack.api.post("/api/v1/queues/noop/rate-limit/override", body).await.unwrap();
    assert_eq!(overridden["rateLimit"]["limit"], json!(3), "{overridden}");
    let mut starts = run_all(&stack, "noop", None, 8).await;
    assert_within_rate(&mut starts, 3, 2_000, "noop overridden");
    let reset = stack.api.post("/api/v1/queues/noop/rate-limit/reset", json!({"type": "task"})).await.unwrap();
    assert_eq!(reset["rateLimit"], json!(null), "{reset}");
}
