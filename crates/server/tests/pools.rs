//! Worker pools over HTTP: a worker registered with a project's personal access token serves
//! several of its environments; secret keys and other projects' tokens do not reach it.

mod common;

use std::collections::HashMap;

use common::{ADMIN_TOKEN, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Project {
    keys: HashMap<String, String>,
    token: String,
}

async fn project(server: &TestServer, name: &str) -> Project {
    let (status, created) = server.post(ADMIN_TOKEN, "/api/v1/admin/projects", json!({"name": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let reference = created["ref"].as_str().unwrap().to_string();
    let keys = created["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["slug"].as_str().unwrap().to_string(), e["apiKey"].as_str().unwrap().to_string()))
        .collect();
    let path = format!("/api/v1/admin/projects/{reference}/tokens");
    let (status, token) = server.post(ADMIN_TOKEN, &path, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    Project { keys, token: token["token"].as_str().unwrap().to_string() }
}

fn registration(environments: Option<Value>) -> Value {
    let mut body = json!({"version": "1", "tasks": [{"id": "t"}]});
    if let Some(environments) = environments {
        body["environments"] = environments;
    }
    body
}

async fn register(server: &TestServer, credential: &str, environments: Option<Value>) -> (StatusCode, Value) {
    server.post(credential, "/api/v1/workers/register", registration(environments)).await
}

#[tokio::test]
async fn a_pool_takes_runs_of_its_environments_in_turn_and_completes_them() {
    let server = TestServer::start().await;
    let p = project(&server, "Pool").await;
    let (status, registered) = register(&server, &p.token, Some(json!(["staging", "prod"]))).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let worker = registered["workerId"].as_str().unwrap().to_string();
    for _ in 0..6 {
        server.trigger(&p.keys["staging"], "t", json!({"payload": {}})).await;
    }
    for _ in 0..2 {
        server.trigger(&p.keys["prod"], "t", json!({"payload": {}})).await;
    }
    server.trigger(&p.keys["dev"], "t", json!({"payload": {}})).await;
    let dequeue = format!("/api/v1/workers/{worker}/dequeue");
    let (status, taken) = server.post(&p.token, &dequeue, json!({"maxRuns": 4})).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    let runs = taken["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let (status, more) = server.post(&p.token, &dequeue, json!({"maxRuns": 10})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(more["runs"].as_array().unwrap().len(), 4, "dev is not in the pool: {more}");

    let (status, prod_runs) = server.get(&p.keys["prod"], "/api/v1/runs?filter[status]=EXECUTING").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(prod_runs["data"].as_array().unwrap().len(), 2, "both of prod's runs were taken: {prod_runs}");

    let all: Vec<&Value> = runs.iter().chain(more["runs"].as_array().unwrap()).collect();
    let completions: Vec<Value> = all
        .iter()
        .map(|r| json!({"runId": r["runId"], "snapshotId": r["snapshotId"], "ok": true, "output": 1}))
        .collect();
    let complete = format!("/api/v1/workers/{worker}/complete");
    let (status, done) = server.post(&p.token, &complete, json!({"completions": completions})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let outcomes: Vec<&Value> = done["results"].as_array().unwrap().iter().map(|r| &r["outcome"]).collect();
    assert!(outcomes.iter().all(|o| *o == "RUN_FINISHED"), "{done}");
}

#[tokio::test]
async fn pools_need_a_token_and_named_environments_of_its_project() {
    let server = TestServer::start().await;
    let p = project(&server, "Pool").await;
    let other = project(&server, "Other").await;

    let (status, body) = register(&server, &p.keys["prod"], Some(json!(["staging", "prod"]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error_of(&body).contains("environments"), "{body}");
    let (status, body) = register(&server, &p.token, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error_of(&body).contains("environments"), "{body}");
    for bad in [json!([]), json!(["qa"]), json!(["prod", "prod"])] {
        let (status, body) = register(&server, &p.token, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = register(&server, "tr_pat_notatokennotatokennotatokennotatoken", Some(json!(["prod"]))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, registered) = register(&server, &p.token, Some(json!(["dev", "prod"]))).await;
    let worker = registered["workerId"].as_str().unwrap().to_string();
    let dequeue = format!("/api/v1/workers/{worker}/dequeue");
    for credential in [other.token.as_str(), p.keys["prod"].as_str(), other.keys["prod"].as_str()] {
        let (status, body) = server.post(credential, &dequeue, json!({"maxRuns": 1})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{credential}: {body}");
    }
}

#[tokio::test]
async fn environment_limits_are_set_through_the_admin_api_and_hold() {
    let server = TestServer::start().await;
    let p = project(&server, "Limited").await;
    let (_, project_view) = server.get(ADMIN_TOKEN, "/api/v1/admin/projects").await;
    let reference = project_view["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pr| pr["name"] == "Limited")
        .map(|pr| pr["ref"].as_str().unwrap().to_string())
        .unwrap();
    let path = format!("/api/v1/admin/projects/{reference}/environments/prod");
    let (status, fresh) = server.get(ADMIN_TOKEN, &path).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!((fresh["concurrencyLimit"].clone(), fresh["burstFactor"].clone()), (Value::Null, json!(2.0)));

    let patch = |body: Value| {
        let request = server.http.patch(format!("{}{path}", server.base)).bearer_auth(ADMIN_TOKEN).json(&body);
        server.send(request)
    };
    let (status, set) = patch(json!({"concurrencyLimit": 2, "burstFactor": 1.5})).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!((set["concurrencyLimit"].clone(), set["burstLimit"].clone()), (json!(2), json!(3)));
    for bad in [
        json!({"burstFactor": 0.5}),
        json!({"concurrencyLimit": -1}),
        json!({"concurrencyLimit": "2"}),
        json!({"other": 1}),
    ] {
        let (status, body) = patch(bad.clone()).await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    let (_, unchanged) = server.get(ADMIN_TOKEN, &path).await;
    assert_eq!(unchanged["burstLimit"], json!(3), "nothing refused was stored");
    let (status, _) = server.get(&p.token, &path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "only the admin token sets limits");
    let (status, _) = server.get(ADMIN_TOKEN, &format!("/api/v1/admin/projects/{reference}/environments/qa")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let key = &p.keys["prod"];
    let (_, registered) = server.post(key, "/api/v1/workers/register", registration(None)).await;
    let worker = registered["workerId"].as_str().unwrap().to_string();
    for _ in 0..5 {
        server.trigger(key, "t", json!({"payload": {}})).await;
    }
    let dequeue = format!("/api/v1/workers/{worker}/dequeue");
    let (_, taken) = server.post(key, &dequeue, json!({"maxRuns": 10})).await;
    assert_eq!(taken["runs"].as_array().unwrap().len(), 2, "one queue runs at most the base limit");
    let (_, paused) = patch(json!({"paused": true, "concurrencyLimit": null})).await;
    assert_eq!((paused["paused"].clone(), paused["running"].clone()), (json!(true), json!(2)));
    let (_, none) = server.post(key, &dequeue, json!({"maxRuns": 10})).await;
    assert!(none["runs"].as_array().unwrap().is_empty(), "a paused environment starts nothing");
    let (_, resumed) = patch(json!({"paused": false})).await;
    assert_eq!(
        (resumed["paused"].clone(), resumed["concurrencyLimit"].clone()),
        (json!(false), Value::Null),
        "{resumed}"
    );
    let (_, rest) = server.post(key, &dequeue, json!({"maxRuns": 10})).await;
    assert_eq!(rest["runs"].as_array().unwrap().len(), 3, "resumed and unlimited");
}
