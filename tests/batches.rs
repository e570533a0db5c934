//! A batch through the built binaries: a thousand items in one NDJSON request become a thousand
//! runs, which the example worker completes, each once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use stint_e2e::Stack;
use stint_testkit::ledger;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_item_batch_completes_a_thousand_runs() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(50);
    let created = stack.api.post("/api/v3/batches", json!({"runCount": 1_000})).await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let items: String =
        (0..1_000).map(|i| json!({"index": i, "task": "noop", "payload": {"i": i}}).to_string() + "\n").collect();
    let answer = stack.api.post_ndjson(&format!("/api/v3/batches/{id}/items"), items).await.unwrap();
    assert_eq!((answer["itemsAccepted"].clone(), answer["sealed"].clone()), (json!(1_000), json!(true)), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(120);
    let batch = loop {
        let batch = stack.api.get(&format!("/api/v2/batches/{id}")).await.unwrap();
        if batch["status"] == json!("COMPLETED") {
            break batch;
        }
        assert!(Instant::now() < deadline, "the batch did not complete: {}", batch["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let runs: Vec<String> = serde_json::from_value(batch["runs"].clone()).unwrap();
    assert_eq!(runs.len(), 1_000);
    for (at, run_id) in runs.iter().enumerate().step_by(97) {
        let run = stack.api.run(run_id).await.unwrap();
        assert_eq!((run["status"].clone(), run["payload"].clone()), (json!("COMPLETED"), json!({"i": at})), "{run}");
    }
    let entries = ledger::read(&stack.ledger);
    let ended: HashSet<&str> =
        entries.iter().filter(|e| e.event == "end" && e.task == "noop").map(|e| e.run_id.as_str()).collect();
    assert_eq!(ended.len(), 1_000, "every run executed to its end");
    assert!(runs.iter().all(|run| ended.contains(run.as_str())));
    let starts = ledger::starts_per_run(&entries);
    assert!(runs.iter().all(|run| starts.get(run) == Some(&1)), "each run started once");
}
