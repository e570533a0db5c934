//! A worker frozen past the heartbeat timeout loses its run to another worker; when it thaws,
//! its late result changes nothing.

use std::time::Duration;

use serde_json::json;
use stint_e2e::Stack;
use stint_testkit::ledger;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_worker_is_fenced_off_when_it_thaws() {
    let stack = Stack::start(&["--executing-timeout", "2s", "--sweep-interval", "200ms"]);
    let first = stack.worker(1);
    let id = stack.api.trigger("sleep", json!({"ms": 1_500})).await.unwrap();
    stack.api.wait_until(&id, LIMIT, |run| run["status"] == json!("EXECUTING")).await;
    first.pause();

    let mut second = stack.worker(1);
    let done = stack.api.wait_finished(&id, LIMIT).await;
    assert_eq!(done["status"], json!("COMPLETED"), "{done}");
    assert_eq!(done["attemptCount"], json!(2));
    second.terminate();

    // The first worker wakes up, finishes its stale attempt and reports it. Once it has also
    // run a new run (it is the only worker left, with one slot), its stale report has been sent.
    first.resume();
    let probe = stack.api.trigger("noop", json!(null)).await.unwrap();
    let probe = stack.api.wait_finished(&probe, LIMIT).await;
    assert_eq!(probe["status"], json!("COMPLETED"));
    assert_eq!(stack.api.run(&id).await.unwrap(), done, "the late result of attempt 1 changed nothing");

    let attempts: Vec<_> = ledger::read(&stack.ledger)
        .into_iter()
        .filter(|e| e.run_id == id && e.event == "start")
        .map(|e| (e.attempt, e.pid))
        .collect();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0], (1, first.pid()));
    assert_eq!(attempts[1].0, 2);
}
