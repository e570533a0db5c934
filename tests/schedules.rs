//! Schedules with the built binaries: a schedule every minute on the wall clock fires runs of
//! `tick` with Trigger.dev's payload.

use std::time::Duration;

use serde_json::json;
use stint_e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_every_minute_fires_runs_with_the_schedule_payload() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let api = &stack.api;
    // The worker registers `tick` before a schedule can name it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let schedule = loop {
        let body = json!({"task": "tick", "cron": "* * * * *", "deduplicationKey": "e2e", "externalId": "x-1"});
        match api.post("/api/v1/schedules", body).await {
            Ok(schedule) => break schedule,
            Err(error) => {
                assert!(std::time::Instant::now() < deadline, "the schedule was never accepted: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let id = schedule["id"].as_str().unwrap().to_string();
    assert_eq!(schedule["generator"]["expression"], "* * * * *");

    // Within a minute and a bit, a run of `tick` fired by it.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let run_id = loop {
        let runs = api.get("/api/v1/runs?filter[taskIdentifier]=tick").await.unwrap();
        if let Some(run) = runs["data"].as_array().and_then(|runs| runs.first()) {
            break run["id"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no run fired within 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let run = api.wait_finished(&run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    let payload = &run["payload"];
    assert_eq!(payload["scheduleId"], json!(id));
    assert_eq!(payload["type"], "IMPERATIVE");
    assert_eq!(payload["externalId"], "x-1");
    assert_eq!(payload["timezone"], "UTC");
    let timestamp = payload["timestamp"].as_str().unwrap();
    assert!(timestamp.ends_with(":00.000Z") || timestamp.ends_with(":00Z"), "on the minute: {timestamp}");
    // `tick` answers with the same time, written by chrono.
    assert_eq!(run["output"]["scheduleId"], json!(id));
    let answered = run["output"]["timestamp"].as_str().unwrap();
    assert_eq!(answered[..16], timestamp[..16], "{answered} is {timestamp}");
    assert_eq!(run["schedule"]["id"], json!(id));
    // Made up to half a minute ahead, it starts no earlier than its time.
    let at = |field: &str| stint_types::Timestamp::parse(run[field].as_str().unwrap()).unwrap();
    let nominal = stint_types::Timestamp::parse(timestamp).unwrap();
    assert_eq!(at("createdAt"), nominal, "{run}");
    assert!(at("startedAt") >= nominal, "{run}");
}
