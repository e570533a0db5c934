//! [`Client`]: the public API of a Stint server, for code outside tasks and for tasks triggering
//! other runs.

use std::time::Duration;

use serde::Serialize;
use stint_protocol::api::{RunObject, TriggerRequest, TriggerResponse};
use stint_protocol::batches::{BatchTriggerItem, BatchTriggerRequest, BatchTriggerResponse};

use crate::runtime::api::{Api, BATCH_KEY_HEADER, CallError, REQUEST_KEY_HEADER};
use crate::runtime::backoff::Backoff;
use crate::{DEFAULT_API_URL, Error, TriggerOptions};

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls made for one request, retries included.
const ATTEMPTS: u32 = 4;

/// A client of a Stint server's public API with an environment's secret key: triggers runs and
/// reads them.
///
/// ```no_run
/// # async fn example() -> Result<(), stint_sdk::Error> {
/// use stint_sdk::{Client, TriggerOptions};
///
/// let client = Client::from_env()?;
/// let run = client.trigger("hello-world", serde_json::json!({"name": "Ada"}), TriggerOptions::new().tag("docs")).await?;
/// println!("{} is {:?}", run.id, client.retrieve(&run.id).await?.common.status);
/// # Ok(())
/// # }
/// ```
///
/// Calls the server did not receive (no connection) or could not serve now (429, 5xx) are retried
/// a few times. A trigger whose answer was lost is retried too: each trigger carries a request
/// idempotency key (`x-trigger-request-idempotency-key`), so the server answers a retry with the
/// run the first try made.
#[derive(Debug, Clone)]
pub struct Client {
    api: Api,
}

/// A run a trigger made, or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerHandle {
    /// The run's id (`run_…`).
    pub id: String,
    /// True when the idempotency key named a run that existed, and no run was made.
    pub is_cached: bool,
}

impl Client {
    /// A client of the server at `api_url` (`http://host:port`) with an environment's
    /// `secret_key` (`tr_dev_…`).
    pub fn new(api_url: &str, secret_key: &str) -> Result<Client, Error> {
        Ok(Client { api: Api::new(api_url, secret_key)? })
    }

    /// A client configured as a worker is: `STINT_SECRET_KEY` (required) and `STINT_API_URL`
    /// (default [`DEFAULT_API_URL`]).
    pub fn from_env() -> Result<Client, Error> {
        let present = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let key = present("STINT_SECRET_KEY").ok_or(Error::MissingEnv {
            name: "STINT_SECRET_KEY",
            hint: "set it to the secret key (tr_dev_…) of the environment to trigger runs in",
        })?;
        let url = present("STINT_API_URL").unwrap_or_else(|| DEFAULT_API_URL.into());
        Client::new(&url, key.trim())
    }

    /// A client sharing a worker's connections and key.
    pub(crate) fn from_api(api: Api) -> Client {
        Client { api }
    }

    /// Triggers a run of `task_id` with `payload` (any serde value, sent as JSON).
    pub async fn trigger(
        &self,
        task_id: &str,
        payload: impl Serialize,
        options: TriggerOptions,
    ) -> Result<TriggerHandle, Error> {
        self.trigger_from(task_id, payload, &options, None).await
    }

    /// Triggers a run of `task_id`, as a child of `parent` when given.
    pub(crate) async fn trigger_from(
        &self,
        task_id: &str,
        payload: impl Serialize,
        options: &TriggerOptions,
        parent: Option<&str>,
    ) -> Result<TriggerHandle, Error> {
        let payload = serde_json::to_value(payload)
            .map_err(|error| Error::Invalid(format!("the payload cannot be sent as JSON: {error}")))?;
        let request = TriggerRequest { payload, context: None, options: Some(options.to_wire(parent)?) };
        let path = format!("/api/v1/tasks/{}/trigger", path_segment(task_id));
        // One key for every try: a retry after a lost answer gets the first try's run, not a
        // second run. A 409 is a concurrent try that made the run first.
        let request_key = request_key();
        let answer: TriggerResponse = self
            .call(
                "trigger",
                |error| {
                    matches!(
                        error,
                        CallError::Unsent(_)
                            | CallError::Unreachable(_)
                            | CallError::Unavailable { .. }
                            | CallError::Rejected { status: 409, .. }
                    )
                },
                || self.api.post_once(&path, &request, (REQUEST_KEY_HEADER, &request_key), CALL_TIMEOUT),
            )
            .await?;
        Ok(TriggerHandle { id: answer.id, is_cached: answer.is_cached })
    }

    /// Triggers up to 1,000 runs in one request, each item with its own task, payload and
    /// options; they are committed together, in one batch. Answers the batch's id and its runs in
    /// item order.
    pub async fn batch_trigger(&self, items: Vec<BatchItem>) -> Result<BatchHandle, Error> {
        self.batch_trigger_from(items, None).await
    }

