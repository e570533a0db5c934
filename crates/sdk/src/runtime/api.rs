//! The HTTP client: one keep-alive connection pool, the bearer key on every call, and server
//! answers sorted into what the caller should do next.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stint_protocol::ErrorBody;
use tokio_util::bytes::Bytes;

/// Why a call got no usable answer, sorted by what to do about it.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No answer: the connection failed, timed out, or the body could not be read. Retry.
    Unreachable(String),
    /// No connection could be made, so the server never saw the request. Retry, even a call
    /// that is not safe to repeat.
    Unsent(String),
    /// The server cannot serve now (5xx, 429, 408). Retry, after `retry_after` if given.
    Unavailable {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
        /// The server's explanation.
        message: String,
    },
    /// 404: the server does not know this worker. Register again.
    UnknownWorker(String),
    /// Any other 4xx: retrying the same call cannot help.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(reason) => write!(f, "no answer: {reason}"),
            CallError::Unsent(reason) => write!(f, "not sent: {reason}"),
            CallError::Unavailable { status, message, .. } => write!(f, "status {status}: {message}"),
            CallError::UnknownWorker(message) => write!(f, "status 404: {message}"),
            CallError::Rejected { status, message } => write!(f, "status {status}: {message}"),
        }
    }
}

/// A request body, as JSON.
pub(crate) trait Body {
    /// The body's JSON text, or why it has none.
    fn json(&self) -> Result<Bytes, String>;
}

/// A value is encoded each time a call sends it, on the calling thread; fine for small bodies.
impl<T: Serialize + ?Sized> Body for T {
    fn json(&self) -> Result<Bytes, String> {
        serde_json::to_vec(self).map(Bytes::from).map_err(|error| error.to_string())
    }
}

/// JSON encoded once, ahead of a call, on the blocking pool. A large body (completions with big
/// outputs) then holds up none of the runtime's threads, which drive the heartbeats and the timers
/// they wait on, and a call retried does not encode it again.
#[derive(Debug, Clone)]
pub(crate) struct Encoded(Result<Bytes, String>);

impl Encoded {
    /// Encodes `value` on the blocking pool; returns the value with its encoding.
    pub(crate) async fn aside<T: Serialize + Send + 'static>(value: T) -> (T, Encoded) {
        let encoding = tokio::task::spawn_blocking(move || {
            let encoded = Encoded(value.json());
            (value, encoded)
        });
        encoding.await.expect("encoding JSON does not panic, and the runtime runs while the worker does")
    }
}

impl Body for Encoded {
    fn json(&self) -> Result<Bytes, String> {
        self.0.clone()
    }
}

/// The header carrying a request idempotency key, as Trigger.dev's SDK sends it.
pub(crate) const REQUEST_KEY_HEADER: &str = "x-trigger-request-idempotency-key";
/// The header carrying a batch's idempotency key.
pub(crate) const BATCH_KEY_HEADER: &str = "idempotency-key";

/// A client of one server with one secret key.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    authorization: HeaderValue,
}

impl Api {
    /// A client of the server at `base` (`http://host:port`) using `secret_key`.
    pub(crate) fn new(base: &str, secret_key: &str) -> Result<Api, crate::Error> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {secret_key}"))
            .map_err(|_| crate::Error::Config("the secret key contains characters not allowed in a header".into()))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(crate::Error::Client)?;
        Ok(Api { http, base: base.trim_end_matches('/').to_string(), authorization })
    }

    /// POSTs `body` as JSON to `path` and decodes a successful answer as `R`.
    pub(crate) async fn post<B, R>(&self, path: &str, body: &B, timeout: Duration) -> Result<R, CallError>
    where
        B: Body + ?Sized,
        R: DeserializeOwned,
    {
        // As with reqwest's own encoding, a body that cannot be encoded fails like a lost call.
        let body = body.json().map_err(|error| CallError::Unreachable(format!("encoding the request: {error}")))?;
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        self.call(request, timeout).await
    }

    /// POSTs `body` like [`Api::post`], with a key in `header` under which the server answers the
    /// same request sent again (a retry after a lost answer) as it answered the first.
    pub(crate) async fn post_once<B, R>(
        &self,
        path: &str,
        body: &B,
        (header, request_key): (&str, &str),
        timeout: Duration,
    ) -> Result<R, CallError>
    where
        B: Body + ?Sized,
        R: DeserializeOwned,
    {
        let body = body.json().map_err(|error| CallError::Unreachable(format!("encoding the request: {error}")))?;
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(header, request_key)
            .body(body);
        self.call(request, timeout).await
    }

    /// GETs `path` and decodes a successful answer as `R`.
    pub(crate) async fn get<R: DeserializeOwned>(&self, path: &str, timeout: Duration) -> Result<R, CallError> {
        self.call(self.http.get(format!("{}{path}", self.base)), timeout).await
    }

    /// Sends `request` with the key and sorts the answer.
    async fn call<R: DeserializeOwned>(&self, request: RequestBuilder, timeout: Duration) -> Result<R, CallError> {
        let response =
            request.header(AUTHORIZATION, self.authorization.clone()).timeout(timeout).send().await.map_err(
                |error| {
                    // A connection that was never made carried nothing: the server saw no request.
                    if error.is_connect() {
                        CallError::Unsent(error_chain(&error))
                    } else {
                        CallError::Unreachable(error_chain(&error))
                    }
                },
            )?;
        let status = response.status();
        if status.is_success() {
            return response.json::<R>().await.map_err(|error| CallError::Unreachable(error_chain(&error)));
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = error_message(&response.text().await.unwrap_or_default());
        Err(classify(status, retry_after, message))
    }
}

/// Sorts a failed status into what the caller should do.
fn classify(status: StatusCode, retry_after: Option<Duration>, message: String) -> CallError {
    let code = status.as_u16();
    if status == StatusCode::NOT_FOUND {
        CallError::UnknownWorker(message)
    } else if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        CallError::Unavailable { status: code, retry_after, message }
    } else {
        CallError::Rejected { status: code, message }
    }
}

/// The `error` field of an error body, or the body itself, shortened.
fn error_message(body: &str) -> String {
    if let Ok(parsed) = serde_json::from_str::<ErrorBody>(body) {
        return parsed.error;
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "no explanation given".into();
    }
    trimmed.chars().take(500).collect()
}

/// A reqwest error with its sources, which name the actual cause (connection refused, …).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_by_what_to_do() {
        assert!(matches!(classify(StatusCode::NOT_FOUND, None, String::new()), CallError::UnknownWorker(_)));
        let unavailable = classify(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(1)), String::new());
        assert!(matches!(unavailable, CallError::Unavailable { status: 503, retry_after: Some(_), .. }));
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, None, String::new()), CallError::Rejected { .. }));
        assert!(matches!(classify(StatusCode::TOO_MANY_REQUESTS, None, String::new()), CallError::Unavailable { .. }));
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(error_message(r#"{"error": "bad key"}"#), "bad key");
        assert_eq!(error_message("plain text"), "plain text");
        assert_eq!(error_message(""), "no explanation given");
    }
}
