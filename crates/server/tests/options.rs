//! Trigger options over HTTP: delay, TTL, debounce, request idempotency, idempotency key reset,
//! and a clear 4xx naming the option for every invalid value.

mod common;

use common::{DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn trigger(s: &TestServer, options: Value) -> (StatusCode, Value) {
    s.post(PROD_KEY, "/api/v1/tasks/t/trigger", json!({"payload": 1, "options": options})).await
}

#[tokio::test]
async fn invalid_values_of_every_option_are_refused_naming_the_option() {
    let s = TestServer::start().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"delay": "soon"}), "delay must be"),
        (json!({"delay": 5}), "delay must be"),
        (json!({"delay": "1m1h"}), "delay must be"),
        (json!({"ttl": "ten minutes"}), "ttl must be"),
        (json!({"ttl": -1}), "ttl must be"),
        (json!({"ttl": 1.5}), "ttl must be"),
        (json!({"debounce": {"delay": "5s"}}), "debounce must be"),
        (json!({"debounce": {"key": "k", "delay": "5s", "extra": 1}}), "debounce must be"),
        (json!({"debounce": {"key": "", "delay": "5s"}}), "debounce.key"),
        (json!({"debounce": {"key": "k".repeat(513), "delay": "5s"}}), "debounce.key"),
        (json!({"debounce": {"key": "k", "delay": "0s"}}), "debounce.delay"),
        (json!({"debounce": {"key": "k", "delay": "5s", "mode": "middle"}}), "debounce.mode"),
        (json!({"debounce": {"key": "k", "delay": "5s", "maxDelay": "5s"}}), "debounce.maxDelay"),
        (json!({"debounce": {"key": "k", "delay": "5s", "maxDelay": "later"}}), "debounce.maxDelay"),
        (json!({"idempotencyKey": ""}), "idempotencyKey"),
        (json!({"idempotencyKey": "k", "idempotencyKeyTTL": "1w"}), "idempotencyKeyTTL"),
        (json!({"maxDuration": 0}), "maxDuration"),
        (json!({"maxAttempts": 251}), "maxAttempts"),
        (json!({"priority": "high"}), "priority"),
        (json!({"concurrencyKey": ""}), "concurrencyKey"),
        (json!({"metadata": "text"}), "metadata"),
        (json!({"metadataType": "text/plain", "metadata": {"a": 1}}), "metadataType"),
        (json!({"queue": {"name": ""}}), "queue"),
        (json!({"tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()}), "tags"),
        (json!({"lockToVersion": "v2"}), "lockToVersion"),
        (json!({"lockToVersion": 20261130}), "lockToVersion"),
        (json!({"lockToVersion": "20261130.1"}), "lockToVersion"),
    ];
    for (options, message) in cases {
        let (status, response) = trigger(&s, options.clone()).await;
        assert!(status.is_client_error(), "{options} → {status} {response}");
        assert!(error_of(&response).contains(message), "{options} → {response}");
    }
    assert_eq!(s.run_count(PROD_KEY).await, 0, "nothing was stored");
    let (status, response) = s
        .send(
            s.http
                .post(format!("{}/api/v1/tasks/t/trigger", s.base))
                .bearer_auth(PROD_KEY)
                .header("x-trigger-request-idempotency-key", "k".repeat(257))
                .json(&json!({"payload": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
}

#[tokio::test]
async fn a_delayed_run_shows_its_due_time_and_can_be_rescheduled() {
    let s = TestServer::start().await;
    let (status, response) = trigger(&s, json!({"delay": "1h30m", "ttl": "10m"})).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let id = response["id"].as_str().unwrap().to_string();
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["status"], "DELAYED");
    assert_eq!(run["ttl"], "10m");
    assert!(run["delayedUntil"].is_string(), "{run}");

    let path = format!("/api/v1/runs/{id}/reschedule");
    let (status, moved) = s.post(PROD_KEY, &path, json!({"delay": "2030-01-01T00:00:00Z"})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["delayedUntil"], "2030-01-01T00:00:00.000Z");
    assert_eq!(moved["status"], "DELAYED");
    let (status, response) = s.post(PROD_KEY, &path, json!({"delay": "whenever"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&response).contains("delay must be"), "{response}");
    let (status, _) = s.post(DEV_KEY, &path, json!({"delay": "1m"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another environment's run");

    let (_, queued) = trigger(&s, json!({})).await;
    let queued = queued["id"].as_str().unwrap();
    let (status, response) =
        s.post(PROD_KEY, &format!("/api/v1/runs/{queued}/reschedule"), json!({"delay": "1m"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&response).contains("only a delayed run"), "{response}");
}

#[tokio::test]
async fn debounced_triggers_answer_one_run() {
    let s = TestServer::start().await;
    let options = json!({"debounce": {"key": "user-1", "delay": "30s", "mode": "trailing"}});
    let (_, first) = trigger(&s, options.clone()).await;
    let (_, second) =
        s.post(PROD_KEY, "/api/v1/tasks/t/trigger", json!({"payload": {"n": 2}, "options": options})).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["isCached"], true);
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{}", first["id"].as_str().unwrap())).await;
    assert_eq!(run["payload"], json!({"n": 2}), "trailing: the latest payload");
}

#[tokio::test]
async fn a_retried_request_answers_the_first_answer() {
    let s = TestServer::start().await;
    let send = |key: &'static str| {
        s.send(
            s.http
                .post(format!("{}/api/v1/tasks/t/trigger", s.base))
                .bearer_auth(PROD_KEY)
                .header("x-trigger-request-idempotency-key", key)
                .json(&json!({"payload": 1})),
        )
    };
    let (_, first) = send("3f1c2a9e-0000-4000-8000-000000000001").await;
    let (_, again) = send("3f1c2a9e-0000-4000-8000-000000000001").await;
    assert_eq!(first, again);
    let (_, other) = send("3f1c2a9e-0000-4000-8000-000000000002").await;
    assert_ne!(first["id"], other["id"]);
    assert_eq!(s.run_count(PROD_KEY).await, 2);
}

#[tokio::test]
async fn an_idempotency_key_can_be_reset() {
    let s = TestServer::start().await;
    let (_, first) = trigger(&s, json!({"idempotencyKey": "order-1"})).await;
    let (_, cached) = trigger(&s, json!({"idempotencyKey": "order-1"})).await;
    assert_eq!((cached["id"].clone(), cached["isCached"].clone()), (first["id"].clone(), json!(true)));
    let path = "/api/v1/idempotencyKeys/order-1/reset";
    let (status, response) = s.post(DEV_KEY, path, json!({"taskIdentifier": "t"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{response}");
    let (status, response) = s.post(PROD_KEY, path, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{response}");
    assert!(error_of(&response).contains("taskIdentifier"), "{response}");
    let (status, response) = s.post(PROD_KEY, path, json!({"taskIdentifier": "t"})).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["id"], first["id"]);
    let (_, fresh) = trigger(&s, json!({"idempotencyKey": "order-1"})).await;
    assert_eq!(fresh["isCached"], false);
    assert_ne!(fresh["id"], first["id"]);
}
