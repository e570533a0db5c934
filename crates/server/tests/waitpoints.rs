//! Waitpoint tokens over HTTP (made, read, listed, completed through the API and through their
//! callback URL, timed out), the run-internal waits, and the worker's durable calls: steps,
//! waits and going on after them, with the journal a replayed run gets.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stint_types::Timestamp;

const TOKENS: &str = "/api/v1/waitpoints/tokens";

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, created) = server.post(PROD_KEY, TOKENS, body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created
}

async fn token(server: &TestServer, key: &str, id: &str) -> (StatusCode, Value) {
    server.get(key, &format!("{TOKENS}/{id}")).await
}

/// POSTs `body` to a callback URL, without a credential.
async fn call_back(server: &TestServer, url: &str, body: &str) -> (StatusCode, Value) {
    server.send(server.http.post(url).header("content-type", "application/json").body(body.to_string())).await
}

/// The ids of a listing's page, and its cursors.
async fn page(server: &TestServer, query: &str) -> (Vec<String>, Value) {
    let (status, listed) = server.get(PROD_KEY, &format!("{TOKENS}?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {listed}");
    let ids = listed["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    (ids, listed["pagination"].clone())
}

/// Polls `check` every 50 ms until it answers something, for at most 10 s.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tokens_are_made_read_and_completed_once() {
    let server = TestServer::start().await;
    let plain = create(&server, json!({})).await;
    let id = plain["id"].as_str().unwrap();
    assert!(id.starts_with("waitpoint_"), "{plain}");
    assert_eq!(plain["isCached"], false);
    let url = plain["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}{TOKENS}/{id}/callback/", server.base)), "{url}");

    // A key answers the token it made, also with other options.
    let body = json!({"idempotencyKey": "approve-42", "idempotencyKeyTTL": "1h", "timeout": "1h30m",
                      "tags": [" review ", "b", "review", ""]});
    let keyed = create(&server, body).await;
    assert_eq!(keyed["isCached"], false);
    assert_ne!(keyed["id"], plain["id"]);
    let again = create(&server, json!({"idempotencyKey": "approve-42", "tags": "other"})).await;
    assert_eq!(again["id"], keyed["id"]);
    assert_eq!(again["isCached"], true);
    assert_eq!(again["url"], keyed["url"]);

    let (status, shown) = token(&server, PROD_KEY, keyed["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["status"], "WAITING");
    assert_eq!(shown["url"], keyed["url"]);
    assert_eq!(shown["idempotencyKey"], "approve-42");
    assert!(shown["idempotencyKeyExpiresAt"].is_string(), "{shown}");
    assert_eq!(shown["tags"], json!(["b", "review"]));
    assert!(shown.get("output").is_none() && shown.get("completedAt").is_none(), "{shown}");
    let time = |field: &str| Timestamp::parse_date(shown[field].as_str().unwrap()).unwrap().millis();
    let ahead = time("timeoutAt") - time("createdAt");
    assert!((5_395_000..=5_405_000).contains(&ahead), "timeoutAt is 1h30m after creation: {shown}");
    let (_, plain_shown) = token(&server, PROD_KEY, id).await;
    assert!(plain_shown.get("idempotencyKey").is_none(), "a token made without a key shows none: {plain_shown}");
    assert!(plain_shown.get("timeoutAt").is_none(), "{plain_shown}");

    // Completing twice succeeds twice; the first data stays.
    let complete = format!("{TOKENS}/{id}/complete");
    let (status, done) = server.post(PROD_KEY, &complete, json!({"data": {"approved": true}})).await;
    assert_eq!((status, done), (StatusCode::OK, json!({"success": true})));
    let (status, done) = server.post(PROD_KEY, &complete, json!({"data": {"approved": false}})).await;
    assert_eq!((status, done), (StatusCode::OK, json!({"success": true})));
    let (_, shown) = token(&server, PROD_KEY, id).await;
    assert_eq!(shown["status"], "COMPLETED", "{shown}");
    assert_eq!(serde_json::from_str::<Value>(shown["output"].as_str().unwrap()).unwrap(), json!({"approved": true}));
    assert_eq!(shown["outputIsError"], false);
    assert!(shown["completedAt"].is_string(), "{shown}");

    let (status, missing) = token(&server, PROD_KEY, "waitpoint_01arz3ndektsv4rrffq69g5fav").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert!(error_of(&missing).contains("not found"), "{missing}");
    let (status, _) = token(&server, PROD_KEY, "nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_callback_url_completes_its_token_and_a_wrong_hash_changes_nothing() {
    let server = TestServer::start().await;
    let made = create(&server, json!({})).await;
    let (id, url) = (made["id"].as_str().unwrap(), made["url"].as_str().unwrap());

    let (head, last) = url.split_at(url.len() - 1);
    let forged = format!("{head}{}", if last == "0" { "1" } else { "0" });
    for wrong in [forged.as_str(), head, &url.replace("/callback/", "/callback/00")] {
        let (status, refused) = call_back(&server, wrong, r#"{"approved": true}"#).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}: {refused}");
    }
    // Another token's hash does not open this one.
    let other = create(&server, json!({})).await;
    let hash = other["url"].as_str().unwrap().rsplit('/').next().unwrap();
    let (status, _) = call_back(&server, &format!("{}{TOKENS}/{id}/callback/{hash}", server.base), "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Malformed JSON is refused before anything changes.
    let (status, malformed) = call_back(&server, url, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}");
    let (_, shown) = token(&server, PROD_KEY, id).await;
    assert_eq!(shown["status"], "WAITING", "{shown}");

    let (status, done) = call_back(&server, url, r#"{"approved": true, "by": "ada"}"#).await;
    assert_eq!((status, done), (StatusCode::OK, json!({"success": true})));
    let (status, done) = call_back(&server, url, r#"{"approved": false}"#).await;
    assert_eq!((status, done), (StatusCode::OK, json!({"success": true})), "a second call changes nothing");
    let (_, shown) = token(&server, PROD_KEY, id).await;
    assert_eq!(shown["status"], "COMPLETED");
    let output: Value = serde_json::from_str(shown["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"approved": true, "by": "ada"}));

    // An empty body is null; the URL needs no credential, and a credential changes nothing.
    let url = other["url"].as_str().unwrap();
    let (status, _) = server.send(server.http.post(url).bearer_auth(DEV_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = token(&server, PROD_KEY, other["id"].as_str().unwrap()).await;
    assert_eq!(shown["status"], "COMPLETED", "{shown}");
    assert_eq!(shown["output"], "null", "{shown}");

    let (status, _) = call_back(&server, &format!("{}{TOKENS}/nope/callback/{hash}", server.base), "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_token_options_are_refused_naming_the_field_and_store_nothing() {
    let server = TestServer::start().await;
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    let cases = [
        (json!({"timeout": "soon"}), "timeout"),
        (json!({"timeout": "1h1h"}), "timeout"),
        (json!({"timeout": 60}), "timeout"),
        (json!({"timeout": "2026-13-01"}), "timeout"),
        (json!({"idempotencyKey": "k", "idempotencyKeyTTL": "forever"}), "idempotencyKeyTTL"),
        (json!({"idempotencyKey": "k", "idempotencyKeyTTL": -5}), "idempotencyKeyTTL"),
        (json!({"idempotencyKey": "k", "idempotencyKeyTTL": 1.5}), "idempotencyKeyTTL"),
        (json!({"idempotencyKey": ""}), "idempotencyKey"),
        (json!({"idempotencyKey": "k".repeat(2049)}), "idempotencyKey"),
        (json!({"tags": eleven}), "tags"),
        (json!({"tags": [1]}), "tags"),
        (json!({"tags": {"a": 1}}), "tags"),
        (json!({"tags": ["x".repeat(129)]}), "tags"),
        (json!({"expiresIn": "1h"}), "expiresIn"),
    ];
    for (body, field) in cases {
        let (status, refused) = server.post(PROD_KEY, TOKENS, body.clone()).await;
        assert!(status.is_client_error(), "{body}: {status} {refused}");
        assert!(error_of(&refused).contains(field), "{body}: the error names {field}: {refused}");
    }
    let (ids, _) = page(&server, "page[size]=100").await;
    assert!(ids.is_empty(), "nothing was made: {ids:?}");

    // Seconds, a Trigger.dev duration and a date are all accepted.
    for body in [
        json!({"idempotencyKey": "a", "idempotencyKeyTTL": 3600}),
        json!({"idempotencyKey": "b", "idempotencyKeyTTL": "1h30m", "timeout": "2099-01-01T00:00:00Z"}),
        json!({"tags": "one", "timeout": null}),
    ] {
        create(&server, body).await;
    }
    let (status, bad) = server.get(PROD_KEY, &format!("{TOKENS}?filter[status]=DONE")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(error_of(&bad).contains("filter[status]"), "{bad}");
    for query in ["page[size]=0", "page[after]=run_1", "filter[createdAt][from]=yesterday", "filter[tag]=a"] {
        let (status, bad) = server.get(PROD_KEY, &format!("{TOKENS}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {bad}");
    }
}

#[tokio::test]
async fn another_environments_token_is_not_found() {
    let server = TestServer::start().await;
    let made = create(&server, json!({"idempotencyKey": "shared-key", "tags": "mine"})).await;
    let id = made["id"].as_str().unwrap();
    for (status, answer) in [
        token(&server, DEV_KEY, id).await,
        server.post(DEV_KEY, &format!("{TOKENS}/{id}/complete"), json!({"data": 1})).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert!(error_of(&answer).contains(id) && error_of(&answer).contains("not found"), "{answer}");
    }
    // The other environment's key is its own: the same idempotency key makes its own token.
    let (_, theirs) = server.post(DEV_KEY, TOKENS, json!({"idempotencyKey": "shared-key"})).await;
    assert_ne!(theirs["id"], made["id"], "{theirs}");
    assert_eq!(theirs["isCached"], false);
    let (_, listed) = server.get(DEV_KEY, TOKENS).await;
    assert!(!listed.to_string().contains(id), "{listed}");
    let (_, shown) = token(&server, PROD_KEY, id).await;
    assert_eq!(shown["status"], "WAITING", "{shown}");
    let (status, _) = server.get(ADMIN_TOKEN, &format!("{TOKENS}/{id}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_times_out_and_lists_filter_and_page() {
    let server = TestServer::start().await;
    // Oldest first: a (times out), b (completed), c, d (keyed), e, all waiting otherwise.
    let a = create(&server, json!({"timeout": "1s", "tags": ["x"]})).await;
    let b = create(&server, json!({"tags": ["x", "y"]})).await;
    let c = create(&server, json!({"tags": "y"})).await;
    let d = create(&server, json!({"idempotencyKey": "order-7"})).await;
    let e = create(&server, json!({})).await;
    let id = |t: &Value| t["id"].as_str().unwrap().to_string();
    let (a, b, c, d, e) = (id(&a), id(&b), id(&c), id(&d), id(&e));
    let (status, _) = server.post(PROD_KEY, &format!("{TOKENS}/{b}/complete"), json!({"data": "done"})).await;
    assert_eq!(status, StatusCode::OK);

    let timed_out = eventually("the token's timeout", async || {
        let (_, shown) = token(&server, PROD_KEY, &a).await;
        (shown["status"] == "TIMED_OUT").then_some(shown)
    })
    .await;
    assert_eq!(timed_out["outputIsError"], true, "{timed_out}");
    let error: Value = serde_json::from_str(timed_out["output"].as_str().unwrap()).unwrap();
    assert_eq!(error["code"], "TRIGGER_WAITPOINT_TIMEOUT", "{timed_out}");
    // Completing it now changes nothing.
    let (status, done) = server.post(PROD_KEY, &format!("{TOKENS}/{a}/complete"), json!({"data": 1})).await;
    assert_eq!((status, done), (StatusCode::OK, json!({"success": true})));
    assert_eq!(token(&server, PROD_KEY, &a).await.1["status"], "TIMED_OUT");

    let all = vec![e.clone(), d.clone(), c.clone(), b.clone(), a.clone()];
    assert_eq!(page(&server, "").await.0, all, "newest first");
    let cases: [(&str, Vec<&String>); 10] = [
        ("filter[status]=WAITING", vec![&e, &d, &c]),
        ("filter[status]=COMPLETED", vec![&b]),
        ("filter[status]=TIMED_OUT", vec![&a]),
        ("filter[status]=COMPLETED,TIMED_OUT", vec![&b, &a]),
        ("filter[status]=WAITING,TIMED_OUT", vec![&e, &d, &c, &a]),
        ("filter[status]=WAITING,COMPLETED,TIMED_OUT", vec![&e, &d, &c, &b, &a]),
        ("filter[tags]=x", vec![&b, &a]),
        ("filter[tags]=y,x&filter[status]=WAITING", vec![&c]),
        ("filter[idempotencyKey]=order-7", vec![&d]),
        ("filter[createdAt][period]=1d", vec![&e, &d, &c, &b, &a]),
    ];
    for (query, expected) in cases {
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(page(&server, query).await.0, expected, "{query}");
    }
    assert!(page(&server, "filter[createdAt][from]=2099-01-01T00:00:00Z").await.0.is_empty());
    assert!(page(&server, "filter[createdAt][to]=2000-01-01T00:00:00Z").await.0.is_empty());
    let (_, listed) = server.get(PROD_KEY, &format!("{TOKENS}?filter[idempotencyKey]=order-7")).await;
    let item = &listed["data"][0];
    assert_eq!(item["idempotencyKey"], "order-7", "{listed}");
    assert!(item["url"].as_str().unwrap().contains("/callback/"), "{listed}");
    assert!(item.get("output").is_none(), "a listing shows no outputs: {listed}");

    // Pages forward and back, also over a status set read in two parts.
    for (filter, expected) in [("", all.clone()), ("&filter[status]=WAITING,TIMED_OUT", vec![e, d, c, a])] {
        let mut seen = Vec::new();
        let (mut ids, mut pagination) = page(&server, &format!("page[size]=2{filter}")).await;
        assert!(pagination.get("previous").is_none(), "{pagination}");
        let mut pages = vec![ids.clone()];
        seen.extend(ids.clone());
        while let Some(next) = pagination["next"].as_str().map(String::from) {
            (ids, pagination) = page(&server, &format!("page[size]=2&page[after]={next}{filter}")).await;
            seen.extend(ids.clone());
            pages.push(ids.clone());
        }
        assert_eq!(seen, expected, "{filter}");
        // Back from the last page to the first.
        let mut at = pages.len() - 1;
        let (_, mut pagination) =
            page(&server, &format!("page[size]=2&page[after]={}{filter}", pages[at - 1][1])).await;
        while let Some(previous) = pagination["previous"].as_str().map(String::from) {
            at -= 1;
            (ids, pagination) = page(&server, &format!("page[size]=2&page[before]={previous}{filter}")).await;
            assert_eq!(ids, pages[at], "{filter}: page {at} read backwards");
        }
        assert_eq!(at, 0, "{filter}: back to the first page");
    }
}

/// A worker registered for `tasks` in the production environment.
async fn register(server: &TestServer, tasks: &[&str]) -> String {
    let tasks: Vec<Value> = tasks.iter().map(|t| json!({"id": t})).collect();
    let (status, registered) =
        server.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": tasks})).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    registered["workerId"].as_str().unwrap().to_string()
}

/// The runs a dequeue of `worker` takes, waiting up to 5 s for one.
async fn dequeue(server: &TestServer, worker: &str) -> Vec<Value> {
    let path = format!("/api/v1/workers/{worker}/dequeue");
    let (status, taken) = server.post(PROD_KEY, &path, json!({"maxRuns": 10, "waitMs": 5000})).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    taken["runs"].as_array().unwrap().clone()
}

/// A worker's call about a run: `steps`, `waits` or `continue`.
async fn call(server: &TestServer, worker: &str, run: &str, what: &str, body: Value) -> (StatusCode, Value) {
    server.post(PROD_KEY, &format!("/api/v1/workers/{worker}/runs/{run}/{what}"), body).await
}

#[tokio::test]
async fn steps_and_a_token_wait_go_on_in_place() {
    let server = TestServer::start().await;
    let worker = register(&server, &["durable"]).await;
    let run = server.trigger(PROD_KEY, "durable", json!({"payload": {}})).await;
    let taken = dequeue(&server, &worker).await;
    assert_eq!(taken[0]["runId"], run.as_str());
    assert!(taken[0].get("journal").is_none(), "a first attempt has no journal: {}", taken[0]);
    let snapshot = taken[0]["snapshotId"].as_str().unwrap().to_string();

    let step = json!({"snapshotId": snapshot, "seq": 0, "name": "charge", "output": {"charged": 42}});
    let (status, recorded) = call(&server, &worker, &run, "steps", step.clone()).await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    assert_eq!(recorded["outcome"], "COMPLETED", "{recorded}");
    assert_eq!(recorded["entry"]["kind"], "STEP");
    assert_eq!(recorded["entry"]["name"], "charge");
    assert_eq!(recorded["entry"]["output"], json!({"charged": 42}));
    let snapshot = recorded["snapshotId"].as_str().unwrap_or(&snapshot).to_string();
    // Sent again, the step is answered from the journal; another call at its place is a mismatch.
    let again = json!({"snapshotId": snapshot, "seq": 0, "name": "charge", "output": {"charged": 43}});
    let (_, answered) = call(&server, &worker, &run, "steps", again).await;
    assert_eq!(answered["outcome"], "COMPLETED", "{answered}");
    assert_eq!(answered["entry"]["output"], json!({"charged": 42}), "{answered}");
    let other = json!({"snapshotId": snapshot, "seq": 0, "name": "refund", "output": null});
    let (_, mismatch) = call(&server, &worker, &run, "steps", other).await;
    assert_eq!(mismatch["outcome"], "MISMATCH", "{mismatch}");
    assert!(mismatch["error"].as_str().unwrap().contains("charge"), "{mismatch}");

    let made = create(&server, json!({})).await;
    let waitpoint = made["id"].as_str().unwrap();
    let wait = json!({"snapshotId": snapshot, "seq": 1, "wait": {"type": "token", "id": waitpoint}});
    let (status, waiting) = call(&server, &worker, &run, "waits", wait).await;
    assert_eq!(status, StatusCode::OK, "{waiting}");
    assert_eq!(waiting["outcome"], "WAITING", "{waiting}");
    assert_eq!(waiting["entry"]["waitpointId"], waitpoint, "{waiting}");
    assert_eq!(waiting["entry"]["completed"], false, "{waiting}");
    let blocked = waiting["snapshotId"].as_str().unwrap().to_string();

    let proceed = json!({"snapshotId": blocked, "seq": 1, "waitMs": 0});
    let (_, still) = call(&server, &worker, &run, "continue", proceed).await;
    assert_eq!(still["action"], "WAIT", "{still}");
    let (status, _) = server.post(PROD_KEY, &format!("{TOKENS}/{waitpoint}/complete"), json!({"data": "yes"})).await;
    assert_eq!(status, StatusCode::OK);
    let proceed = json!({"snapshotId": blocked, "seq": 1, "waitMs": 5000});
    let (_, going) = call(&server, &worker, &run, "continue", proceed).await;
    assert_eq!(going["action"], "CONTINUE", "{going}");
    assert_eq!(going["entry"]["output"], "yes", "{going}");
    assert_eq!(going["entry"]["completed"], true, "{going}");
    let snapshot = going["snapshotId"].as_str().unwrap().to_string();

    // The attempt finishes as any other.
    let completion = json!({"completions": [{"runId": run, "snapshotId": snapshot, "ok": true, "output": 1}]});
    let (_, completed) = server.post(PROD_KEY, &format!("/api/v1/workers/{worker}/complete"), completion).await;
    assert_eq!(completed["results"][0]["outcome"], "RUN_FINISHED", "{completed}");
    // The old snapshot is stale now.
    let late = json!({"snapshotId": blocked, "seq": 2, "name": "late", "output": 1});
    let (_, stale) = call(&server, &worker, &run, "steps", late).await;
    assert_eq!(stale["outcome"], "STALE", "{stale}");
}

#[tokio::test]
async fn a_suspended_run_is_replayed_with_its_journal() {
    let server = TestServer::start_with(|config| config.engine.suspend_after = Duration::from_millis(200)).await;
    let worker = register(&server, &["durable"]).await;
    let run = server.trigger(PROD_KEY, "durable", json!({"payload": {}})).await;
    let snapshot = dequeue(&server, &worker).await[0]["snapshotId"].as_str().unwrap().to_string();
    let step = json!({"snapshotId": snapshot, "seq": 0, "name": "first", "output": [1, 2]});
    let (_, recorded) = call(&server, &worker, &run, "steps", step).await;
    let snapshot = recorded["snapshotId"].as_str().unwrap_or(&snapshot).to_string();
    let made = create(&server, json!({})).await;
    let waitpoint = made["id"].as_str().unwrap();
    let wait = json!({"snapshotId": snapshot, "seq": 1, "wait": {"type": "token", "id": waitpoint}});
    let (_, waiting) = call(&server, &worker, &run, "waits", wait).await;
    let blocked = waiting["snapshotId"].as_str().unwrap().to_string();

    let suspended = eventually("the suspension", async || {
        let proceed = json!({"snapshotId": blocked, "seq": 1, "waitMs": 1000});
        let (_, next) = call(&server, &worker, &run, "continue", proceed).await;
        (next["action"] != "WAIT").then_some(next)
    })
    .await;
    assert_eq!(suspended["action"], "SUSPEND", "{suspended}");
    assert!(dequeue_now(&server, &worker).await.is_empty(), "a suspended run is not queued");

    let url = made["url"].as_str().unwrap();
    let (status, _) = call_back(&server, url, r#"{"approved": true}"#).await;
    assert_eq!(status, StatusCode::OK);
    let taken = dequeue(&server, &worker).await;
    assert_eq!(taken[0]["runId"], run.as_str(), "{taken:?}");
    let journal = taken[0]["journal"].as_array().unwrap_or_else(|| panic!("a journal: {}", taken[0]));
    assert_eq!(journal.len(), 2, "{journal:?}");
    assert_eq!(journal[0]["kind"], "STEP");
    assert_eq!(journal[0]["output"], json!([1, 2]));
    assert_eq!(journal[1]["kind"], "TOKEN");
    assert_eq!(journal[1]["completed"], true);
    assert_eq!(journal[1]["output"], json!({"approved": true}));
    assert_eq!(journal[1]["waitpointId"], waitpoint);
}

/// A dequeue that does not wait.
async fn dequeue_now(server: &TestServer, worker: &str) -> Vec<Value> {
    let path = format!("/api/v1/workers/{worker}/dequeue");
    let (_, taken) = server.post(PROD_KEY, &path, json!({"maxRuns": 10, "waitMs": 0})).await;
    taken["runs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_run_waits_for_a_child_it_triggers() {
    let server = TestServer::start().await;
    let worker = register(&server, &["parent", "child"]).await;
    let parent = server.trigger(PROD_KEY, "parent", json!({"payload": {}})).await;
    let snapshot = dequeue(&server, &worker).await[0]["snapshotId"].as_str().unwrap().to_string();
    let wait = json!({"snapshotId": snapshot, "seq": 0,
                      "wait": {"type": "run", "task": "child", "payload": {"n": 2}, "options": {"tags": ["kid"]}}});
    let (status, waiting) = call(&server, &worker, &parent, "waits", wait).await;
    assert_eq!(status, StatusCode::OK, "{waiting}");
    assert_eq!(waiting["outcome"], "WAITING", "{waiting}");
    let blocked = waiting["snapshotId"].as_str().unwrap().to_string();

    let child = dequeue(&server, &worker).await.remove(0);
    assert_eq!(child["taskIdentifier"], "child");
    assert_eq!(child["payload"], json!({"n": 2}));
    assert_eq!(child["tags"], json!(["kid"]));
    let child_id = child["runId"].as_str().unwrap();
    let (_, shown) = server.get(PROD_KEY, &format!("/api/v3/runs/{child_id}")).await;
    assert_eq!(shown["relatedRuns"]["parent"]["id"], parent.as_str(), "{shown}");
    let completion = json!({"completions": [{"runId": child_id, "snapshotId": child["snapshotId"], "ok": true,
                                             "output": {"sum": 3}}]});
    server.post(PROD_KEY, &format!("/api/v1/workers/{worker}/complete"), completion).await;

    let proceed = json!({"snapshotId": blocked, "seq": 0, "waitMs": 5000});
    let (_, going) = call(&server, &worker, &parent, "continue", proceed).await;
    assert_eq!(going["action"], "CONTINUE", "{going}");
    let result = &going["entry"]["output"];
    assert_eq!(result["id"], child_id, "{going}");
    assert_eq!(result["ok"], true, "{going}");
    assert_eq!(result["status"], "COMPLETED", "{going}");
    assert_eq!(result["output"], json!({"sum": 3}), "{going}");
}

#[tokio::test]
async fn bad_waits_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    let worker = register(&server, &["durable"]).await;
    let run = server.trigger(PROD_KEY, "durable", json!({"payload": {}})).await;
    let snapshot = dequeue(&server, &worker).await[0]["snapshotId"].as_str().unwrap().to_string();
    let many: Vec<Value> = (0..1001).map(|_| json!({"task": "child"})).collect();
    let cases = [
        (json!({"type": "until", "until": "tomorrow"}), "wait.until"),
        (json!({"type": "token", "id": "run_nope"}), "wait.id"),
        (json!({"type": "run", "task": "bad task"}), "wait"),
        (json!({"type": "run", "task": "child", "options": {"delay": "soon"}}), "delay"),
        (json!({"type": "batch", "items": []}), "wait.items"),
        (json!({"type": "batch", "items": many}), "wait.items"),
        (
            json!({"type": "batch", "items": [{"task": "child"}, {"task": "child", "options": {"maxAttempts": 0}}]}),
            "wait.items[1]",
        ),
        (json!({"type": "sleep", "ms": 5}), "sleep"),
    ];
    for (wait, field) in cases {
        let body = json!({"snapshotId": snapshot, "seq": 0, "wait": wait});
        let (status, refused) = call(&server, &worker, &run, "waits", body).await;
        assert!(status.is_client_error(), "{wait}: {status} {refused}");
        assert!(error_of(&refused).contains(field), "{wait}: the error names {field}: {refused}");
    }
    assert_eq!(server.run_count(PROD_KEY).await, 1, "no child run was made");
    let body = json!({"snapshotId": snapshot, "seq": 0, "waitMs": 30_001});
    let (status, refused) = call(&server, &worker, &run, "continue", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(error_of(&refused).contains("waitMs"), "{refused}");
    let big = json!({"snapshotId": snapshot, "seq": 0, "name": "big", "output": "x".repeat(10 * 1024 * 1024)});
    let (status, _) = call(&server, &worker, &run, "steps", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Ids that cannot be the worker's run are answered, not refused.
    let body = json!({"snapshotId": "nope", "seq": 0, "name": "s", "output": 1});
    let (_, stale) = call(&server, &worker, &run, "steps", body).await;
    assert_eq!(stale["outcome"], "STALE", "{stale}");
    let body = json!({"snapshotId": snapshot, "seq": 0, "waitMs": 0});
    let (_, stop) = call(&server, &worker, "run_nope", "continue", body).await;
    assert_eq!(stop["action"], "STOP", "{stop}");
}

#[tokio::test]
async fn run_internal_waits_block_the_executing_run() {
    let server = TestServer::start().await;
    let worker = register(&server, &["durable"]).await;
    let run = server.trigger(PROD_KEY, "durable", json!({"payload": {}})).await;
    dequeue(&server, &worker).await;

    let duration = format!("/engine/v1/runs/{run}/wait/duration");
    let body = json!({"date": "2099-01-01T00:00:00.000Z", "idempotencyKey": "nap", "idempotencyKeyTTL": "1h"});
    let (status, waited) = server.post(PROD_KEY, &duration, body).await;
    assert_eq!(status, StatusCode::OK, "{waited}");
    assert_eq!(waited["waitUntil"], "2099-01-01T00:00:00.000Z", "{waited}");
    let waitpoint = waited["waitpoint"]["id"].as_str().unwrap();
    assert!(waitpoint.starts_with("waitpoint_"), "{waited}");
    // The same key answers the same wait and its time.
    let body = json!({"date": "2098-01-01T00:00:00.000Z", "idempotencyKey": "nap"});
    let (_, again) = server.post(PROD_KEY, &duration, body).await;
    assert_eq!(again["waitpoint"]["id"], waitpoint, "{again}");
    assert_eq!(again["waitUntil"], "2099-01-01T00:00:00.000Z", "{again}");

    let made = create(&server, json!({})).await;
    let token_id = made["id"].as_str().unwrap();
    let path = format!("/engine/v1/runs/{run}/waitpoints/tokens/{token_id}/wait");
    let (status, blocked) = server.post(PROD_KEY, &path, json!({})).await;
    assert_eq!((status, blocked), (StatusCode::OK, json!({"success": true})));

    for (path, body, field) in [
        (duration.clone(), json!({"date": "soon"}), "date"),
        (
            duration.clone(),
            json!({"date": "2099-01-01T00:00:00Z", "idempotencyKey": "k", "idempotencyKeyTTL": "x"}),
            "idempotencyKeyTTL",
        ),
    ] {
        let (status, refused) = server.post(PROD_KEY, &path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(error_of(&refused).contains(field), "{refused}");
    }
    let (status, _) = server.post(DEV_KEY, &path, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another environment's run");
    let other = format!("/engine/v1/runs/{run}/waitpoints/tokens/waitpoint_01arz3ndektsv4rrffq69g5fav/wait");
    let (status, _) = server.post(PROD_KEY, &other, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a token that does not exist");
}

#[tokio::test]
async fn a_worker_pool_makes_durable_calls_in_its_environments() {
    let server = TestServer::start().await;
    let (status, project) = server.post(ADMIN_TOKEN, "/api/v1/admin/projects", json!({"name": "Pool"})).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let reference = project["ref"].as_str().unwrap();
    let prod = project["environments"].as_array().unwrap().iter().find(|e| e["slug"] == "prod").unwrap();
    let prod_key = prod["apiKey"].as_str().unwrap();
    let (_, token) = server.post(ADMIN_TOKEN, &format!("/api/v1/admin/projects/{reference}/tokens"), json!({})).await;
    let token = token["token"].as_str().unwrap();
    let registration = json!({"version": "1", "tasks": [{"id": "durable"}], "environments": ["prod"]});
    let (status, registered) = server.post(token, "/api/v1/workers/register", registration).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let worker = registered["workerId"].as_str().unwrap();
    let run = server.trigger(prod_key, "durable", json!({"payload": {}})).await;
    let path = format!("/api/v1/workers/{worker}/dequeue");
    let (_, taken) = server.post(token, &path, json!({"maxRuns": 1, "waitMs": 5000})).await;
    let snapshot = taken["runs"][0]["snapshotId"].as_str().unwrap();
    let step = json!({"snapshotId": snapshot, "seq": 0, "name": "s", "output": "o"});
    let (status, recorded) = server.post(token, &format!("/api/v1/workers/{worker}/runs/{run}/steps"), step).await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    assert_eq!(recorded["outcome"], "COMPLETED", "{recorded}");
    // The pool's worker is not reachable with another project's key.
    let step = json!({"snapshotId": snapshot, "seq": 1, "name": "s", "output": "o"});
    let (status, _) = server.post(PROD_KEY, &format!("/api/v1/workers/{worker}/runs/{run}/steps"), step).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
