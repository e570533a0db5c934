//! A client of the public API for tests.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A client with one environment's key.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// A client of the server at `url` with `key`.
    pub fn new(url: &str, key: &str) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client");
        Api { http, base: url.to_string(), key: key.to_string() }
    }

    /// Triggers `task` with `payload` and returns the run id, or what went wrong.
    pub async fn trigger(&self, task: &str, payload: Value) -> Result<String, String> {
        self.trigger_with(task, json!({ "payload": payload })).await
    }

    /// Triggers `task` with a whole request body.
    pub async fn trigger_with(&self, task: &str, body: Value) -> Result<String, String> {
        let url = format!("{}/api/v1/tasks/{task}/trigger", self.base);
        let response =
            self.http.post(url).bearer_auth(&self.key).json(&body).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {body}"));
        }
        Ok(body["id"].as_str().ok_or("no id in the answer")?.to_string())
    }

    /// A run, as `GET /api/v3/runs/{id}` returns it.
    pub async fn run(&self, id: &str) -> Result<Value, String> {
        let url = format!("{}/api/v3/runs/{id}", self.base);
        let response = self.http.get(url).bearer_auth(&self.key).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {body}"));
        }
        Ok(body)
    }

    /// Cancels a run.
    pub async fn cancel(&self, id: &str) -> Result<(), String> {
        self.post(&format!("/api/v2/runs/{id}/cancel"), json!({})).await.map(drop)
    }

    /// Gets `path` and returns the answer, or what went wrong.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let response = self.http.get(url).bearer_auth(&self.key).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    /// Posts `body` to `path` and returns the answer, or what went wrong.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let response =
            self.http.post(url).bearer_auth(&self.key).json(&body).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    /// Posts an NDJSON `body` (a batch's items) to `path` and returns the answer, or what went
    /// wrong.
    pub async fn post_ndjson(&self, path: &str, body: String) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = self.http.post(url).bearer_auth(&self.key).header("content-type", "application/x-ndjson");
        let response = request.body(body).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    /// Polls a run until `done` holds for it, or panics after `limit` with the run's last state.
    pub async fn wait_until(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(run) = self.run(id).await {
                if done(&run) {
                    return run;
                }
                last = run;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("run {id} did not reach the expected state within {limit:?}; last seen: {last}");
    }

    /// Waits until a run has ended, and returns it.
    pub async fn wait_finished(&self, id: &str, limit: Duration) -> Value {
        const FINAL: [&str; 7] =
            ["COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"];
        self.wait_until(id, limit, |run| run["status"].as_str().is_some_and(|s| FINAL.contains(&s))).await
    }
}