    /// Triggers a batch, its runs children of `parent` when given.
    pub(crate) async fn batch_trigger_from(
        &self,
        items: Vec<BatchItem>,
        parent: Option<&str>,
    ) -> Result<BatchHandle, Error> {
        let items = items
            .into_iter()
            .enumerate()
            .map(|(at, item)| item.into_wire(at, parent))
            .collect::<Result<Vec<_>, Error>>()?;
        let request = BatchTriggerRequest { items, ..BatchTriggerRequest::default() };
        // The batch's idempotency key, one for every try: a retry after a lost answer gets the
        // first try's batch and runs.
        let batch_key = request_key();
        let answer: BatchTriggerResponse = self
            .call(
                "batch trigger",
                |error| {
                    matches!(
                        error,
                        CallError::Unsent(_)
                            | CallError::Unreachable(_)
                            | CallError::Unavailable { .. }
                            | CallError::Rejected { status: 409, .. }
                    )
                },
                || self.api.post_once("/api/v1/tasks/batch", &request, (BATCH_KEY_HEADER, &batch_key), CALL_TIMEOUT),
            )
            .await?;
        let runs = answer.runs.into_iter().map(|run| TriggerHandle { id: run.id, is_cached: run.is_cached }).collect();
        Ok(BatchHandle { id: answer.id, runs })
    }

    /// A run of the key's environment, with its related runs.
    pub async fn retrieve(&self, run_id: &str) -> Result<RunObject, Error> {
        let path = format!("/api/v3/runs/{}", path_segment(run_id));
        self.call(
            "retrieve",
            |error| !matches!(error, CallError::Rejected { .. } | CallError::UnknownWorker(_)),
            || self.api.get(&path, CALL_TIMEOUT),
        )
        .await
    }

    /// Makes a call, again after a backoff while `retry` says so, up to [`ATTEMPTS`] times.
    async fn call<R, F, Fut>(&self, name: &'static str, retry: impl Fn(&CallError) -> bool, make: F) -> Result<R, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<R, CallError>>,
    {
        let mut backoff = Backoff::default();
        let mut attempt = 1;
        loop {
            let error = match make().await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if attempt >= ATTEMPTS || !retry(&error) {
                return Err(into_error(name, error));
            }
            attempt += 1;
            tokio::time::sleep(backoff.next_delay_honouring(crate::runtime::session::retry_after(&error))).await;
        }
    }
}

/// One item of a batch trigger: a task, its payload and its own trigger options.
#[derive(Debug, Clone)]
pub struct BatchItem {
    task_id: String,
    payload: Result<serde_json::Value, String>,
    options: TriggerOptions,
}

impl BatchItem {
    /// An item running `task_id` with `payload` (any serde value, sent as JSON).
    pub fn new(task_id: impl Into<String>, payload: impl Serialize) -> BatchItem {
        let payload = serde_json::to_value(payload).map_err(|error| error.to_string());
        BatchItem { task_id: task_id.into(), payload, options: TriggerOptions::new() }
    }

    /// The item's trigger options.
    pub fn options(mut self, options: TriggerOptions) -> BatchItem {
        self.options = options;
        self
    }

    /// The item as the API takes it, item `at` of its batch, its run a child of `parent` when
    /// given.
    pub(crate) fn into_wire(self, at: usize, parent: Option<&str>) -> Result<BatchTriggerItem, Error> {
        let payload = self
            .payload
            .map_err(|error| Error::Invalid(format!("item {at}: the payload cannot be sent as JSON: {error}")))?;
        let options = Some(self.options.to_wire(parent)?);
        Ok(BatchTriggerItem { task: self.task_id, payload, context: None, options })
    }
}

/// A triggered batch: its id and its runs, in item order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHandle {
    /// The batch's id (`batch_…`).
    pub id: String,
    /// Its runs, in item order.
    pub runs: Vec<TriggerHandle>,
}

/// A random request idempotency key in a UUID's shape (version 4), as Trigger.dev's SDK makes.
fn request_key() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A call's failure as the crate's error.
fn into_error(call: &'static str, error: CallError) -> Error {
    match error {
        CallError::Unreachable(reason) | CallError::Unsent(reason) => Error::Unreachable { call, reason },
        CallError::Unavailable { status, message, .. } | CallError::Rejected { status, message } => {
            Error::Rejected { call, status, message }
        }
        CallError::UnknownWorker(message) => Error::Rejected { call, status: 404, message },
    }
}

/// `text` as one path segment: characters other than letters, digits and `-._~` percent-encoded
/// (task identifiers may hold `/` and `:`).
fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_keys_are_random_uuids_of_version_4() {
        let (a, b) = (request_key(), request_key());
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12], "{a}");
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b')), "{a}");
    }

    #[test]
    fn task_ids_are_one_path_segment() {
        assert_eq!(path_segment("hello-world"), "hello-world");
        assert_eq!(path_segment("emails/send:v2"), "emails%2Fsend%3Av2");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_naming_the_call() {
        // Port 9 (discard) is never served here: the connection is refused, retried, then reported.
        let client = Client::new("http://127.0.0.1:9", "tr_dev_x").unwrap();
        let error = client.retrieve("run_x").await.unwrap_err();
        assert!(matches!(error, Error::Unreachable { call: "retrieve", .. }), "{error}");
    }
}
