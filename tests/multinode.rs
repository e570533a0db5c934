//! Several `stint server` nodes on one PostgreSQL database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use stint_testkit::Api;
use stint_testkit::ledger;
use stint_testkit::postgres::TestDatabase;
use stint_testkit::process::{ADMIN_TOKEN, Backend, PROD_KEY, ServerProcess, WorkerProcess};

const LIMIT: Duration = Duration::from_secs(120);
/// What a node's log says when it takes the maintenance lease.
const LEADING: &str = "this node does the maintenance work now";

/// Runs in the big test; `STINT_SOAK=1` multiplies them by four.
fn total() -> usize {
    if std::env::var("STINT_SOAK").is_ok_and(|v| v == "1") { 20_000 } else { 5_000 }
}

struct Cluster {
    nodes: Vec<ServerProcess>,
    ledger: std::path::PathBuf,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(count: usize) -> Cluster {
        let database = TestDatabase::create();
        let dir = tempfile::tempdir().unwrap();
        let args = ["--executing-timeout", "5s", "--sweep-interval", "200ms"];
        let nodes = (0..count)
            .map(|n| {
                ServerProcess::start_on(Backend::Postgres(database.url()), &dir.path().join(format!("node{n}")), &args)
            })
            .collect();
        Cluster { nodes, ledger: dir.path().join("ledger.jsonl"), _database: database, _dir: dir }
    }

    fn worker(&self, node: usize, concurrency: u32) -> WorkerProcess {
        WorkerProcess::start(&self.nodes[node].url(), PROD_KEY, concurrency, &self.ledger)
    }

    fn api(&self, node: usize) -> Api {
        Api::new(&self.nodes[node].url(), PROD_KEY)
    }

    /// The node doing maintenance, waiting for one to take the lease.
    fn leader(&self, among: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leading: Vec<usize> =
                among.iter().copied().filter(|n| self.nodes[*n].log().contains(LEADING)).collect();
            if let Some(leader) = leading.first() {
                return *leader;
            }
            assert!(Instant::now() < deadline, "no node took the maintenance lease");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_complete_every_run_when_the_leader_is_killed() {
    let mut cluster = Cluster::start(3);
    let _workers: Vec<WorkerProcess> = (0..3).map(|n| cluster.worker(n, 20)).collect();
    let leader = cluster.leader(&[0, 1, 2]);
    let total = total();

    // Eight clients trigger runs, each through the nodes in turn, moving on to the next node when
    // one does not answer. The leader is killed once a third of the runs were acknowledged.
    let apis: Vec<Api> = (0..3).map(|n| cluster.api(n)).collect();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..8 {
        let (apis, acked) = (apis.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            let (mut n, mut node) = (client, client);
            while n < total {
                match apis[node % 3].trigger("sleep", json!({"ms": 5, "n": n})).await {
                    Ok(id) => {
                        acked.lock().unwrap().push(id);
                        n += 8;
                    }
                    Err(_) => node += 1,
                }
                node += 1;
            }
        }));
    }
    while acked.lock().unwrap().len() < total / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.nodes[leader].kill();
    for client in clients {
        client.await.unwrap();
    }

