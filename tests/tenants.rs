//! Tenants through the built binaries: one worker pool serves two environments, and a flood in
//! one does not hold the other's runs back; environment, queue and per-key limits hold together.

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

/// The most runs executing at once in the ledger's order of starts and ends, over the runs `of`
/// picks.
fn most_at_once(entries: &[ledger::Entry], of: impl Fn(&ledger::Entry) -> bool) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for entry in entries.iter().filter(|e| of(e)) {
        if entry.event == "start" {
            now += 1;
            most = most.max(now);
        } else {
            now = now.saturating_sub(1);
        }
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_under_mixed_limits_never_exceeds_any_of_them() {
    let stack = Stack::start(&[]);
    let admin = Api::new(&stack.server.url(), ADMIN_TOKEN);
    let projects = admin.get("/api/v1/admin/projects").await.unwrap();
    let reference = projects["data"][0]["ref"].as_str().unwrap().to_string();
    // prod: at most 4 × 2 = 8 runs at once, no queue more than 4.
    let limits = reqwest::Client::new()
        .patch(format!("{}/api/v1/admin/projects/{reference}/environments/prod", stack.server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"concurrencyLimit": 4, "burstFactor": 2.0}))
        .send()
        .await
        .unwrap();
    assert!(limits.status().is_success(), "{}", limits.text().await.unwrap());
    let _worker = stack.worker(20);
    // The worker's first run makes sure it has registered: runs triggered before would go to the
    // task's default queue `task/throttled` rather than the queue it declares.
    let first = stack.api.trigger("hello-world", json!({"name": "Ada"})).await.unwrap();
    stack.api.wait_finished(&first, LIMIT).await;

    // `throttled` has a queue limit of 2, which each concurrency key gets, k1 with a backlog that
    // would take more; `sleep` has none, so the environment's base limit of 4 caps it. Together
    // they would run 10 at once; the environment allows 8.
    let mut key_of = std::collections::HashMap::new();
    let runs: Vec<(&str, Option<&str>)> = std::iter::repeat_n(("throttled", Some("k1")), 16)
        .chain(std::iter::repeat_n(("throttled", Some("k2")), 3))
        .chain(std::iter::repeat_n(("throttled", None), 3))
        .chain(std::iter::repeat_n(("sleep", None), 18))
        .collect();
    for (task, key) in runs {
        let mut body = json!({"payload": {"ms": 150}});
        if let Some(key) = key {
            body["options"] = json!({"concurrencyKey": key});
        }
        let id = stack.api.trigger_with(task, body).await.unwrap();
        key_of.insert(id, key);
    }
    // Sample the server's counts while the runs drain.
    let deadline = std::time::Instant::now() + LIMIT;
    let env_path = format!("/api/v1/admin/projects/{reference}/environments/prod");
    loop {
        let env = admin.get(&env_path).await.unwrap();
        assert!(env["running"].as_u64().unwrap() <= 8, "the environment runs {env}");
        let queues = stack.api.get("/api/v1/queues").await.unwrap();
        for queue in queues["data"].as_array().unwrap() {
            let cap = if queue["name"] == "throttled" { 6 } else { 4 };
            if queue["name"] == "throttled" {
                assert_eq!(queue["type"], "custom", "no run went to the task's default queue: {queue}");
            }
            assert!(queue["running"].as_u64().unwrap() <= cap, "{queue}");
        }
        if ledger::read(&stack.ledger).iter().filter(|e| e.event == "end").count() == 41 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the runs did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let entries: Vec<_> = ledger::read(&stack.ledger).into_iter().filter(|e| e.task != "hello-world").collect();
    assert_eq!(most_at_once(&entries, |_| true), 8, "the environment's burst limit is reached, never passed");
    assert!(most_at_once(&entries, |e| e.task == "sleep") <= 4, "no queue runs more than the base limit");
    for key in [Some("k1"), Some("k2"), None] {
        let most = most_at_once(&entries, |e| e.task == "throttled" && key_of.get(&e.run_id) == Some(&key));
        assert!(most <= 2, "{key:?} ran {most} at once; its queue's limit is 2 per key");
    }
}
