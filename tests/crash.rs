//! `kill -9` of the server under load: every run that was acknowledged completes exactly once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use stint_e2e::Stack;
use stint_testkit::ledger;

/// Runs triggered in all; `STINT_SOAK=1` multiplies them by ten.
fn total() -> usize {
    if std::env::var("STINT_SOAK").is_ok_and(|v| v == "1") { 3_000 } else { 300 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_runs_survive_kill_9_and_complete_exactly_once() {
    let mut stack = Stack::start(&["--executing-timeout", "5s", "--sweep-interval", "200ms"]);
    let _worker = stack.worker(20);
    let total = total();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    // Eight clients trigger runs until the total is reached; the server is killed when a third
    // of them were acknowledged and restarted at once on the same data directory.
    let mut clients = Vec::new();
    for client in 0..8 {
        let api = stack.api.clone();
        let acked = acked.clone();
        clients.push(tokio::spawn(async move {
            let mut n = client;
            while n < total {
                match api.trigger("sleep", json!({"ms": 20, "n": n})).await {
                    Ok(id) => {
                        acked.lock().unwrap().push(id);
                        n += 8;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < total / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stack.server.kill();
    stack.server.restart();
    for client in clients {
        client.await.unwrap();
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= total, "every client reached its share");
    for id in &acked {
        let run = stack.api.wait_finished(id, Duration::from_secs(120)).await;
        assert_eq!(run["status"], json!("COMPLETED"), "{run}");
    }
    let entries = ledger::read(&stack.ledger);
    let ends: Vec<_> = entries.iter().filter(|e| e.event == "end").collect();
    let mut finished = HashSet::new();
    for end in &ends {
        assert!(finished.insert(end.run_id.clone()), "run {} finished twice: {ends:?}", end.run_id);
    }
    for id in &acked {
        assert!(finished.contains(id), "acknowledged run {id} never finished its task");
    }

    if let Some(file) = stack.sqlite_file() {
        let db = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
}
