//! Taking runs: whenever concurrency slots are free, ask the server for that many runs and start
//! each as soon as it arrives; at shutdown, disconnect so the call in flight is answered at once.

use std::sync::Arc;
use std::time::Duration;

use serde::de::IgnoredAny;
use stint_protocol::worker::{DequeueRequest, DequeueResponse};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::api::CallError;
use super::backoff::Backoff;
use super::session::{CallFailure, retry_after};
use super::{Shared, attempt};

/// Most runs the server hands out in one call.
const MAX_RUNS: usize = 1_000;
/// Time allowed for an answer beyond the long-poll wait.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);
/// How long one disconnect call may take.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Takes runs until the worker is stopping. One call is in flight at a time: slots that free up
/// meanwhile are asked for together by the next call, which keeps calls few and large (a second
/// call in parallel halved the runs per call and gained nothing).
///
/// Stopping ends the loop between calls, never during one: the server may already have started
/// attempts for a call in flight, and dropping its answer would leave those runs stuck until
/// they stall. The runs it brings are started like any others. A stopping worker
/// [disconnects](disconnect), so the call in flight is answered at once rather than at the end
/// of its wait.
pub(crate) async fn dequeue_loop(shared: Arc<Shared>) {
    loop {
        let first = tokio::select! {
            biased;
            () = shared.stopping.cancelled() => return,
            slot = Arc::clone(&shared.slots).acquire_owned() => slot.expect("the slot semaphore is never closed"),
        };
        let slots = gather(&shared.slots, first).await;
        take_runs(&shared, slots).await;
    }
}

/// Adds every other free slot to `first`, up to [`MAX_RUNS`]. Yielding once first lets attempts
/// finishing at the same moment release their slots, so one call asks for all of them.
async fn gather(slots: &Arc<Semaphore>, mut first: OwnedSemaphorePermit) -> OwnedSemaphorePermit {
    tokio::task::yield_now().await;
    let more = slots.available_permits().min(MAX_RUNS - 1);
    if more > 0
        && let Ok(extra) = Arc::clone(slots).try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX))
    {
        first.merge(extra);
    }
    first
}

/// One dequeue call for as many runs as `slots` holds, retried until answered or stopping; each
/// run taken gets one slot and the rest are released.
async fn take_runs(shared: &Arc<Shared>, mut slots: OwnedSemaphorePermit) {
    let max_runs = u32::try_from(slots.num_permits()).unwrap_or(u32::MAX);
    let wait_ms = u64::try_from(shared.dequeue_wait.as_millis()).unwrap_or(30_000);
    let request = DequeueRequest { max_runs, wait_ms };
    let timeout = shared.dequeue_wait + ANSWER_MARGIN;
    // Stopping ends the retries, not the call in flight.
    let answer =
        shared.session.post_until_answered::<_, DequeueResponse>("dequeue", &request, timeout, &shared.stopping);
    let runs = match answer.await {
        Ok(response) => response.runs,
        Err(CallFailure::GaveUp) => return,
        Err(CallFailure::Rejected { status, message }) => {
            tracing::error!(status, %message, "the server refused to hand out runs; stopping");
            shared.fail(crate::Error::Rejected { call: "dequeue", status, message });
            return;
        }
    };
    tracing::trace!(runs = runs.len(), max_runs, "dequeued");
    for run in runs {
        let Some(slot) = slots.split(1) else {
            // The server broke its promise of at most `maxRuns`. Running the extra run would
            // exceed the worker's concurrency; left alone, it stalls and is retried.
            tracing::error!(run_id = %run.run_id, max_runs, "the server handed out more runs than asked for; run skipped");
            continue;
        };
        attempt::start(shared, run, slot);
    }
}

/// Tells the server that this worker takes no more runs: its dequeue call in flight is answered
/// at once, with the runs it took if any, and later calls take nothing. Retried with backoff while
/// the server cannot be reached or is unavailable, so the caller bounds it; without it the call in
/// flight merely runs to the end of its wait.
pub(crate) async fn disconnect(shared: &Shared) {
    let mut backoff = Backoff::default();
    let mut failures = 0_u32;
    loop {
        let body = serde_json::json!({});
        let (_, answer) = shared.session.post::<_, IgnoredAny>("disconnect", &body, DISCONNECT_TIMEOUT).await;
        let error = match answer {
            Ok(_) => {
                tracing::debug!("disconnected; the server answers the dequeue call in flight now");
                return;
            }
            // A server that does not know the worker has no dequeue call of it waiting.
            Err(CallError::UnknownWorker(_)) => return,
            Err(CallError::Rejected { status, message }) => {
                tracing::warn!(status, %message, "the server refused to disconnect the worker");
                return;
            }
            Err(error) => error,
        };
        let delay = backoff.next_delay_honouring(retry_after(&error));
        failures += 1;
        if failures == 1 {
            tracing::warn!(%error, retry_in = ?delay, "could not disconnect; the dequeue call in flight may wait out its wait");
        } else {
            tracing::debug!(%error, retry_in = ?delay, "could not disconnect; retrying");
        }
        tokio::time::sleep(delay).await;
    }
}
