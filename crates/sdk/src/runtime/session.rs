//! The worker's registration with the server, and calls under its worker id that register again
//! when the server has forgotten it.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use stint_protocol::worker::{RegisterRequest, RegisterResponse};
use tokio_util::sync::CancellationToken;

use super::api::{Api, Body, CallError};
use super::backoff::Backoff;

/// How long one registration call may take.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call was abandoned.
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// The caller's give-up token fired while waiting to retry.
    GaveUp,
    /// The server refused the call in a way that retrying cannot fix.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
}

impl CallFailure {
    /// The failure as the crate's error, naming the call.
    pub(crate) fn into_error(self, call: &'static str) -> Option<crate::Error> {
        match self {
            CallFailure::GaveUp => None,
            CallFailure::Rejected { status, message } => Some(crate::Error::Rejected { call, status, message }),
        }
    }
}

/// The current registration. `generation` grows by one with each registration, so concurrent
/// callers that all saw a 404 register only once.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub(crate) worker_id: Arc<str>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) generation: u64,
}

/// The registration and the client that uses it.
pub(crate) struct Session {
    api: Api,
    request: RegisterRequest,
    current: RwLock<Registration>,
    /// Held while registering, so only one registration is under way.
    registering: tokio::sync::Mutex<()>,
}

impl Session {
    /// A session that has not registered yet (generation 0).
    pub(crate) fn new(api: Api, request: RegisterRequest) -> Session {
        let unregistered =
            Registration { worker_id: Arc::from(""), heartbeat_interval: Duration::from_secs(5), generation: 0 };
        Session { api, request, current: RwLock::new(unregistered), registering: tokio::sync::Mutex::new(()) }
    }

    /// The current registration.
    pub(crate) fn current(&self) -> Registration {
        self.current.read().clone()
    }

    /// Registers unless someone already did since `seen_generation`, retrying with backoff while
    /// the server is unreachable or unavailable.
    pub(crate) async fn ensure_registered(
        &self,
        seen_generation: u64,
        give_up: &CancellationToken,
    ) -> Result<(), CallFailure> {
        let _registering = self.registering.lock().await;
        if self.current.read().generation != seen_generation {
            return Ok(());
        }
        let mut backoff = Backoff::default();
        loop {
            let answer =
                self.api.post::<_, RegisterResponse>("/api/v1/workers/register", &self.request, REGISTER_TIMEOUT);
            let error = match answer.await {
                Ok(response) => {
                    let mut current = self.current.write();
                    current.generation += 1;
                    current.worker_id = Arc::from(response.worker_id.as_str());
                    // A zero interval would make the heartbeat loop spin.
                    current.heartbeat_interval = Duration::from_millis(response.heartbeat_interval_ms.max(100));
                    tracing::info!(
                        worker_id = %response.worker_id,
                        version = %assigned_version(&response),
                        label = %self.request.version,
                        tasks = self.request.tasks.len(),
                        "registered with the server"
                    );
                    return Ok(());
                }
                Err(CallError::Rejected { status, message }) => return Err(CallFailure::Rejected { status, message }),
                // The registration path always exists, so a 404 means something between us and
                // the server is wrong; retrying would not change it.
                Err(CallError::UnknownWorker(message)) => return Err(CallFailure::Rejected { status: 404, message }),
                Err(error) => error,
            };
            let delay = backoff.next_delay_honouring(retry_after(&error));
            tracing::warn!(%error, retry_in = ?delay, "could not register with the server; retrying");
            tokio::select! {
                () = give_up.cancelled() => return Err(CallFailure::GaveUp),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One POST to `/api/v1/workers/{id}/{action}`, with the generation of the id used.
    pub(crate) async fn post<B, R>(&self, action: &str, body: &B, timeout: Duration) -> (u64, Result<R, CallError>)
    where
        B: Body + ?Sized,
        R: DeserializeOwned,
    {
        let registration = self.current();
        let path = format!("/api/v1/workers/{}/{action}", registration.worker_id);
        (registration.generation, self.api.post(&path, body, timeout).await)
    }

    /// POSTs until the server answers: registers again on 404 unless `give_up` has fired, and
    /// waits with backoff (or as long as `Retry-After` says) after connection errors and
    /// unavailability, until `give_up` fires.
    pub(crate) async fn post_until_answered<B, R>(
        &self,
        action: &'static str,
        body: &B,
        timeout: Duration,
        give_up: &CancellationToken,
    ) -> Result<R, CallFailure>
    where
        B: Body + ?Sized,
        R: DeserializeOwned,
    {
        let mut backoff = Backoff::default();
        loop {
            let (generation, answer) = self.post(action, body, timeout).await;
            let error = match answer {
                Ok(response) => return Ok(response),
                // A fresh registration would not be disconnected, so a dequeue call of a stopping
                // worker made under it would wait out its whole wait.
                Err(CallError::UnknownWorker(_)) if give_up.is_cancelled() => return Err(CallFailure::GaveUp),
                Err(CallError::UnknownWorker(message)) => {
                    tracing::warn!(call = action, %message, "the server does not know this worker; registering again");
                    self.ensure_registered(generation, give_up).await?;
                    continue;
                }
                Err(CallError::Rejected { status, message }) => return Err(CallFailure::Rejected { status, message }),
                Err(error) => error,
            };
            let delay = backoff.next_delay_honouring(retry_after(&error));
            tracing::warn!(call = action, %error, retry_in = ?delay, "call failed; retrying");
            tokio::select! {
                () = give_up.cancelled() => return Err(CallFailure::GaveUp),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// The delay the server asked for, if any.
pub(crate) fn retry_after(error: &CallError) -> Option<Duration> {
    match error {
        CallError::Unavailable { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// The version the server gave a registration, as a log shows it: `20261130.1`, or a pool's
/// `staging=20261130.1 prod=20261130.3`; `unknown` from a server that does not say.
fn assigned_version(response: &RegisterResponse) -> String {
    match (&response.version, &response.versions) {
        (Some(version), _) => version.clone(),
        (None, Some(versions)) => {
            versions.iter().map(|v| format!("{}={}", v.environment, v.version)).collect::<Vec<_>>().join(" ")
        }
        (None, None) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use stint_protocol::worker::EnvironmentVersion;

    use super::*;

    fn answer(version: Option<&str>, versions: Option<Vec<(&str, &str)>>) -> RegisterResponse {
        RegisterResponse {
            worker_id: "worker_1".into(),
            heartbeat_interval_ms: 5_000,
            version: version.map(str::to_string),
            versions: versions.map(|all| {
                all.into_iter()
                    .map(|(env, v)| EnvironmentVersion { environment: env.into(), version: v.into() })
                    .collect()
            }),
        }
    }

    #[test]
    fn the_log_shows_the_version_or_each_environments() {
        assert_eq!(assigned_version(&answer(Some("20261130.2"), None)), "20261130.2");
        let pool = answer(None, Some(vec![("staging", "20261130.1"), ("prod", "20261130.4")]));
        assert_eq!(assigned_version(&pool), "staging=20261130.1 prod=20261130.4");
        assert_eq!(assigned_version(&answer(None, None)), "unknown", "an older server does not say");
    }
}
