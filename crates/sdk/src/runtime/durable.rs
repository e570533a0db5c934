//! The durable calls of one attempt, over the worker protocol: `steps`, `waits` and `continue`
//! under `/api/v1/workers/{workerId}/runs/{runId}/`, each retried until the server answers, and
//! the end of an attempt the server suspended or took back.
//!
//! Retrying is safe: the server answers a call at a position its journal has already from the
//! journal, so a call sent again after a lost answer records, blocks or triggers nothing twice.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stint_protocol::durable::{CallResponse, ContinueRequest, ContinueResponse, StepRequest, WaitRequest};

use super::Shared;
use super::api::CallError;
use super::backoff::Backoff;
use super::running::{HeldSnapshot, Token};
use super::session::retry_after;
use crate::Metadata;
use crate::durable::{Connection, DurableError, End};

/// How long a step or wait call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for a continue call's answer beyond the wait it asked for.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);

/// The attempt of `run_id` registered in [`Shared::running`] under `token`.
pub(crate) struct Link {
    pub(crate) shared: Arc<Shared>,
    pub(crate) run_id: String,
    pub(crate) token: Token,
    pub(crate) snapshot: Arc<HeldSnapshot>,
}

impl Link {
    /// POSTs `body` to `runs/{runId}/{action}` until the server answers: again after a backoff
    /// when it cannot be reached or is unavailable, again after registering when it has forgotten
    /// the worker, until the worker gives up on its calls.
    async fn call<B, R>(&self, action: &'static str, body: &B, timeout: Duration) -> Result<R, DurableError>
    where
        B: Serialize + Sync,
        R: DeserializeOwned,
    {
        let session = &self.shared.session;
        let path = format!("runs/{}/{action}", self.run_id);
        let mut backoff = Backoff::default();
        loop {
            let (generation, answer) = session.post::<B, R>(&path, body, timeout).await;
            let error = match answer {
                Ok(response) => return Ok(response),
                // A 404 about the worker asks for a new registration; one about the call (an
                // unknown token) is the call's answer.
                Err(CallError::UnknownWorker(message)) if names_the_worker(&message) => {
                    tracing::warn!(call = action, %message, "the server does not know this worker; registering again");
                    if session.ensure_registered(generation, &self.shared.halt).await.is_err() {
                        return Err(DurableError::Unavailable(format!(
                            "the {action} call of run {} was given up: the worker could not register again",
                            self.run_id
                        )));
                    }
                    continue;
                }
                Err(CallError::UnknownWorker(message)) => return Err(DurableError::Rejected { status: 404, message }),
                Err(CallError::Rejected { status, message }) => return Err(DurableError::Rejected { status, message }),
                Err(error) => error,
            };
            let delay = backoff.next_delay_honouring(retry_after(&error));
            tracing::warn!(run_id = %self.run_id, call = action, %error, retry_in = ?delay, "durable call failed; retrying");
            tokio::select! {
                () = self.shared.halt.cancelled() => {
                    return Err(DurableError::Unavailable(format!(
                        "the {action} call of run {} was given up as the worker stopped: {error}",
                        self.run_id
                    )));
                }
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Whether a 404's message is the server's "Worker … not found" rather than about the call.
fn names_the_worker(message: &str) -> bool {
    message.starts_with("Worker ")
}

impl Connection for Link {
    fn step(&self, request: StepRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>> {
        Box::pin(async move { self.call("steps", &request, CALL_TIMEOUT).await })
    }

    fn wait(&self, request: WaitRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>> {
        Box::pin(async move { self.call("waits", &request, CALL_TIMEOUT).await })
    }

    fn resume(&self, request: ContinueRequest) -> BoxFuture<'_, Result<ContinueResponse, DurableError>> {
        let timeout = Duration::from_millis(request.wait_ms) + ANSWER_MARGIN;
        Box::pin(async move { self.call("continue", &request, timeout).await })
    }

    fn flush_metadata<'a>(&'a self, metadata: &'a Metadata) -> BoxFuture<'a, ()> {
        Box::pin(super::metadata::flush_now(&self.shared, &self.run_id, &self.snapshot, metadata))
    }

    fn end(&self, end: End) {
        // Removing the entry stops the attempt: its supervisor drops the task's future, sends no
        // completion and frees the slot. An entry removed already (a heartbeat's STOP or CANCEL)
        // was reported by whoever removed it.
        if !self.shared.running.finish(&self.run_id, self.token) {
            return;
        }
        match end {
            End::Suspend => tracing::info!(
                run_id = %self.run_id,
                "the run was suspended while it waited; attempt ended without a completion, it is replayed when its waits complete"
            ),
            End::Stop => {
                tracing::warn!(run_id = %self.run_id, "the attempt is no longer this worker's; stopped and dropped")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_404_about_the_worker_asks_for_a_new_registration() {
        assert!(names_the_worker("Worker worker_01 not found; register again"));
        assert!(!names_the_worker("Waitpoint waitpoint_01 not found"));
    }
}
