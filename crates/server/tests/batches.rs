//! Batches over HTTP: the two-phase API, the legacy one-request batch triggers and reading a
//! batch, in Trigger.dev's shapes; bad items refuse the whole request, name the item and store
//! nothing; another environment's batch is not found.

mod common;

use common::{DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

const NDJSON: &str = "application/x-ndjson";

/// NDJSON of `{index, task, payload}` items for `indexes`.
fn lines(indexes: impl IntoIterator<Item = u32>) -> String {
    indexes.into_iter().map(|i| json!({"index": i, "task": "t", "payload": {"i": i}}).to_string() + "\n").collect()
}

async fn create(s: &TestServer, key: &str, body: Value) -> (StatusCode, Value) {
    s.post(key, "/api/v3/batches", body).await
}

async fn items(s: &TestServer, key: &str, batch: &str, body: String) -> (StatusCode, Value) {
    s.post_raw(key, &format!("/api/v3/batches/{batch}/items"), body, NDJSON).await
}

async fn new_batch(s: &TestServer, run_count: u32) -> String {
    let (status, created) = create(s, PROD_KEY, json!({"runCount": run_count})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_two_phase_api_in_trigger_devs_shapes() {
    let s = TestServer::start().await;
    let (status, created) = create(&s, PROD_KEY, json!({"runCount": 3, "taskIdentifiers": ["t"]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("batch_"), "{created}");
    assert_eq!(created, json!({"id": id, "runCount": 3, "isCached": false}));

    let (status, partial) = items(&s, PROD_KEY, &id, lines([2, 0])).await;
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!(
        partial,
        json!({"id": id, "itemsAccepted": 2, "itemsDeduplicated": 0, "sealed": false, "enqueuedCount": 2, "expectedCount": 3})
    );
    let (_, pending) = s.get(PROD_KEY, &format!("/api/v1/batches/{id}")).await;
    assert_eq!(pending["status"], json!("PENDING"));

    // The whole stream again: the missing item is made, the others are counted as duplicates.
    let (status, sealed) = items(&s, PROD_KEY, &id, lines(0..3)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sealed, json!({"id": id, "itemsAccepted": 1, "itemsDeduplicated": 2, "sealed": true}));

    let (status, batch) = s.get(PROD_KEY, &format!("/api/v1/batches/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(batch["id"], json!(id));
    assert_eq!(batch["status"], json!("PROCESSING"));
    assert_eq!(batch["runCount"], json!(3));
    assert!(batch["createdAt"].as_str().unwrap().ends_with('Z') && batch["updatedAt"].is_string());
    assert!(batch.get("processing").is_none(), "v1 has no processing: {batch}");
    let runs: Vec<String> = serde_json::from_value(batch["runs"].clone()).unwrap();
    assert_eq!(runs.len(), 3);
    for (at, run_id) in runs.iter().enumerate() {
        let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{run_id}")).await;
        assert_eq!(run["payload"], json!({"i": at}), "runs are in item order");
        assert_eq!(run["batchId"], json!(id));
        assert_eq!(run["triggerFunction"], json!("batchTrigger"));
    }
    let (_, v2) = s.get(PROD_KEY, &format!("/api/v2/batches/{id}")).await;
    assert_eq!(v2["runs"], batch["runs"]);
    assert_eq!(v2["processing"]["errors"], json!([]));
    assert!(v2["processing"]["completedAt"].is_string(), "{v2}");

    let (_, listed) = s.get(PROD_KEY, &format!("/api/v1/runs?filter[batch]={id}")).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    let (_, single) = s.get(PROD_KEY, "/api/v1/runs").await;
    assert_eq!(single["data"].as_array().unwrap().len(), 3, "no duplicate runs");
}

#[tokio::test]
async fn a_batch_idempotency_key_answers_the_same_batch() {
    let s = TestServer::start().await;
    let body = json!({"runCount": 2, "idempotencyKey": "nightly", "idempotencyKeyOptions": {"scope": "global"}});
    let (_, first) = create(&s, PROD_KEY, body.clone()).await;
    assert_eq!((first["isCached"].clone(), first["idempotencyKey"].clone()), (json!(false), json!("nightly")));
    let (status, again) = create(&s, PROD_KEY, body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!((again["id"].clone(), again["isCached"].clone()), (first["id"].clone(), json!(true)));
    let (_, elsewhere) = create(&s, DEV_KEY, body).await;
    assert_ne!(elsewhere["id"], first["id"], "keys are per environment");
}

#[tokio::test]
async fn a_bad_item_refuses_its_request_names_the_item_and_stores_nothing() {
    let s = TestServer::start().await;
    let id = new_batch(&s, 5).await;
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            lines([0]) + &json!({"index": 1, "task": "t", "options": {"maxAttempts": 0}}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[1]: maxAttempts must be between 1 and 250",
        ),
        (
            json!({"index": 3, "task": "t", "options": {"idempotencyKey": "k", "idempotencyKeyTTL": "soon"}})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[3]: idempotencyKeyTTL",
        ),
        (
            json!({"index": 2, "task": "t", "options": {"delay": "later", "queue": {"name": "q"}}}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[2]: delay must be",
        ),
        (lines([0, 5]), StatusCode::UNPROCESSABLE_ENTITY, "items[5]: index 5 is outside this batch"),
        (json!({"index": 0, "task": "bad task"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "items[0]:"),
        (lines([0]) + "{\"index\": 1,", StatusCode::BAD_REQUEST, "line 2:"),
        (json!({"index": 0, "task": "t", "colour": 1}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "line 1:"),
        (json!({"index": -1, "task": "t"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "line 1: index"),
        ("\n\n".into(), StatusCode::BAD_REQUEST, "no items"),
    ];
    for (body, status, message) in cases {
        let (got, answer) = items(&s, PROD_KEY, &id, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(error_of(&answer).contains(message), "{body}: {answer}");
    }
    let big = json!({"index": 4, "task": "t", "payload": "x".repeat(3 * 1024 * 1024 + 1)}).to_string();
    let (status, answer) = items(&s, PROD_KEY, &id, lines([0]) + &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(error_of(&answer).starts_with("items[4]: the payload is"), "{answer}");
    let (status, answer) = s.post(PROD_KEY, &format!("/api/v3/batches/{id}/items"), json!({"index": 0})).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");

    assert_eq!(s.run_count(PROD_KEY).await, 0, "nothing was stored");
    let (_, batch) = s.get(PROD_KEY, &format!("/api/v1/batches/{id}")).await;
    assert_eq!((batch["status"].clone(), batch["runs"].clone()), (json!("PENDING"), json!([])));
}

#[tokio::test]
async fn a_batch_must_have_one_to_a_thousand_items_and_no_parent_yet() {
    let s = TestServer::start().await;
    for (body, status, message) in [
        (json!({"runCount": 0}), StatusCode::BAD_REQUEST, "at least one item"),
        (json!({"runCount": 1001}), StatusCode::BAD_REQUEST, "the most a batch may have is 1000"),
        (
            json!({"runCount": 1, "parentRunId": "run_x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "parentRunId is not supported",
        ),
        (
            json!({"runCount": 1, "resumeParentOnCompletion": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "resumeParentOnCompletion is not supported",
        ),
        (json!({"runCount": 1, "taskIdentifiers": ["a b"]}), StatusCode::UNPROCESSABLE_ENTITY, "taskIdentifiers"),
        (json!({"runCount": "many"}), StatusCode::UNPROCESSABLE_ENTITY, "runCount"),
    ] {
        let (got, answer) = create(&s, PROD_KEY, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(error_of(&answer).contains(message), "{body}: {answer}");
    }
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"task": "t", "payload": 1})).collect();
    let (status, answer) = s.post(PROD_KEY, "/api/v1/tasks/batch", json!({"items": too_many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = s.post(PROD_KEY, "/api/v2/tasks/batch", json!({"items": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(s.run_count(PROD_KEY).await, 0);
}

#[tokio::test]
async fn another_environments_batch_is_not_found() {
    let s = TestServer::start().await;
    let id = new_batch(&s, 1).await;
    for path in [format!("/api/v1/batches/{id}"), format!("/api/v2/batches/{id}")] {
        let (status, answer) = s.get(DEV_KEY, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(error_of(&answer), format!("Batch {id} not found"));
    }
    let (status, _) = items(&s, DEV_KEY, &id, lines([0])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for missing in ["batch_01arz3ndektsv4rrffq69g5fav", "run_01arz3ndektsv4rrffq69g5fav", "nothing"] {
        let (status, _) = s.get(PROD_KEY, &format!("/api/v1/batches/{missing}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(s.run_count(DEV_KEY).await, 0);
    let (_, batch) = s.get(PROD_KEY, &format!("/api/v1/batches/{id}")).await;
    assert_eq!(batch["runs"], json!([]));
}

#[tokio::test]
async fn the_legacy_batch_triggers_answer_in_their_shapes() {
    let s = TestServer::start().await;
    let body = json!({"items": [
        {"task": "a", "payload": {"n": 0}},
        {"task": "b", "payload": {"n": 1}, "options": {"idempotencyKey": "item-key", "tags": ["x"]}},
    ]});
    let (status, v1) = s.post(PROD_KEY, "/api/v1/tasks/batch", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v1}");
    assert!(v1["id"].as_str().unwrap().starts_with("batch_"));
    assert_eq!(v1["isCached"], json!(false));
    assert_eq!(v1["runs"][0]["taskIdentifier"], json!("a"));
    assert_eq!(v1["runs"][1]["idempotencyKey"], json!("item-key"));
    assert_eq!(v1["runs"][1]["isCached"], json!(false));
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{}", v1["runs"][1]["id"].as_str().unwrap())).await;
    assert_eq!((run["payload"].clone(), run["tags"].clone()), (json!({"n": 1}), json!(["x"])));

    // The same items through v2: the item with the key is answered by the run it named.
    let (status, v2) = s.post(PROD_KEY, "/api/v2/tasks/batch", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v2}");
    assert_eq!(v2["runCount"], json!(2));
    assert_ne!(v2["id"], v1["id"]);
    assert_eq!(v2["runs"][1]["id"], v1["runs"][1]["id"]);
    assert_eq!(v2["runs"][1]["isCached"], json!(true));
    let (_, batch) = s.get(PROD_KEY, &format!("/api/v1/batches/{}", v2["id"].as_str().unwrap())).await;
    assert_eq!(batch["runs"][1], v1["runs"][1]["id"], "the cached item is the batch's too");

    let one_task = json!({"items": [{"payload": 1}, {"payload": 2, "options": {"priority": 5}}]});
    let request = s.http.post(format!("{}/api/v1/tasks/only/batch", s.base)).bearer_auth(PROD_KEY);
    let (status, task) = s.send(request.header("idempotency-key", "once").json(&one_task)).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert!(task["batchId"].as_str().unwrap().starts_with("batch_"));
    assert_eq!(task["runs"].as_array().unwrap().len(), 2);
    let request = s.http.post(format!("{}/api/v1/tasks/only/batch", s.base)).bearer_auth(PROD_KEY);
    let (_, again) = s.send(request.header("idempotency-key", "once").json(&one_task)).await;
    assert_eq!(again, task, "the batch key answers the same batch");

    let bad = json!({"items": [{"task": "a"}, {"task": "a", "options": {"metadata": [1]}}]});
    let (status, answer) = s.post(PROD_KEY, "/api/v1/tasks/batch", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_of(&answer), "items[1]: metadata must be a JSON object");
    let parent = json!({"items": [{"task": "a"}], "parentRunId": "run_x"});
    let (status, _) = s.post(PROD_KEY, "/api/v2/tasks/batch", parent).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s.run_count(PROD_KEY).await, 5, "two, one more through v2, and two of one task");
}

#[tokio::test]
async fn a_batch_body_may_pass_a_triggers_limit() {
    let s = TestServer::start().await;
    // A thousand items of 4 KB: 4 MB, over a single trigger's 3 MB.
    let payload = "y".repeat(4_096);
    let items: Vec<Value> = (0..1_000).map(|_| json!({"task": "t", "payload": payload})).collect();
    let (status, answer) = s.post(PROD_KEY, "/api/v1/tasks/batch", json!({"items": items})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["runs"].as_array().unwrap().len(), 1_000);
}