    let survivors: Vec<usize> = (0..3).filter(|n| *n != leader).collect();
    let api = cluster.api(survivors[0]);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert_eq!(acked.len(), total);
    for id in &acked {
        let run = api.wait_finished(id, LIMIT).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
    // Leadership moved to a surviving node.
    cluster.leader(&survivors);

    // Every run's task finished; a run that ran again did so as a new, numbered attempt.
    let entries = ledger::read(&cluster.ledger);
    let mut attempts: HashMap<&str, Vec<u32>> = HashMap::new();
    for entry in entries.iter().filter(|e| e.event == "end") {
        attempts.entry(entry.run_id.as_str()).or_default().push(entry.attempt);
    }
    for id in &acked {
        let mut seen = attempts.get(id.as_str()).cloned().unwrap_or_default();
        assert!(!seen.is_empty(), "run {id} never finished its task");
        let count = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), count, "run {id} finished the same attempt twice: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_limit_holds_across_nodes() {
    let cluster = Cluster::start(2);
    let _workers = [cluster.worker(0, 10), cluster.worker(1, 10)];
    let apis = [cluster.api(0), cluster.api(1)];
    // A run's queue is chosen when it is triggered; before any worker declared the task, that is
    // the task's default queue. Wait for a worker to have registered.
    let probe = apis[0].trigger("noop", json!(null)).await.unwrap();
    apis[0].wait_finished(&probe, LIMIT).await;
    let mut ids = Vec::new();
    for n in 0..60 {
        ids.push(apis[n % 2].trigger("throttled", json!({"ms": 20})).await.unwrap());
    }
    for id in &ids {
        let run = apis[0].wait_finished(id, LIMIT).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
    // The ledger is appended in the order things happened: count the attempts running at once.
    let (mut running, mut most) = (0_i32, 0_i32);
    for entry in ledger::read(&cluster.ledger).iter().filter(|e| e.task == "throttled") {
        running += if entry.event == "start" { 1 } else { -1 };
        most = most.max(running);
    }
    assert!(most <= 2, "{most} throttled runs executed at once; the queue allows 2");
    assert_eq!(most, 2, "two workers on two nodes use both slots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_triggers_with_one_key_across_three_nodes_make_one_run() {
    let cluster = Cluster::start(3);
    let apis: Vec<Api> = (0..3).map(|n| cluster.api(n)).collect();
    let mut calls = Vec::new();
    for n in 0..50 {
        let api = apis[n % 3].clone();
        calls.push(tokio::spawn(async move {
            api.trigger_with("hello-world", json!({"payload": {"name": n}, "options": {"idempotencyKey": "one"}})).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for call in calls {
        ids.insert(call.await.unwrap().expect("every trigger is answered 200"));
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_and_per_key_limits_hold_across_nodes() {
    let cluster = Cluster::start(2);
    let admin = Api::new(&cluster.nodes[0].url(), ADMIN_TOKEN);
    let projects = admin.get("/api/v1/admin/projects").await.unwrap();
    let reference = projects["data"][0]["ref"].as_str().unwrap().to_string();
    // prod: at most 3 runs at once; `throttled` allows 2 per concurrency key.
    let limits = reqwest::Client::new()
        .patch(format!("{}/api/v1/admin/projects/{reference}/environments/prod", cluster.nodes[1].url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"concurrencyLimit": 3, "burstFactor": 1.0}))
        .send()
        .await
        .unwrap();
    assert!(limits.status().is_success(), "{}", limits.text().await.unwrap());
    let _workers = [cluster.worker(0, 10), cluster.worker(1, 10)];
    let apis = [cluster.api(0), cluster.api(1)];
    let probe = apis[0].trigger("noop", json!(null)).await.unwrap();
    apis[0].wait_finished(&probe, LIMIT).await;
    let mut key_of = HashMap::new();
    for n in 0..40 {
        let key = if n % 2 == 0 { "k1" } else { "k2" };
        // Long enough that both nodes' workers hold runs at once even on a loaded machine.
        let body = json!({"payload": {"ms": 200}, "options": {"concurrencyKey": key}});
        key_of.insert(apis[n % 2].trigger_with("throttled", body).await.unwrap(), key);
    }
    for id in key_of.keys() {
        let run = apis[0].wait_finished(id, LIMIT).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
    let most = |of: &dyn Fn(&ledger::Entry) -> bool| {
        let (mut running, mut most) = (0_i32, 0_i32);
        for entry in ledger::read(&cluster.ledger).iter().filter(|e| e.task == "throttled" && of(e)) {
            running += if entry.event == "start" { 1 } else { -1 };
            most = most.max(running);
        }
        most
    };
    assert_eq!(most(&|_| true), 3, "the environment's limit of 3 is reached, never passed, across nodes");
    for key in ["k1", "k2"] {
        let on_key = most(&|e| key_of.get(&e.run_id) == Some(&key));
        assert!(on_key <= 2, "{key} ran {on_key} at once; the queue allows 2 per key");
    }
}
