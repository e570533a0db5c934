//! Durable execution with the built binaries: runs waiting on time, on tokens and on child runs
//! survive server restarts and resume exactly once; waiting runs hold no worker slot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use stint_e2e::Stack;
use stint_testkit::{Api, ledger};

/// Runs of each kind in the restart test.
const EACH: usize = 500;

/// Triggers `task` once per payload, eight at a time, and returns the run ids in payload order.
async fn trigger_all(api: &Api, task: &str, payloads: Vec<Value>) -> Vec<String> {
    let mut ids = Vec::with_capacity(payloads.len());
    for chunk in payloads.chunks(8) {
        let calls = chunk.iter().map(|payload| api.trigger(task, payload.clone()));
        for id in join_all(calls).await {
            ids.push(id.expect("trigger"));
        }
    }
    ids
}

/// Waits for every run to finish and returns them in the order of `ids`.
async fn finished(api: &Api, ids: &[String], limit: Duration) -> Vec<Value> {
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        runs.push(api.wait_finished(id, limit).await);
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_runs_survive_two_restarts_and_resume_exactly_once() {
    let mut stack = Stack::start(&["--suspend-after", "1s", "--executing-timeout", "10s", "--sweep-interval", "500ms"]);
    let _worker = stack.worker(200);
    let api = stack.api.clone();

    let mut tokens = Vec::with_capacity(EACH);
    for _ in 0..EACH {
        let token = api.post("/api/v1/waitpoints/tokens", json!({"timeout": "1h"})).await.expect("token");
        tokens.push(token["id"].as_str().unwrap().to_string());
    }
    let started = Instant::now();
    let waits = trigger_all(&api, "wait-seconds", (0..EACH).map(|_| json!({"seconds": 10})).collect()).await;
    let on_tokens = trigger_all(&api, "wait-token", tokens.iter().map(|t| json!({"token_id": t})).collect()).await;
    let fans = trigger_all(&api, "fan-out", (0..EACH).map(|i| json!({"names": [format!("n{i}")]})).collect()).await;

    // Two restarts while the runs wait: the first hard, the second graceful.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.server.kill();
    stack.server.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.server.terminate();
    stack.server.restart();
    let api = stack.api.clone();

    // Each token completed twice at once, with different data: one of them wins.
    let calls: Vec<(usize, &String, u32)> =
        tokens.iter().enumerate().flat_map(|(i, token)| [(i, token, 1), (i, token, 2)]).collect();
    for chunk in calls.chunks(16) {
        let answers = join_all(chunk.iter().map(|(i, token, n)| {
            let path = format!("/api/v1/waitpoints/tokens/{token}/complete");
            let api = api.clone();
            let body = json!({"data": {"i": i, "n": n}});
            async move { api.post(&path, body).await }
        }))
        .await;
        for answer in answers {
            assert_eq!(answer.expect("complete")["success"], json!(true));
        }
    }

    let limit = Duration::from_secs(240);
    for run in finished(&api, &waits, limit).await {
        assert_eq!(run["status"], "COMPLETED", "{run}");
        assert_eq!(run["output"], json!({"waited_seconds": 10}));
    }
    assert!(started.elapsed() >= Duration::from_secs(10), "the waits lasted their time");
    for (i, run) in finished(&api, &on_tokens, limit).await.into_iter().enumerate() {
        assert_eq!(run["status"], "COMPLETED", "{run}");
        assert_eq!(run["output"]["data"]["i"], json!(i), "{run}");
    }
    for (i, run) in finished(&api, &fans, limit).await.into_iter().enumerate() {
        assert_eq!(run["status"], "COMPLETED", "{run}");
        assert_eq!(run["output"], json!({"messages": [format!("Hello, n{i}!")]}));
    }

    // Every run's task returned exactly once, however often it was replayed.
    let entries = ledger::read(&stack.ledger);
    let mut ends: HashMap<&str, usize> = HashMap::new();
    for entry in entries.iter().filter(|e| e.event == "end") {
        *ends.entry(entry.run_id.as_str()).or_default() += 1;
    }
    for id in waits.iter().chain(&on_tokens).chain(&fans) {
        assert_eq!(ends.get(id.as_str()), Some(&1), "run {id} ended {:?} times", ends.get(id.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_of_ten_slots_serves_a_thousand_runs_waiting_thirty_seconds() {
    let stack = Stack::start(&["--suspend-after", "200ms"]);
    let _worker = stack.worker(10);
    let started = Instant::now();
    let ids = trigger_all(&stack.api, "wait-seconds", (0..1_000).map(|_| json!({"seconds": 30})).collect()).await;
    for run in finished(&stack.api, &ids, Duration::from_secs(600)).await {
        assert_eq!(run["status"], "COMPLETED", "{run}");
    }
    let took = started.elapsed();
    // Holding its slot through the wait, each run would take 30 s of one of 10 slots: 3,000 s.
    assert!(took < Duration::from_secs(300), "1,000 waits of 30 s took {took:?} on 10 slots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_runs_once_across_three_suspensions() {
    let stack = Stack::start(&["--suspend-after", "300ms"]);
    let _worker = stack.worker(10);
    let payload = json!({"wait_seconds": 2, "waits": 3});
    let ids = trigger_all(&stack.api, "steps", (0..20).map(|_| payload.clone()).collect()).await;
    for run in finished(&stack.api, &ids, Duration::from_secs(120)).await {
        assert_eq!(run["status"], "COMPLETED", "{run}");
        let counts: Vec<u64> =
            run["output"]["steps"].as_array().unwrap().iter().map(|s| s["runs"].as_u64().unwrap()).collect();
        assert_eq!(counts, [1, 1, 1], "{run}");
    }
    let entries = ledger::read(&stack.ledger);
    for id in &ids {
        let starts = entries.iter().filter(|e| &e.run_id == id && e.event == "start").count();
        assert_eq!(starts, 4, "run {id} was suspended and replayed three times: {starts} starts");
        for step in ["step:reserve", "step:charge", "step:ship"] {
            let runs = entries.iter().filter(|e| &e.run_id == id && e.event == step).count();
            assert_eq!(runs, 1, "{step} of run {id} ran {runs} times");
        }
    }
}
