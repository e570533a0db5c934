//! Trigger options through the built binaries: a delayed run starts after its time, a run past
//! its TTL expires, a debounced burst makes one run, and an attempt over its maximum duration
//! ends the run `TIMED_OUT`.

use std::time::{Duration, Instant};

use serde_json::json;
use stint_e2e::Stack;
use stint_types::Timestamp;

const LIMIT: Duration = Duration::from_secs(60);

fn time(run: &serde_json::Value, field: &str) -> Timestamp {
    Timestamp::parse(run[field].as_str().unwrap_or_else(|| panic!("{field} in {run}"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_run_starts_after_its_time_and_not_before() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let id = stack
        .api
        .trigger_with("hello-world", json!({"payload": {"name": "Later"}, "options": {"delay": "3s"}}))
        .await
        .unwrap();
    let delayed = stack.api.run(&id).await.unwrap();
    assert_eq!(delayed["status"], "DELAYED", "{delayed}");
    let run = stack.api.wait_finished(&id, LIMIT).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["output"], json!({"message": "Hello, Later!"}));
    let waited = time(&run, "startedAt").millis() - time(&run, "createdAt").millis();
    assert!(waited >= 3_000, "started {waited} ms after it was created");
    assert!(waited < 10_000, "started {waited} ms after it was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_not_started_within_its_ttl_expires() {
    let stack = Stack::start(&[]);
    let expiring = stack.api.trigger_with("noop", json!({"payload": {}, "options": {"ttl": "1s"}})).await.unwrap();
    let lasting = stack.api.trigger_with("noop", json!({"payload": {}, "options": {"ttl": 600}})).await.unwrap();
    let run = stack.api.wait_until(&expiring, LIMIT, |run| run["status"] == "EXPIRED").await;
    assert!(run["expiredAt"].is_string(), "{run}");
    assert_eq!(run["error"]["message"], "Run expired because the TTL (1s) was reached", "{run}");
    let _worker = stack.worker(5);
    let run = stack.api.wait_finished(&lasting, LIMIT).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(stack.api.run(&expiring).await.unwrap()["status"], "EXPIRED", "an expired run never starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debounced_burst_makes_one_run_with_the_latest_payload() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let started = Instant::now();
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        let options = json!({"debounce": {"key": "greeting", "delay": "2s", "mode": "trailing"}});
        ids.push(
            stack
                .api
                .trigger_with("hello-world", json!({"payload": {"name": name}, "options": options}))
                .await
                .unwrap(),
        );
    }
    assert!(started.elapsed() < Duration::from_secs(2), "the burst must land inside the delay");
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let run = stack.api.wait_finished(&ids[0], LIMIT).await;
    assert_eq!(run["output"], json!({"message": "Hello, C!"}), "{run}");
    let listed = stack.api.get("/api/v1/runs?filter[taskIdentifier]=hello-world").await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_over_its_max_duration_ends_the_run_timed_out() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let id = stack
        .api
        .trigger_with("sleep", json!({"payload": {"ms": 60_000}, "options": {"maxDuration": 1}}))
        .await
        .unwrap();
    let run = stack.api.wait_finished(&id, LIMIT).await;
    assert_eq!(run["status"], "TIMED_OUT", "{run}");
    assert_eq!(run["attemptCount"], 1, "a timed-out attempt is not retried: {run}");
}

/// Runs `stint` against the stack's server with its production key and returns what it printed.
fn stint(stack: &Stack, args: &[&str]) -> String {
    let output = std::process::Command::new(stint_testkit::process::binary("stint"))
        .args(args)
        .env("STINT_API_URL", stack.server.url())
        .env("STINT_SECRET_KEY", stint_testkit::process::PROD_KEY)
        .output()
        .expect("running stint");
    assert!(output.status.success(), "stint {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_delays_and_reschedules_a_run() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(2);
    let id = stint(&stack, &["trigger", "noop", "--delay", "2h", "--ttl", "1h"]).trim().to_string();
    let run = stack.api.run(&id).await.unwrap();
    assert_eq!((run["status"].as_str(), run["ttl"].as_str()), (Some("DELAYED"), Some("1h")), "{run}");
    let said = stint(&stack, &["runs", "reschedule", &id, "--delay", "1s"]);
    assert!(said.starts_with(&format!("{id} is due at ")), "{said}");
    let run = stack.api.wait_finished(&id, LIMIT).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
}
