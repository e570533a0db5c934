//! A real server on a SQLite file, with a production and a development key, and helpers to
//! call it.

#![allow(dead_code)]

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::Value;
use stint_server::{Config, Server};
use stint_types::EnvironmentType;

pub const PROD_KEY: &str = "tr_prod_testkeytestkeytestkey1";
pub const DEV_KEY: &str = "tr_dev_testkeytestkeytestkey12";
/// The instance's admin token on test servers.
pub const ADMIN_TOKEN: &str = "stint_admin_testtokentesttokentesttoken01234";

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose configuration `change` adjusts first.
    pub async fn start_with(change: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.initial_keys =
            vec![(EnvironmentType::Production, PROD_KEY.into()), (EnvironmentType::Development, DEV_KEY.into())];
        config.admin_token = Some(ADMIN_TOKEN.into());
        change(&mut config);
        let server = Server::start(config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer { base, http: reqwest::Client::new(), _stop: stop, _dir: dir }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, body)
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).bearer_auth(key).json(&body)).await
    }

    pub async fn post_raw(
        &self,
        key: &str,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        self.send(request).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)).bearer_auth(key)).await
    }

    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(key)).await
    }

    pub async fn trigger(&self, key: &str, task: &str, body: Value) -> String {
        let (status, response) = self.post(key, &format!("/api/v1/tasks/{task}/trigger"), body).await;
        assert_eq!(status, StatusCode::OK, "{response}");
        response["id"].as_str().unwrap().to_string()
    }

    pub async fn run_count(&self, key: &str) -> usize {
        let (_, page) = self.get(key, "/api/v1/runs?page[size]=100").await;
        page["data"].as_array().unwrap().len()
    }
}

pub fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("no error message in {body}"))
}
