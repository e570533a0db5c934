//! PostgreSQL goes away under load and comes back: the API answers 503 with `Retry-After` while
//! it is gone, never 500, and every run that was accepted completes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use stint_testkit::Api;
use stint_testkit::postgres::Cluster;
use stint_testkit::process::{Backend, PROD_KEY, ServerProcess, WorkerProcess};

/// What a trigger call answered: its status and its `Retry-After`, if any.
type Answer = (u16, Option<String>);

/// How long the database stays down.
const OUTAGE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503s_and_loses_nothing() {
    let postgres = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let url = postgres.url();
    let server = ServerProcess::start_on(
        Backend::Postgres(&url),
        &dir.path().join("data"),
        &["--executing-timeout", "30s", "--sweep-interval", "200ms"],
    );
    let ledger = dir.path().join("ledger.jsonl");
    let _worker = WorkerProcess::start(&server.url(), PROD_KEY, 10, &ledger);

    // One client triggers a run every 20 ms throughout, recording what each call answered.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let trigger_url = format!("{}/api/v1/tasks/sleep/trigger", server.url());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let client = {
        let (acked, answers, stop) = (acked.clone(), answers.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let call = http.post(&trigger_url).bearer_auth(PROD_KEY).json(&json!({"payload": {"ms": 10}})).send();
                tokio::select! {
                    () = stop.notified() => return,
                    response = call => {
                        if let Ok(response) = response {
                            let status = response.status().as_u16();
                            let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_string());
                            if let Ok(body) = response.json::<serde_json::Value>().await
                                && status == 200
                            {
                                acked.lock().unwrap().push(body["id"].as_str().unwrap().to_string());
                            }
                            answers.lock().unwrap().push((status, retry));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    postgres.down();
    tokio::time::sleep(OUTAGE).await;
    postgres.up();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.notify_one();
    client.await.unwrap();

    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let unavailable: Vec<_> = answers.iter().filter(|(status, _)| *status == 503).collect();
    assert!(!unavailable.is_empty(), "some calls during the outage answered 503: {answers:?}");
    assert!(unavailable.iter().all(|(_, retry)| retry.is_some()), "every 503 says when to retry");
    assert!(answers.iter().all(|(status, _)| [200, 503].contains(status)), "only 200 and 503: {answers:?}");
    assert!(answers.last().is_some_and(|(status, _)| *status == 200), "calls succeed again once the database is back");

    let api = Api::new(&server.url(), PROD_KEY);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() > 50, "runs were accepted before and after the outage");
    for id in &acked {
        let run = api.wait_finished(id, Duration::from_secs(120)).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
}
