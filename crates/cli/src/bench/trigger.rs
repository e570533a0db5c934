//! W1: trigger throughput, from one client awaiting each call and from many at once.
//!
//! Each client is one HTTP/1.1 connection driven by hyper's connection API, the leanest client
//! at hand, so the figures measure the server rather than the client's own machinery.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::clock::monotonic_us;
use super::server::KEY;

/// Where triggers go, with idle connections to reuse.
#[derive(Clone)]
pub struct Trigger {
    address: String,
    key: &'static str,
    idle: Arc<parking_lot::Mutex<Vec<Connection>>>,
}

/// One connection to the server.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    key: &'static str,
}

impl Trigger {
    /// A client of the server at `url` (`http://host:port`), triggering in the production
    /// environment.
    pub fn new(url: &str) -> Trigger {
        Trigger::with_key(url, KEY)
    }

    /// A client triggering in the environment of the secret key `key`.
    pub fn with_key(url: &str, key: &'static str) -> Trigger {
        Trigger { address: url.trim_start_matches("http://").to_string(), key, idle: Arc::default() }
    }

    /// Triggers one run on an idle connection, or a new one when none is idle.
    pub async fn one(&self, i: usize, tenant: &str) -> anyhow::Result<()> {
        self.one_with_key(i, tenant, None).await
    }

    /// Triggers one run as [`Trigger::one`] does, with the concurrency key `key` when given.
    pub async fn one_with_key(&self, i: usize, tenant: &str, key: Option<&str>) -> anyhow::Result<()> {
        let idle = self.idle.lock().pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        connection.trigger(i, tenant, key).await?;
        self.idle.lock().push(connection);
        Ok(())
    }

    /// Opens `n` connections and keeps them idle, so that as many calls at once need not
    /// connect first.
    pub async fn open(&self, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let connection = self.connect().await?;
            self.idle.lock().push(connection);
        }
        Ok(())
    }

    /// Opens a connection.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(&self.address).await.context("connecting to the server")?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Connection { sender, host: self.address.clone(), key: self.key })
    }

    /// Triggers `n` runs from `clients` concurrent connections, each awaiting its calls in turn,
    /// and returns runs per second.
    pub async fn many(&self, n: usize, clients: usize) -> anyhow::Result<f64> {
        self.many_with_key(n, clients, "a", None).await
    }

    /// Triggers runs `0..n` as [`Trigger::many`] does, for `tenant` and with the concurrency key
    /// `key` when given.
    pub async fn many_with_key(
        &self,
        n: usize,
        clients: usize,
        tenant: &str,
        key: Option<&str>,
    ) -> anyhow::Result<f64> {
        let tenant: Arc<str> = tenant.into();
        let key: Option<Arc<str>> = key.map(Into::into);
        let mut connections = Vec::with_capacity(clients);
        for _ in 0..clients {
            connections.push(self.connect().await?);
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(clients);
        for mut connection in connections {
            let (next, tenant, key) = (next.clone(), tenant.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    connection.trigger(i, &tenant, key.as_deref()).await?;
                }
            }));
        }
        for task in tasks {
            task.await.context("a trigger client panicked")??;
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    }
}

impl Connection {
    /// Posts `body` of `content_type` to `path` and returns the answer's body; an answer other
    /// than a 2xx is an error.
    pub async fn post(&mut self, path: &str, content_type: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let request = hyper::Request::post(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", content_type)
            .body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("POST {path} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// Triggers one run of `noop` carrying `i`, the trigger time and a tenant, as the peers'
    /// payload `{i, t, tenant}`, with the concurrency key `key` when given.
    pub async fn trigger(&mut self, i: usize, tenant: &str, key: Option<&str>) -> anyhow::Result<()> {
        let mut body = json!({"payload": {"i": i, "t": monotonic_us(), "tenant": tenant}});
        if let Some(key) = key {
            body["options"] = json!({"concurrencyKey": key});
        }
        let body = body.to_string();
        let request = hyper::Request::post("/api/v1/tasks/noop/trigger")
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("trigger answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }
}
