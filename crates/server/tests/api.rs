//! The public API over HTTP against a real server on a SQLite file: shapes, filters, pages, and
//! bad input answered with a clear 4xx and nothing stored.

mod common;

use std::net::SocketAddr;

use common::{DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stint_server::{Config, Server};
use stint_types::EnvironmentType;

#[tokio::test]
async fn trigger_and_retrieve_in_trigger_devs_shapes() {
    let s = TestServer::start().await;
    let body =
        json!({"payload": {"name": "Ada"}, "options": {"tags": ["a", "b"], "metadata": {"m": 1}, "maxAttempts": 2}});
    let (status, response) = s.post(PROD_KEY, "/api/v1/tasks/hello-world/trigger", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["isCached"], json!(false));
    let id = response["id"].as_str().unwrap();
    assert!(id.starts_with("run_"));

    let (status, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["id"], json!(id));
    assert_eq!(run["status"], json!("QUEUED"));
    assert_eq!(run["taskIdentifier"], json!("hello-world"));
    assert_eq!(run["payload"], json!({"name": "Ada"}));
    assert_eq!(run["tags"], json!(["a", "b"]));
    assert_eq!(run["metadata"], json!({"m": 1}));
    assert_eq!(run["isQueued"], json!(true));
    assert_eq!(run["isCompleted"], json!(false));
    assert_eq!(run["attemptCount"], json!(0));
    assert_eq!(run["relatedRuns"], json!({}));
    assert!(run["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(run.get("output").is_none());
}

#[tokio::test]
async fn cancel_and_replay() {
    let s = TestServer::start().await;
    let id = s.trigger(PROD_KEY, "t", json!({"payload": [1, 2]})).await;
    let (status, response) = s.post(PROD_KEY, &format!("/api/v2/runs/{id}/cancel"), json!({})).await;
    assert_eq!((status, response), (StatusCode::OK, json!({"id": id})));
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["status"], json!("CANCELED"));
    assert_eq!(run["isCancelled"], json!(true));
    assert!(run["finishedAt"].is_string());
    let (status, _) = s.post(PROD_KEY, &format!("/api/v2/runs/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "cancelling a finished run changes nothing and succeeds");

    let (status, replay) = s.post(PROD_KEY, &format!("/api/v1/runs/{id}/replay"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let new_id = replay["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{new_id}")).await;
    assert_eq!(run["status"], json!("QUEUED"));
    assert_eq!(run["payload"], json!([1, 2]));
    assert_eq!(run["replayedFrom"], json!(id));
}

#[tokio::test]
async fn list_filters_and_pages() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let task = if i % 2 == 0 { "even" } else { "odd" };
        let tags = if i < 2 { json!(["vip"]) } else { json!([]) };
        ids.push(s.trigger(PROD_KEY, task, json!({"payload": i, "options": {"tags": tags}})).await);
    }
    s.trigger(DEV_KEY, "even", json!({"payload": 0})).await;
    s.post(PROD_KEY, &format!("/api/v2/runs/{}/cancel", ids[3]), json!({})).await;
    let newest: Vec<String> = ids.iter().rev().cloned().collect();
    let ids_of = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };

    let (_, all) = s.get(PROD_KEY, "/api/v1/runs").await;
    assert_eq!(ids_of(&all), newest);
    assert_eq!(all["data"][0]["env"]["name"], json!("prod"));
    let (_, cancelled) = s.get(PROD_KEY, "/api/v1/runs?filter[status]=CANCELED").await;
    assert_eq!(ids_of(&cancelled), vec![ids[3].clone()]);
    let (_, odd) = s.get(PROD_KEY, "/api/v1/runs?filter[taskIdentifier]=odd").await;
    assert_eq!(ids_of(&odd), vec![ids[5].clone(), ids[3].clone(), ids[1].clone()]);
    let (_, vip) = s.get(PROD_KEY, "/api/v1/runs?filter[tag]=vip").await;
    assert_eq!(ids_of(&vip), vec![ids[1].clone(), ids[0].clone()]);
    let (_, future) = s.get(PROD_KEY, "/api/v1/runs?filter[createdAt][from]=2999-01-01T00:00:00Z").await;
    assert!(ids_of(&future).is_empty());

    let (_, first) = s.get(PROD_KEY, "/api/v1/runs?page[size]=3").await;
    assert_eq!(ids_of(&first), newest[..3].to_vec());
    assert_eq!(first["pagination"], json!({"next": newest[2]}));
    let (_, second) = s.get(PROD_KEY, &format!("/api/v1/runs?page[size]=3&page[after]={}", newest[2])).await;
    assert_eq!(ids_of(&second), newest[3..6].to_vec());
    assert_eq!(second["pagination"], json!({"next": newest[5], "previous": newest[3]}));
    let (_, last) = s.get(PROD_KEY, &format!("/api/v1/runs?page[size]=3&page[after]={}", newest[5])).await;
    assert_eq!(ids_of(&last), newest[6..].to_vec());
    assert_eq!(last["pagination"], json!({"previous": newest[6]}));
    let (_, back) = s.get(PROD_KEY, &format!("/api/v1/runs?page[size]=3&page[before]={}", newest[3])).await;
    assert_eq!(ids_of(&back), newest[..3].to_vec());
    assert_eq!(back["pagination"], json!({"next": newest[2]}));
}

#[tokio::test]
async fn keys_see_only_their_environment() {
    let s = TestServer::start().await;
    let id = s.trigger(PROD_KEY, "t", json!({"payload": 1})).await;
    for (key, expected) in [("", StatusCode::UNAUTHORIZED), ("tr_prod_wrongwrongwrongwrong", StatusCode::UNAUTHORIZED)]
    {
        let (status, body) = s.get(key, &format!("/api/v3/runs/{id}")).await;
        assert_eq!(status, expected);
        assert_eq!(error_of(&body), "Invalid or Missing API key");
    }
    let (status, body) = s.send(s.http.get(format!("{}/api/v1/runs", s.base))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (foreign_status, foreign) = s.get(DEV_KEY, &format!("/api/v3/runs/{id}")).await;
    let missing_id = "run_01kzzzzzzzzzzzzzzzzzzzzzzz";
    let (missing_status, missing) = s.get(DEV_KEY, &format!("/api/v3/runs/{missing_id}")).await;
    assert_eq!(foreign_status, StatusCode::NOT_FOUND);
    assert_eq!(missing_status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&foreign), format!("Run {id} not found"));
    assert_eq!(error_of(&missing), format!("Run {missing_id} not found"));
    let (status, _) = s.get(PROD_KEY, "/api/v3/runs/not-a-run-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [format!("/api/v2/runs/{id}/cancel"), format!("/api/v1/runs/{id}/replay")] {
        let (status, _) = s.post(DEV_KEY, &path, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(s.run_count(DEV_KEY).await, 0);
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["status"], json!("QUEUED"), "nothing the other key did changed the run");
}

#[tokio::test]
async fn bad_trigger_requests_get_a_clear_4xx_and_store_nothing() {
    let s = TestServer::start().await;
    let path = "/api/v1/tasks/t/trigger";
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"payload": 1, "options": {"maxAttempt": 3}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `maxAttempt`",
        ),
        (json!({"payload": 1, "extra": true}), StatusCode::UNPROCESSABLE_ENTITY, "unknown field `extra`"),
        (json!({"payload": 1, "options": {"tags": 5}}), StatusCode::UNPROCESSABLE_ENTITY, "options.tags"),
        (json!({"payload": 1, "options": {"maxAttempts": "3"}}), StatusCode::UNPROCESSABLE_ENTITY, "maxAttempts"),
        (json!({"payload": 1, "options": {"maxAttempts": 0}}), StatusCode::UNPROCESSABLE_ENTITY, "between 1 and 250"),
        (
            json!({"payload": 1, "options": {"tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most 10 tags",
        ),
        (
            json!({"payload": 1, "options": {"tags": ["x".repeat(129)]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "longer than 128",
        ),
        (
            json!({"payload": 1, "options": {"metadata": [1]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "metadata must be a JSON object",
        ),
        (
            json!({"payload": 1, "options": {"queue": {"name": "bad name"}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "queue name",
        ),
        (
            json!({"payload": 1, "options": {"payloadType": "text/plain"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "payload must be a string",
        ),
    ];
    for (body, expected, message) in cases {
        let (status, response) = s.post(PROD_KEY, path, body.clone()).await;
        assert_eq!(status, expected, "{body} → {response}");
        assert!(error_of(&response).contains(message), "{body} → {response}");
    }

    let (status, response) = s.post_raw(PROD_KEY, path, "{\"payload\": ", "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&response).contains("Malformed JSON"));
    let (status, _) = s.post_raw(PROD_KEY, path, vec![0xff, 0xfe, 0x00], "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let deep = format!("{{\"payload\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, _) = s.post_raw(PROD_KEY, path, deep, "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, response) = s.post_raw(PROD_KEY, path, "payload=1", "application/x-www-form-urlencoded").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(&response).contains("application/json"));
    let (status, _) = s.post(PROD_KEY, "/api/v1/tasks/bad%20task/trigger", json!({"payload": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let big = json!({"payload": "x".repeat(3 * 1024 * 1024)});
    let (status, response) = s.post(PROD_KEY, path, big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{response}");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.to_string().into_bytes().chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let streamed = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let (status, _) = s.post_raw(PROD_KEY, path, streamed, "application/json").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "a body without a length is cut off at the limit");

    assert_eq!(s.run_count(PROD_KEY).await, 0, "no bad request stored a run");
}

#[tokio::test]
async fn bad_list_queries_and_unknown_routes() {
    let s = TestServer::start().await;
    for (query, message) in [
        ("filter[status]=DONE", "unknown run status 'DONE'"),
        ("page[size]=0", "page[size]"),
        ("page[size]=101", "page[size]"),
        ("page[after]=abc", "page[after]"),
        ("filter[createdAt][from]=yesterday", "ISO 8601"),
        ("filter[version]=1", "Unsupported query parameter 'filter[version]'"),
    ] {
        let (status, body) = s.get(PROD_KEY, &format!("/api/v1/runs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(error_of(&body).contains(message), "{query} → {body}");
    }
    let (status, body) = s.get(PROD_KEY, "/api/v9/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_of(&body).contains("No route"));
    let (status, body) = s.get(PROD_KEY, "/api/v1/tasks/t/trigger").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(&body).contains("GET"));
    let (status, body) = s.send(s.http.get(format!("{}/healthz", s.base))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn first_start_generates_keys_readable_only_by_the_owner() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret-keys.env"), "STINT_DEV_SECRET_KEY=tr_dev_left_from_an_old_database\n")
        .unwrap();
    let mut config = Config::new(dir.path());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.initial_keys = vec![(EnvironmentType::Production, PROD_KEY.into())];
    let server = Server::start(config).await.unwrap();
    let file = dir.path().join("secret-keys.env");
    let text = std::fs::read_to_string(&file).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let keys: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        vec!["STINT_DEV_SECRET_KEY", "STINT_STAGING_SECRET_KEY", "STINT_ADMIN_TOKEN"],
        "the given prod key is not written; the generated admin token is"
    );
    assert!(keys[0].1.starts_with("tr_dev_") && keys[1].1.starts_with("tr_stg_"));
    assert!(!text.contains("left_from_an_old_database"));

    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for key in [keys[0].1, keys[1].1, PROD_KEY] {
        let response = http.get(format!("{base}/api/v1/runs")).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{key}");
    }
    drop(stop);
}

#[tokio::test]
async fn workers_reach_only_their_environment() {
    let s = TestServer::start().await;
    let (status, registered) =
        s.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": [{"id": "t"}]})).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let worker = registered["workerId"].as_str().unwrap().to_string();
    assert!(registered["heartbeatIntervalMs"].as_u64().unwrap() > 0);
    let id = s.trigger(PROD_KEY, "t", json!({"payload": 1})).await;

    // Another environment's key cannot use the worker, nor complete the run through a worker of
    // its own.
    for (path, body) in [
        (format!("/api/v1/workers/{worker}/dequeue"), json!({"maxRuns": 5, "waitMs": 0})),
        (format!("/api/v1/workers/{worker}/heartbeat"), json!({"runs": []})),
        (format!("/api/v1/workers/{worker}/complete"), json!({"completions": []})),
        (format!("/api/v1/workers/{worker}/disconnect"), json!({})),
    ] {
        let (status, body) = s.post(DEV_KEY, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, dev_worker) =
        s.post(DEV_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": [{"id": "t"}]})).await;
    let dev_worker = dev_worker["workerId"].as_str().unwrap();
    let (_, taken) =
        s.post(DEV_KEY, &format!("/api/v1/workers/{dev_worker}/dequeue"), json!({"maxRuns": 5, "waitMs": 0})).await;
    assert_eq!(taken["runs"], json!([]), "the dev worker sees no prod run");

    let (status, taken) =
        s.post(PROD_KEY, &format!("/api/v1/workers/{worker}/dequeue"), json!({"maxRuns": 5, "waitMs": 0})).await;
    assert_eq!(status, StatusCode::OK);
    let snapshot = taken["runs"][0]["snapshotId"].as_str().unwrap().to_string();
    let completion = json!({"completions": [{"runId": id, "snapshotId": snapshot, "ok": true, "output": 1}]});
    let (_, foreign) = s.post(DEV_KEY, &format!("/api/v1/workers/{dev_worker}/complete"), completion.clone()).await;
    assert_eq!(foreign["results"][0]["outcome"], json!("NOT_FOUND"));
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["status"], json!("EXECUTING"), "the other environment's completion changed nothing");
    let (_, own) = s.post(PROD_KEY, &format!("/api/v1/workers/{worker}/complete"), completion).await;
    assert_eq!(own["results"][0]["outcome"], json!("RUN_FINISHED"));
    assert_eq!(own["results"][0]["status"], json!("COMPLETED"));
}

#[tokio::test]
async fn bad_worker_requests_get_a_clear_4xx() {
    let s = TestServer::start().await;
    let (status, body) = s.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&body).contains("at least one task"));
    let (status, body) = s
        .post(
            PROD_KEY,
            "/api/v1/workers/register",
            json!({"version": "1", "tasks": [{"id": "t", "retry": {"maxAttempts": 0}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&body).contains("maxAttempts"), "{body}");
    let (_, registered) =
        s.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": [{"id": "t"}]})).await;
    let worker = registered["workerId"].as_str().unwrap();
    for (body, message) in [
        (json!({"maxRuns": 0}), "maxRuns"),
        (json!({"maxRuns": 5, "waitMs": 60_000}), "waitMs"),
        (json!({"maxRuns": 5, "extra": 1}), "unknown field"),
    ] {
        let (status, answer) = s.post(PROD_KEY, &format!("/api/v1/workers/{worker}/dequeue"), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(error_of(&answer).contains(message), "{body} → {answer}");
    }
    let confused = json!({"completions": [{"runId": "run_x", "snapshotId": "s", "ok": false}]});
    let (status, answer) = s.post(PROD_KEY, &format!("/api/v1/workers/{worker}/complete"), confused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&answer).contains("no error"));
    let (status, _) = s.post(PROD_KEY, "/api/v1/workers/worker_nope/dequeue", json!({"maxRuns": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_return_the_same_run() {
    let s = TestServer::start().await;
    let path = "/api/v1/tasks/t/trigger";
    let (status, first) = s.post(PROD_KEY, path, json!({"payload": 1, "options": {"idempotencyKey": "k1"}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["isCached"], json!(false));
    let (_, again) = s.post(PROD_KEY, path, json!({"payload": 2, "options": {"idempotencyKey": "k1"}})).await;
    assert_eq!((again["id"].clone(), again["isCached"].clone()), (first["id"].clone(), json!(true)));
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{}", first["id"].as_str().unwrap())).await;
    assert_eq!(run["idempotencyKey"], json!("k1"));
    assert_eq!(run["payload"], json!(1), "the cached run is the first one");

    // The header form, as Trigger.dev accepts it.
    let request = s.http.post(format!("{}{path}", s.base)).bearer_auth(PROD_KEY).header("idempotency-key", "k2");
    let (_, by_header) = s.send(request.try_clone().unwrap().json(&json!({"payload": 1}))).await;
    let (_, by_header_again) = s.send(request.json(&json!({"payload": 1}))).await;
    assert_eq!(by_header["id"], by_header_again["id"]);
    assert_eq!(by_header_again["isCached"], json!(true));

    // Fifty at once: one run.
    let mut calls = Vec::new();
    for _ in 0..50 {
        let (http, url) = (s.http.clone(), format!("{}{path}", s.base));
        calls.push(tokio::spawn(async move {
            let body = json!({"payload": 1, "options": {"idempotencyKey": "burst"}});
            let response = http.post(url).bearer_auth(PROD_KEY).json(&body).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for call in calls {
        ids.insert(call.await.unwrap());
    }
    assert_eq!(ids.len(), 1);

    for (options, message) in [
        (json!({"idempotencyKey": "k", "idempotencyKeyTTL": "10 minutes"}), "idempotencyKeyTTL"),
        (json!({"idempotencyKey": "k", "idempotencyKeyTTL": "5w"}), "idempotencyKeyTTL"),
        (json!({"idempotencyKey": "x".repeat(2049)}), "idempotencyKey must be"),
        (json!({"idempotencyKey": ""}), "idempotencyKey must be"),
    ] {
        let (status, body) = s.post(PROD_KEY, path, json!({"payload": 1, "options": options})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(error_of(&body).contains(message), "{body}");
    }
}
