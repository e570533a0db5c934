//! Fairness across environments through the built binaries: one worker pool serves two
//! environments, and a flood in one does not hold the other's runs back.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use stint_e2e::Stack;
use stint_testkit::Api;
use stint_testkit::ledger;
use stint_testkit::process::{ADMIN_TOKEN, DEV_KEY, WorkerProcess};

const LIMIT: Duration = Duration::from_secs(120);
const A_RUNS: usize = 10_000;
const B_RUNS: usize = 100;

/// A personal access token of the default project, made through the admin API.
async fn access_token(stack: &Stack) -> String {
    let admin = Api::new(&stack.server.url(), ADMIN_TOKEN);
    let projects = admin.get("/api/v1/admin/projects").await.unwrap();
    let list = projects.get("data").unwrap_or(&projects);
    let reference = list[0]["ref"].as_str().unwrap_or_else(|| panic!("no project listed: {projects}"));
    let token = admin.post(&format!("/api/v1/admin/projects/{reference}/tokens"), json!({"name": "pool"})).await;
    token.unwrap()["token"].as_str().unwrap().to_string()
}

async fn trigger_many(api: &Api, n: usize) -> Vec<String> {
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move { api.trigger("noop", json!({"i": i})).await.unwrap() }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_in_one_environment_does_not_hold_back_another_served_by_the_same_pool() {
    let stack = Stack::start(&[]);
    let dev = Api::new(&stack.server.url(), DEV_KEY);
    trigger_many(&dev, A_RUNS).await;
    let token = access_token(&stack).await;
    let _pool = WorkerProcess::start_pool(&stack.server.url(), &token, "dev,prod", 50, &stack.ledger);

    // Once the pool has started 1,000 of the dev flood, prod triggers its runs.
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let queued = dev.get("/api/v1/queues/noop?type=task").await.ok().and_then(|q| q["queued"].as_u64());
        if queued.is_some_and(|q| q <= (A_RUNS - 1_000) as u64) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the pool did not start the flood: {queued:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b: HashSet<String> = trigger_many(&stack.api, B_RUNS).await.into_iter().collect();
    for id in &b {
        let run = stack.api.wait_finished(id, LIMIT).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
    let deadline = std::time::Instant::now() + LIMIT;
    while ledger::read(&stack.ledger).iter().filter(|e| e.event == "end").count() < A_RUNS + B_RUNS {
        assert!(std::time::Instant::now() < deadline, "the flood did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let starts: Vec<_> = ledger::read(&stack.ledger).into_iter().filter(|e| e.event == "start").collect();
    assert_eq!(starts.len(), A_RUNS + B_RUNS, "every run started once");
    let last_b = starts.iter().rposition(|e| b.contains(&e.run_id)).unwrap();
    let a_after = starts[last_b + 1..].iter().filter(|e| !b.contains(&e.run_id)).count();
    assert!(
        a_after >= 2_000,
        "prod's runs all started while the dev flood still had thousands queued: {a_after} after"
    );
}
