//! Tenancy administration over HTTP: the admin token, projects, secret keys, personal access
//! tokens, the project-level endpoints, and keys reaching every node sharing a database.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stint_server::{Config, Server};
use stint_types::EnvironmentType;

/// Creates a project through the admin API and returns it.
async fn create_project(server: &TestServer, name: &str, organization: Option<&str>) -> Value {
    let mut body = json!({ "name": name });
    if let Some(slug) = organization {
        body["organization"] = json!(slug);
    }
    let (status, project) = server.post(ADMIN_TOKEN, "/api/v1/admin/projects", body).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    project
}

/// The secret key of `project`'s environment `slug`, from the answer to its creation.
fn key_of(project: &Value, slug: &str) -> String {
    let env = project["environments"].as_array().unwrap().iter().find(|e| e["slug"] == slug).unwrap();
    env["apiKey"].as_str().unwrap().to_string()
}

fn reference(project: &Value) -> String {
    project["ref"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn projects_are_created_with_an_environment_and_a_key_each() {
    let server = TestServer::start().await;
    let project = create_project(&server, "Billing", Some("acme")).await;
    let reference = reference(&project);
    assert!(reference.starts_with("proj_"), "{project}");
    assert_eq!(project["externalRef"], project["ref"]);
    assert_eq!(project["name"], "Billing");
    assert_eq!(project["organization"]["slug"], "acme");
    let envs = project["environments"].as_array().unwrap();
    let shapes: Vec<(String, String)> =
        envs.iter().map(|e| (e["type"].as_str().unwrap().into(), e["slug"].as_str().unwrap().into())).collect();
    assert_eq!(
        shapes,
        [("DEVELOPMENT", "dev"), ("STAGING", "staging"), ("PRODUCTION", "prod"), ("PREVIEW", "preview")]
            .map(|(t, s)| (t.to_string(), s.to_string()))
    );
    for (slug, prefix) in [("dev", "tr_dev_"), ("staging", "tr_stg_"), ("prod", "tr_prod_"), ("preview", "tr_preview_")]
    {
        let key = key_of(&project, slug);
        assert!(key.starts_with(prefix) && key.len() == prefix.len() + 24, "{key}");
    }

    // Each key opens its own environment, and nothing of the default project's.
    let prod = key_of(&project, "prod");
    let run = server.trigger(&prod, "hello", json!({"payload": 1})).await;
    assert_eq!(server.run_count(&prod).await, 1);
    assert_eq!(server.run_count(&key_of(&project, "dev")).await, 0);
    assert_eq!(server.run_count(PROD_KEY).await, 0);
    let (status, _) = server.get(PROD_KEY, &format!("/api/v3/runs/{run}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Listings and retrieval show the projects without keys.
    let second = create_project(&server, "Search", Some("acme")).await;
    assert_eq!(second["organization"]["id"], project["organization"]["id"], "the organization is reused");
    let third = create_project(&server, "Mail", None).await;
    assert_eq!(third["organization"]["slug"], "default");
    let (status, list) = server.get(ADMIN_TOKEN, "/api/v1/admin/projects").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = list["data"].as_array().unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Default", "Billing", "Search", "Mail"]);
    assert_eq!(listed[0]["organization"]["id"], third["organization"]["id"], "the default organization is reused");
    assert!(!list.to_string().contains("apiKey"), "{list}");
    let (status, one) = server.get(ADMIN_TOKEN, &format!("/api/v1/admin/projects/{reference}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], project["id"]);
    assert!(one["environments"].as_array().unwrap().iter().all(|e| e.get("apiKey").is_none()), "{one}");
}

#[tokio::test]
async fn keys_are_created_listed_filtered_and_revoked() {
    let server = TestServer::start().await;
    let project = create_project(&server, "Billing", None).await;
    let path = format!("/api/v1/admin/projects/{}/keys", reference(&project));
    let (status, created) = server.post(ADMIN_TOKEN, &path, json!({"environment": "prod", "name": "ci"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("tr_prod_sk_") && key.len() == "tr_prod_sk_".len() + 24, "{key}");
    assert_eq!(created["prefix"], key[.."tr_prod_sk_".len() + 4]);
    assert_eq!((created["name"].as_str(), created["environment"].as_str()), (Some("ci"), Some("prod")));
    assert!(created["id"].as_str().unwrap().starts_with("key_"));
    assert!(created.get("revokedAt").is_none());

    // Both prod keys open the same environment.
    let first = key_of(&project, "prod");
    let run = server.trigger(&key, "hello", json!({})).await;
    let (status, _) = server.get(&first, &format!("/api/v3/runs/{run}")).await;
    assert_eq!(status, StatusCode::OK);

    let (_, more) = server.post(ADMIN_TOKEN, &path, json!({"environment": "staging"})).await;
    assert_eq!(more["name"], Value::Null);
    let (status, all) = server.get(ADMIN_TOKEN, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["data"].as_array().unwrap().len(), 6, "four from creation, two added: {all}");
    assert!(!all.to_string().contains(&key), "listings never show a key");
    let (_, prod) = server.get(ADMIN_TOKEN, &format!("{path}?environment=prod")).await;
    let ids: Vec<&str> = prod["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&created["id"].as_str().unwrap()));
    let prefix = created["prefix"].as_str().unwrap();
    let (_, by_prefix) = server.get(ADMIN_TOKEN, &format!("{path}?environment=prod&prefix={prefix}")).await;
    assert_eq!(by_prefix["data"].as_array().unwrap().len(), 1, "{by_prefix}");
    assert_eq!(by_prefix["data"][0]["id"], created["id"]);
    let (_, sk) = server.get(ADMIN_TOKEN, &format!("{path}?prefix=tr_prod_sk_")).await;
    assert_eq!(sk["data"].as_array().unwrap().len(), 1, "{sk}");

    // A revoked key opens nothing at once; the other key of the environment still works.
    let id = created["id"].as_str().unwrap();
    let (status, revoked) = server.delete(ADMIN_TOKEN, &format!("{path}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let revoked_at = revoked["revokedAt"].as_str().unwrap().to_string();
    let (status, body) = server.get(&key, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&body), "Invalid or Missing API key");
    let (status, _) = server.post(&key, "/api/v1/tasks/hello/trigger", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.run_count(&first).await, 1, "nothing was triggered with the revoked key");
    let (status, again) = server.delete(ADMIN_TOKEN, &format!("{path}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "revoking twice is fine");
    assert_eq!(again["revokedAt"], revoked_at.as_str(), "the first revocation stands");
    let (_, listed) = server.get(ADMIN_TOKEN, &format!("{path}?environment=prod")).await;
    let entry = listed["data"].as_array().unwrap().iter().find(|k| k["id"] == id).unwrap().clone();
    assert_eq!(entry["revokedAt"], revoked_at.as_str(), "a revoked key stays listed");
}

#[tokio::test]
async fn the_default_projects_keys_are_listed_and_can_be_revoked() {
    let server = TestServer::start().await;
    let (_, list) = server.get(ADMIN_TOKEN, "/api/v1/admin/projects").await;
    let default = list["data"][0].clone();
    assert_eq!(default["name"], "Default");
    let envs: Vec<&str> =
        default["environments"].as_array().unwrap().iter().map(|e| e["slug"].as_str().unwrap()).collect();
    assert_eq!(envs, ["dev", "staging", "prod"]);
    let path = format!("/api/v1/admin/projects/{}/keys", reference(&default));
    let (_, keys) = server.get(ADMIN_TOKEN, &format!("{path}?environment=prod")).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
    assert_eq!(keys["data"][0]["prefix"], &PROD_KEY[..12]);
    let id = keys["data"][0]["id"].as_str().unwrap();
    let (status, _) = server.delete(ADMIN_TOKEN, &format!("{path}/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.get(PROD_KEY, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.get(DEV_KEY, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::OK);
    // The default project has no preview environment to put a key in.
    let (status, body) = server.post(ADMIN_TOKEN, &path, json!({"environment": "preview"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&body).contains("environment"), "{body}");
}

#[tokio::test]
async fn access_tokens_open_their_projects_endpoints_only() {
    let server = TestServer::start().await;
    let project = create_project(&server, "Billing", None).await;
    let other = create_project(&server, "Search", None).await;
    let reference = reference(&project);
    let tokens = format!("/api/v1/admin/projects/{reference}/tokens");
    let (status, created) = server.post(ADMIN_TOKEN, &tokens, json!({"name": "laptop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("tr_pat_") && token.len() == "tr_pat_".len() + 40, "{token}");
    assert_eq!(created["prefix"], &token[.."tr_pat_".len() + 4]);
    assert!(created["id"].as_str().unwrap().starts_with("pat_"));
    assert_eq!(created["name"], "laptop");

    let (status, seen) = server.get(&token, &format!("/api/v1/projects/{reference}")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["id"], project["id"]);
    assert_eq!(seen["environments"].as_array().unwrap().len(), 4);
    assert!(!seen.to_string().contains("apiKey"), "{seen}");

    // Runs across the project's environments, each with its environment.
    let prod_run = server.trigger(&key_of(&project, "prod"), "hello", json!({})).await;
    let dev_run = server.trigger(&key_of(&project, "dev"), "hello", json!({})).await;
    server.trigger(&key_of(&other, "prod"), "hello", json!({})).await;
    server.trigger(PROD_KEY, "hello", json!({})).await;
    let (status, runs) = server.get(&token, &format!("/api/v1/projects/{reference}/runs")).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    let listed: Vec<(&str, &str)> = runs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["env"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(dev_run.as_str(), "dev"), (prod_run.as_str(), "prod")]);
    let (_, prod_only) = server.get(&token, &format!("/api/v1/projects/{reference}/runs?filter[env]=prod")).await;
    assert_eq!(prod_only["data"].as_array().unwrap().len(), 1);
    assert_eq!(prod_only["data"][0]["id"], prod_run.as_str());

    // A token opens no environment endpoint and no other project; a key opens no project endpoint.
    let (status, _) = server.get(&token, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.post(&token, "/api/v1/tasks/hello/trigger", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = server.get(&key_of(&project, "prod"), &format!("/api/v1/projects/{reference}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = server.get(&key_of(&project, "prod"), &format!("/api/v1/projects/{reference}/runs")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.get(&token, "/api/v1/admin/projects").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let other_ref = other["ref"].as_str().unwrap();
    let (status, elsewhere) = server.get(&token, &format!("/api/v1/projects/{other_ref}")).await;
    let (missing_status, missing) = server.get(&token, "/api/v1/projects/proj_doesnotexist").await;
    assert_eq!((status, missing_status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(
        error_of(&elsewhere).replace(other_ref, "REF"),
        error_of(&missing).replace("proj_doesnotexist", "REF"),
        "another project answers exactly as a missing one"
    );
    let (status, _) = server.get(&token, &format!("/api/v1/projects/{other_ref}/runs")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Listing and revoking.
    let (_, list) = server.get(ADMIN_TOKEN, &tokens).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&token));
    let id = created["id"].as_str().unwrap();
    let (status, revoked) = server.delete(ADMIN_TOKEN, &format!("{tokens}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revokedAt"].is_string());
    let (status, body) = server.get(&token, &format!("/api/v1/projects/{reference}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = server.delete(ADMIN_TOKEN, &format!("{tokens}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "revoking twice is fine");
    let (status, _) = server.delete(ADMIN_TOKEN, &format!("/api/v1/admin/projects/{other_ref}/tokens/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a token is revoked only through its project");
}

#[tokio::test]
async fn project_runs_page_across_environments() {
    let server = TestServer::start().await;
    let project = create_project(&server, "Billing", None).await;
    let token = {
        let path = format!("/api/v1/admin/projects/{}/tokens", reference(&project));
        let (_, created) = server.post(ADMIN_TOKEN, &path, json!({})).await;
        created["token"].as_str().unwrap().to_string()
    };
    let mut triggered = Vec::new();
    for n in 0..7 {
        let slug = ["dev", "staging", "prod", "preview"][n % 4];
        triggered.push(server.trigger(&key_of(&project, slug), "hello", json!({})).await);
    }
    triggered.reverse();
    let base = format!("/api/v1/projects/{}/runs?page[size]=3", reference(&project));
    let mut seen = Vec::new();
    let mut path = base.clone();
    let mut pages = Vec::new();
    loop {
        let (status, page) = server.get(&token, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()));
        pages.push(page.clone());
        match page["pagination"]["next"].as_str() {
            Some(next) => path = format!("{base}&page[after]={next}"),
            None => break,
        }
    }
    assert_eq!(seen, triggered, "every run once, newest first");
    assert_eq!(pages.len(), 3);
    // Back from the last page.
    let previous = pages[2]["pagination"]["previous"].as_str().unwrap();
    let (_, back) = server.get(&token, &format!("{base}&page[before]={previous}")).await;
    let ids: Vec<&str> = back["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, triggered[3..6].iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_stores_nothing() {
    let server = TestServer::start().await;
    let project = create_project(&server, "Billing", None).await;
    let other = create_project(&server, "Search", None).await;
    let reference = reference(&project);
    let other_key_id = {
        let (_, keys) =
            server.get(ADMIN_TOKEN, &format!("/api/v1/admin/projects/{}/keys", other["ref"].as_str().unwrap())).await;
        keys["data"][0]["id"].as_str().unwrap().to_string()
    };
    let keys = format!("/api/v1/admin/projects/{reference}/keys");
    let tokens = format!("/api/v1/admin/projects/{reference}/tokens");
    let cases: Vec<(&str, String, Option<Value>, StatusCode, &str)> = vec![
        ("POST", "/api/v1/admin/projects".into(), Some(json!({})), StatusCode::UNPROCESSABLE_ENTITY, "name"),
        (
            "POST",
            "/api/v1/admin/projects".into(),
            Some(json!({"name": " "})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name must be",
        ),
        (
            "POST",
            "/api/v1/admin/projects".into(),
            Some(json!({"name": "x".repeat(101)})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name must be",
        ),
        ("POST", "/api/v1/admin/projects".into(), Some(json!({"name": 5})), StatusCode::UNPROCESSABLE_ENTITY, "name"),
        (
            "POST",
            "/api/v1/admin/projects".into(),
            Some(json!({"name": "x", "organization": "Not A Slug"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "organization",
        ),
        (
            "POST",
            "/api/v1/admin/projects".into(),
            Some(json!({"name": "x", "team": "a"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "team",
        ),
        ("POST", keys.clone(), Some(json!({})), StatusCode::UNPROCESSABLE_ENTITY, "environment"),
        ("POST", keys.clone(), Some(json!({"environment": "qa"})), StatusCode::UNPROCESSABLE_ENTITY, "environment"),
        (
            "POST",
            keys.clone(),
            Some(json!({"environment": "prod", "name": ""})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        ("GET", format!("{keys}?environment=qa"), None, StatusCode::BAD_REQUEST, "environment"),
        ("GET", format!("{keys}?env=prod"), None, StatusCode::BAD_REQUEST, "env"),
        ("DELETE", format!("{keys}/not-a-key"), None, StatusCode::NOT_FOUND, "not-a-key"),
        ("DELETE", format!("{keys}/{other_key_id}"), None, StatusCode::NOT_FOUND, "not found"),
        ("POST", tokens.clone(), Some(json!({"name": ["a"]})), StatusCode::UNPROCESSABLE_ENTITY, "name"),
        ("POST", tokens.clone(), Some(json!({"name": "  "})), StatusCode::UNPROCESSABLE_ENTITY, "name"),
        ("DELETE", format!("{tokens}/pat_nope"), None, StatusCode::NOT_FOUND, "pat_nope"),
        ("GET", "/api/v1/admin/projects/proj_nope".into(), None, StatusCode::NOT_FOUND, "proj_nope"),
        (
            "POST",
            "/api/v1/admin/projects/proj_nope/keys".into(),
            Some(json!({"environment": "prod"})),
            StatusCode::NOT_FOUND,
            "proj_nope",
        ),
        ("GET", "/api/v1/admin/projects/proj_nope/keys".into(), None, StatusCode::NOT_FOUND, "proj_nope"),
        ("POST", "/api/v1/admin/projects/proj_nope/tokens".into(), Some(json!({})), StatusCode::NOT_FOUND, "proj_nope"),
        ("GET", "/api/v1/admin/projects/proj_nope/tokens".into(), None, StatusCode::NOT_FOUND, "proj_nope"),
    ];
    for (method, path, body, expected, named) in cases {
        let url = format!("{}{path}", server.base);
        let request = match method {
            "POST" => server.http.post(url).json(&body.unwrap()),
            "DELETE" => server.http.delete(url),
            _ => server.http.get(url),
        };
        let (status, answer) = server.send(request.bearer_auth(ADMIN_TOKEN)).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert!(error_of(&answer).contains(named), "{method} {path}: {answer} should name {named}");
    }
    let (_, token) = server.post(ADMIN_TOKEN, &tokens, json!({})).await;
    let token = token["token"].as_str().unwrap();
    let (status, body) = server.get(token, &format!("/api/v1/projects/{reference}/runs?filter[env]=qa")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("filter[env]"), "{body}");

    // Nothing was stored by the refused requests.
    let (_, projects) = server.get(ADMIN_TOKEN, "/api/v1/admin/projects").await;
    assert_eq!(projects["data"].as_array().unwrap().len(), 3);
    let (_, listed) = server.get(ADMIN_TOKEN, &keys).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 4);
    let (_, listed) = server.get(ADMIN_TOKEN, &tokens).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_token() {
    let server = TestServer::start().await;
    let project = create_project(&server, "Billing", None).await;
    let reference = reference(&project);
    let token = {
        let (_, created) =
            server.post(ADMIN_TOKEN, &format!("/api/v1/admin/projects/{reference}/tokens"), json!({})).await;
        created["token"].as_str().unwrap().to_string()
    };
    let another_admin = "stint_admin_0123456789abcdefghijABCDEFGHIJ01";
    let credentials =
        [None, Some(another_admin), Some(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]), Some(PROD_KEY), Some(token.as_str())];
    for credential in credentials {
        let mut request =
            server.http.post(format!("{}/api/v1/admin/projects", server.base)).json(&json!({"name": "x"}));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let (status, body) = server.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{credential:?}: {body}");
        assert!(error_of(&body).contains("Invalid or Missing"), "{body}");
        let mut request = server.http.get(format!("{}/api/v1/admin/projects/{reference}/keys", server.base));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let (status, _) = server.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{credential:?}");
    }
    // The admin token opens only the admin API.
    let (status, _) = server.get(ADMIN_TOKEN, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.get(ADMIN_TOKEN, &format!("/api/v1/projects/{reference}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, projects) = server.get(ADMIN_TOKEN, "/api/v1/admin/projects").await;
    assert_eq!(projects["data"].as_array().unwrap().len(), 2, "the refused requests created nothing");
}

/// A node of its own on a data directory that another node may share.
struct Node {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn node_config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin_token = Some(ADMIN_TOKEN.into());
    config
}

async fn start_node(config: Config) -> Node {
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Node { base, _stop: stop }
}

async fn call(method: reqwest::Method, url: String, credential: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, url).bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `url` with `credential` until it answers `expected`, failing after ten seconds.
async fn until_status(url: &str, credential: &str, expected: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = call(reqwest::Method::GET, url.to_string(), credential, None).await;
        if status == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{url} still answers {status}, not {expected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two servers on one SQLite file stand for nodes sharing a database: what is tested is each
/// node's credential cache, which works the same over either store.
#[tokio::test]
async fn keys_created_or_revoked_on_one_node_reach_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = |mut config: Config| {
        config.key_cache_ttl = Duration::from_millis(300);
        config
    };
    let a = start_node(ttl(node_config(dir.path()))).await;
    let b = start_node(ttl(node_config(dir.path()))).await;
    let (status, project) = call(
        reqwest::Method::POST,
        format!("{}/api/v1/admin/projects", a.base),
        ADMIN_TOKEN,
        Some(json!({"name": "P"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let reference = reference(&project);

    // A key made on A works on B at once.
    let prod = key_of(&project, "prod");
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/runs", b.base), &prod, None).await;
    assert_eq!(status, StatusCode::OK);
    let keys = format!("/api/v1/admin/projects/{reference}/keys");
    let (_, created) =
        call(reqwest::Method::POST, format!("{}{keys}", a.base), ADMIN_TOKEN, Some(json!({"environment": "prod"})))
            .await;
    let extra = created["key"].as_str().unwrap().to_string();
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/runs", b.base), &extra, None).await;
    assert_eq!(status, StatusCode::OK);

    // Revoked on A: refused on A at once, and on B once its cached answer expires.
    let id = created["id"].as_str().unwrap();
    let (status, _) = call(reqwest::Method::DELETE, format!("{}{keys}/{id}", a.base), ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/runs", a.base), &extra, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    until_status(&format!("{}/api/v1/runs", b.base), &extra, StatusCode::UNAUTHORIZED).await;
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/runs", b.base), &prod, None).await;
    assert_eq!(status, StatusCode::OK, "the other key still works");

    // The same for a personal access token, made on B and revoked on B.
    let tokens = format!("/api/v1/admin/projects/{reference}/tokens");
    let (_, created) = call(reqwest::Method::POST, format!("{}{tokens}", b.base), ADMIN_TOKEN, Some(json!({}))).await;
    let token = created["token"].as_str().unwrap().to_string();
    let project_url = format!("{}/api/v1/projects/{reference}", a.base);
    let (status, _) = call(reqwest::Method::GET, project_url.clone(), &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let id = created["id"].as_str().unwrap();
    let (status, _) = call(reqwest::Method::DELETE, format!("{}{tokens}/{id}", b.base), ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/projects/{reference}", b.base), &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    until_status(&project_url, &token, StatusCode::UNAUTHORIZED).await;
}

fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn keys_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(stint_server::bootstrap::KEYS_FILE)).unwrap()
}

#[cfg(unix)]
fn mode(dir: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir.join(stint_server::bootstrap::KEYS_FILE)).unwrap().permissions().mode() & 0o777
}

fn admin_token_in(file: &str) -> String {
    let line = file
        .lines()
        .find(|l| l.starts_with("STINT_ADMIN_TOKEN="))
        .unwrap_or_else(|| panic!("no admin token in {file}"));
    line["STINT_ADMIN_TOKEN=".len()..].to_string()
}

#[tokio::test]
async fn the_first_start_writes_a_generated_admin_token_with_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(dir.path());
    config.admin_token = None;
    let node = start_node(config).await;
    let file = keys_file(dir.path());
    assert_eq!(file.lines().count(), 4, "three keys and the admin token: {file}");
    #[cfg(unix)]
    assert_eq!(mode(dir.path()), 0o600);
    let token = admin_token_in(&file);
    assert!(token.starts_with("stint_admin_") && token.len() == "stint_admin_".len() + 32, "{token}");
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/admin/projects", node.base), &token, None).await;
    assert_eq!(status, StatusCode::OK);
    drop(node);

    // A later start changes nothing, whatever token it is given.
    let mut config = node_config(dir.path());
    config.admin_token = Some("stint_admin_ABCDEFGHIJABCDEFGHIJABCDEFGHIJ12".into());
    let node = start_node(config).await;
    assert_eq!(keys_file(dir.path()), file);
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/admin/projects", node.base), &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let other = "stint_admin_ABCDEFGHIJABCDEFGHIJABCDEFGHIJ12";
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/admin/projects", node.base), other, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_database_without_an_admin_token_gets_one_and_keeps_its_keys_file() {
    let dir = tempfile::tempdir().unwrap();
    let prod = "tr_prod_olderversionolderversi";
    {
        // What an earlier version made: the default project, no admin token.
        let options = stint_store_sqlite::Options::new(dir.path().join("stint.db"));
        let store = Arc::new(stint_store_sqlite::SqliteStore::open(&options).unwrap());
        let engine = stint_engine::Engine::new(
            store,
            Arc::new(stint_engine::SystemClock),
            stint_engine::Ids::from_entropy(),
            stint_engine::Config::default(),
        );
        let key =
            stint_engine::NewKey { kind: EnvironmentType::Production, hash: hash(prod), prefix: prod[..12].into() };
        assert!(engine.bootstrap(vec![key]).await.unwrap());
    }
    let earlier =
        format!("STINT_PROD_SECRET_KEY={prod}\nSTINT_ADMIN_TOKEN=stint_admin_stalestalestalestalestalestalestal\n");
    std::fs::write(dir.path().join(stint_server::bootstrap::KEYS_FILE), &earlier).unwrap();

    let mut config = node_config(dir.path());
    config.admin_token = None;
    let node = start_node(config).await;
    let file = keys_file(dir.path());
    assert!(file.starts_with(&format!("STINT_PROD_SECRET_KEY={prod}\n")), "the keys are kept: {file}");
    assert_eq!(file.lines().count(), 2, "one admin token line, replacing the stale one: {file}");
    #[cfg(unix)]
    assert_eq!(mode(dir.path()), 0o600);
    let token = admin_token_in(&file);
    assert_ne!(token, "stint_admin_stalestalestalestalestalestalestal");
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/admin/projects", node.base), &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(reqwest::Method::GET, format!("{}/api/v1/runs", node.base), prod, None).await;
    assert_eq!(status, StatusCode::OK, "the earlier key still works");
    drop(node);

    // The next start finds the token and leaves the file alone.
    let mut config = node_config(dir.path());
    config.admin_token = None;
    let _node = start_node(config).await;
    assert_eq!(keys_file(dir.path()), file);
}

#[tokio::test]
async fn an_admin_token_given_at_first_start_is_checked_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(dir.path());
    config.admin_token = Some("stint_admin_tooshort".into());
    let error = Server::start(config).await.err().expect("a malformed admin token is refused");
    assert!(error.to_string().contains("STINT_ADMIN_TOKEN"), "{error}");
    assert!(error.to_string().contains("32"), "{error}");

    let node = start_node(node_config(dir.path())).await;
    let file = keys_file(dir.path());
    assert!(!file.contains("STINT_ADMIN_TOKEN"), "a given token is not written: {file}");
    let (status, _) =
        call(reqwest::Method::GET, format!("{}/api/v1/admin/projects", node.base), ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
}
