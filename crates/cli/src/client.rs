//! A small client of the public API for the CLI commands.

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stint_protocol::ErrorBody;

/// Where the server is and the key to use.
#[derive(Args, Clone)]
pub struct Connection {
    /// The server's URL.
    #[arg(long, env = "STINT_API_URL", default_value = "http://127.0.0.1:3030", global = true)]
    pub api_url: String,
    /// A secret key of the environment to act in.
    #[arg(long, env = "STINT_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<String>,
}

/// An authenticated client.
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    /// A client for `connection`; fails when no key is given.
    pub fn new(connection: &Connection) -> anyhow::Result<Client> {
        let key = connection.secret_key.clone().context("no secret key: set STINT_SECRET_KEY or pass --secret-key")?;
        Ok(Client::with_credential(&connection.api_url, key))
    }

    /// A client of the server at `api_url` that sends `credential` as its bearer token.
    pub fn with_credential(api_url: &str, credential: String) -> Client {
        Client { http: reqwest::Client::new(), base: api_url.trim_end_matches('/').to_string(), key: credential }
    }

    /// GET a path, with query parameters.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(String, String)]) -> anyhow::Result<T> {
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(request).await
    }

    /// POST a JSON body to a path.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    /// POST an NDJSON body (one JSON value per line) to a path.
    pub async fn post_ndjson<T: DeserializeOwned>(&self, path: &str, body: String) -> anyhow::Result<T> {
        let request =
            self.http.post(format!("{}{path}", self.base)).header("content-type", "application/x-ndjson").body(body);
        self.send(request).await
    }

    /// PATCH a path with a JSON body.
    pub async fn patch<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let request = self.http.patch(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    /// DELETE a path.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let request = self.http.delete(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach the Stint server at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.context("reading the server's answer")?;
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
            bail!("{status}: {message}");
        }
        serde_json::from_str(&text).with_context(|| format!("unexpected answer from the server: {text}"))
    }
}
