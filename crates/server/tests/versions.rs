//! Worker versions over HTTP: a registration's answer carries the version the server gave it,
//! `lockToVersion` pins a run to one, and bad values are refused naming the option.

mod common;

use common::{ADMIN_TOKEN, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stint_types::Version;

async fn register(s: &TestServer, label: &str) -> Value {
    let body = json!({"version": label, "tasks": [{"id": "t"}]});
    let (status, registered) = s.post(PROD_KEY, "/api/v1/workers/register", body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    registered
}

fn version_of(registered: &Value) -> &str {
    registered["version"].as_str().unwrap_or_else(|| panic!("no version in {registered}"))
}

async fn dequeue(s: &TestServer, registered: &Value) -> Vec<Value> {
    let path = format!("/api/v1/workers/{}/dequeue", registered["workerId"].as_str().unwrap());
    let (status, taken) = s.post(PROD_KEY, &path, json!({"maxRuns": 10})).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    taken["runs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_registration_is_answered_with_its_version_and_a_run_shows_its_lock() {
    let s = TestServer::start().await;
    let first = register(&s, "1.0.0").await;
    let version = Version::parse(version_of(&first)).unwrap();
    assert!(version.to_string().ends_with(".1"), "{version}");
    assert_eq!(first.get("versions"), None, "a worker of one environment has one version");
    assert_eq!(version_of(&register(&s, "1.0.0").await), version.to_string(), "the same build, the same version");
    let second = register(&s, "1.0.1").await;
    assert_ne!(version_of(&second), version.to_string());

    let id = s.trigger(PROD_KEY, "t", json!({"payload": {}})).await;
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run.get("version"), None, "not locked before it starts");
    assert_eq!(dequeue(&s, &second).await.len(), 1);
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["version"], json!(version_of(&second)), "locked to the version that started it");
}

#[tokio::test]
async fn a_pool_is_answered_with_its_version_in_each_environment() {
    let s = TestServer::start().await;
    register(&s, "prod-only").await;
    let (_, created) = s.post(ADMIN_TOKEN, "/api/v1/admin/projects", json!({"name": "Pool"})).await;
    let (status, token) = s
        .post(ADMIN_TOKEN, &format!("/api/v1/admin/projects/{}/tokens", created["ref"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let body = json!({"version": "1", "tasks": [{"id": "t"}], "environments": ["staging", "prod"]});
    let (status, registered) = s.post(token["token"].as_str().unwrap(), "/api/v1/workers/register", body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered.get("version"), None);
    let versions = registered["versions"].as_array().unwrap();
    let slugs: Vec<&str> = versions.iter().map(|v| v["environment"].as_str().unwrap()).collect();
    assert_eq!(slugs, vec!["staging", "prod"]);
    for v in versions {
        let version = v["version"].as_str().unwrap();
        assert!(
            Version::parse(version).unwrap().to_string().ends_with(".1"),
            "each project's environments count on their own: {v}"
        );
    }
}

#[tokio::test]
async fn lock_to_version_pins_a_run_and_bad_values_are_refused_naming_it() {
    let s = TestServer::start().await;
    let old = register(&s, "1").await;
    let new = register(&s, "2").await;

    let cases = [
        (json!("20991231.1"), "lockToVersion: no version '20991231.1' in this environment"),
        (json!("1.0.0"), "lockToVersion: '1.0.0' is not a version like 20261130.1"),
        (json!("20261131.1"), "lockToVersion: '20261131.1' is not a version"),
        (json!(20261130.1), "lockToVersion must be a string"),
    ];
    for (value, expected) in cases {
        let body = json!({"payload": {}, "options": {"lockToVersion": value}});
        let (status, answer) = s.post(PROD_KEY, "/api/v1/tasks/t/trigger", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{value}: {answer}");
        assert!(error_of(&answer).starts_with(expected), "{value}: {answer}");
    }
    assert_eq!(s.run_count(PROD_KEY).await, 0, "nothing is stored by a refused trigger");

    let pinned = s.trigger(PROD_KEY, "t", json!({"payload": {}, "options": {"lockToVersion": version_of(&old)}})).await;
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{pinned}")).await;
    assert_eq!((run["status"].as_str(), run["version"].as_str()), (Some("QUEUED"), Some(version_of(&old))));
    assert!(dequeue(&s, &new).await.is_empty(), "the newer worker does not take it");
    let taken = dequeue(&s, &old).await;
    assert_eq!(taken.iter().map(|r| r["runId"].as_str().unwrap()).collect::<Vec<_>>(), vec![pinned.as_str()]);
}
