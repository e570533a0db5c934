//! W1: trigger throughput, from one client awaiting each call and from many at once.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;

use super::clock::monotonic_us;
use super::server::KEY;

/// A client of one bench server.
#[derive(Clone)]
pub struct Trigger {
    http: reqwest::Client,
    url: String,
}

impl Trigger {
    /// A client of the server at `url`.
    pub fn new(url: &str) -> Trigger {
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("HTTP client");
        Trigger { http, url: format!("{url}/api/v1/tasks/noop/trigger") }
    }

    /// Triggers one run of `noop` carrying `i`, the trigger time and a tenant, as the peers'
    /// payload `{i, t, tenant}`.
    pub async fn one(&self, i: usize, tenant: &str) -> anyhow::Result<()> {
        let body = json!({"payload": {"i": i, "t": monotonic_us(), "tenant": tenant}});
        let response = self.http.post(&self.url).bearer_auth(KEY).json(&body).send().await?;
        if !response.status().is_success() {
            bail!("trigger answered {}: {}", response.status(), response.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// Triggers `n` runs from `clients` concurrent clients, each awaiting its calls in turn, and
    /// returns runs per second.
    pub async fn many(&self, n: usize, clients: usize) -> anyhow::Result<f64> {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(clients);
        for _ in 0..clients {
            let (client, next) = (self.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    client.one(i, "a").await?;
                }
            }));
        }
        for task in tasks {
            task.await.context("a trigger client panicked")??;
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    }
}
