//! Durable execution: steps whose results are recorded, and waits that may outlive the attempt.
//!
//! A run's durable calls are numbered in call order from 0. Each call at position n first looks
//! at the journal the run was dequeued with ([`journal`]): a recorded result is returned without
//! making the call again; otherwise the call goes to the server through the attempt's
//! [`Connection`] (the worker protocol's `steps`, `waits` and `continue` calls). A wait the
//! server cannot answer at once blocks the run; the call then asks `continue` until the run goes
//! on in place, or the server suspends it: the attempt then ends without a completion, and a
//! later attempt replays the task from the top with the journal.
//!
//! The public methods are on [`TaskContext`]; the rules a task must follow are in the crate's
//! documentation, "Durable execution".

mod journal;
mod results;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use stint_protocol::durable::{
    self as wire, CallOutcome, CallResponse, ContinueAction, ContinueRequest, ContinueResponse, JournalEntry,
    StepRequest, Wait, WaitRequest,
};

use crate::runtime::running::HeldSnapshot;
use crate::{BatchItem, Metadata, TaskContext, TaskError, TriggerOptions};
use journal::{Call, Journal, Mismatch, Replay};
pub use results::{BatchResult, ChildRunError, DurableError, RunResult, TokenTimeout};

/// How long the server may hold a `continue` call while the run is still blocked, in ms.
const CONTINUE_WAIT_MS: u64 = 10_000;

/// How the server ended an attempt during one of its durable calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The run was suspended while it waited: the attempt ends without a completion and frees
    /// its slot; the run is replayed once its waits complete.
    Suspend,
    /// The attempt is no longer this worker's (`STOP`, or a call answered `STALE`): it ends and
    /// its result is dropped.
    Stop,
}

/// The way from an attempt's durable calls to the server: the worker's runtime, or a test's fake.
pub(crate) trait Connection: Send + Sync {
    /// `POST …/runs/{runId}/steps`, retried until the server answers.
    fn step(&self, request: StepRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>>;

    /// `POST …/runs/{runId}/waits`, retried until the server answers.
    fn wait(&self, request: WaitRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>>;

    /// `POST …/runs/{runId}/continue`, retried until the server answers.
    fn resume(&self, request: ContinueRequest) -> BoxFuture<'_, Result<ContinueResponse, DurableError>>;

    /// Sends the run's metadata changes not sent yet and returns once they are answered: a run
    /// that is suspended sends no completion to carry them.
    fn flush_metadata<'a>(&'a self, metadata: &'a Metadata) -> BoxFuture<'a, ()>;

    /// Ends the attempt without a completion: its task future is dropped and its slot freed.
    fn end(&self, end: End);
}

/// What the durable calls of one attempt share: the walk through the journal, the snapshot the
/// attempt holds, the way to the server, and what makes the attempt fail whatever the task does.
pub(crate) struct Durable {
    journal: Mutex<Journal>,
    snapshot: Arc<HeldSnapshot>,
    connection: Option<Arc<dyn Connection>>,
    /// Set while a durable call is in flight: the position of a call must not depend on timing.
    busy: AtomicBool,
    /// The first misuse found; the attempt fails with it.
    failure: Mutex<Option<Failure>>,
}

/// A misuse of durable calls that fails the attempt, whatever the task returns afterwards.
#[derive(Debug, Clone)]
enum Failure {
    NonDeterminism(String),
    ConcurrentCall(String),
}

impl Failure {
    fn error(&self) -> DurableError {
        match self {
            Failure::NonDeterminism(message) => DurableError::NonDeterminism(message.clone()),
            Failure::ConcurrentCall(message) => DurableError::ConcurrentCall(message.clone()),
        }
    }
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("snapshot", &self.snapshot)
            .field("connected", &self.connection.is_some())
            .field("failure", &*self.failure.lock())
            .finish_non_exhaustive()
    }
}

/// What a wait gave: its position and recorded result.
struct Waited {
    seq: u32,
    output: Value,
    is_error: bool,
}

impl Durable {
    /// The durable state of an attempt of a run dequeued with `journal`, holding `snapshot`; a
    /// state without a connection can replay recorded results only.
    pub(crate) fn new(
        journal: Vec<JournalEntry>,
        snapshot: Arc<HeldSnapshot>,
        connection: Option<Arc<dyn Connection>>,
    ) -> Durable {
        Durable {
            journal: Mutex::new(Journal::new(journal)),
            snapshot,
            connection,
            busy: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// The error the attempt must fail with whatever the task returned: a non-deterministic or
    /// concurrent durable call.
    pub(crate) fn failure(&self) -> Option<TaskError> {
        self.failure.lock().as_ref().map(|failure| failure.error().into())
    }

    /// Records a misuse (the first one wins) and returns its error.
    fn fail(&self, failure: Failure) -> DurableError {
        self.failure.lock().get_or_insert(failure).error()
    }

    /// Runs `work`, the durable call `call`, as the only durable call in flight.
    async fn exclusive<R>(
        &self,
        call: &Call,
        work: impl Future<Output = Result<R, DurableError>>,
    ) -> Result<R, DurableError> {
        if let Some(failure) = self.failure.lock().as_ref() {
            return Err(failure.error());
        }
        if self.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(self.fail(Failure::ConcurrentCall(format!(
                "{call} was called while another durable call of this run was in flight: durable calls must be \
                 awaited one at a time (not joined, spawned side by side or made inside a step), so that each \
                 takes the same position in the journal on every replay"
            ))));
        }
        let busy = Busy { durable: self, call, finished: false };
        let result = work.await;
        busy.finish();
        result
    }

    /// Takes the next position of the journal for `call`.
    fn next(&self, call: &Call) -> Result<Replay, DurableError> {
        let replay = self.journal.lock().next(call);
        replay.map_err(|mismatch| self.fail(Failure::NonDeterminism(mismatch.message().to_string())))
    }

    /// The connection to the server, for a call whose result is not recorded.
    fn connection(&self, call: &Call) -> Result<&Arc<dyn Connection>, DurableError> {
        self.connection.as_ref().ok_or_else(|| {
            DurableError::Unavailable(format!(
                "{call} is not recorded in the run's journal, and this context belongs to no worker that could \
                 make it"
            ))
        })
    }

    /// Holds the snapshot the server gave in answer to a call made with `sent`.
    fn adopt(&self, sent: &str, given: Option<String>) {
        if let Some(given) = given {
            self.snapshot.advance(sent, &given);
        }
    }

    /// The mismatch the server found at `seq`.
    fn mismatch(&self, seq: u32, call: &Call, explanation: Option<String>) -> DurableError {
        self.fail(Failure::NonDeterminism(Mismatch::reported(seq, call, explanation).message().to_string()))
    }

    /// Ends the attempt as the server said, and never returns: the attempt's supervisor drops
    /// the task's future.
    async fn end<R>(&self, connection: &Arc<dyn Connection>, end: End) -> R {
        connection.end(end);
        std::future::pending().await
    }

    /// A step: its recorded output, or `run` run and its output recorded.
    async fn step<T, F, Fut>(&self, call: &Call, name: &str, run: F) -> Result<T, DurableError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, TaskError>>,
    {
        let seq = match self.next(call)? {
            Replay::Recorded { seq, output, .. } => return decode(seq, call, output),
            Replay::Call { seq } => seq,
        };
        let value = run().await.map_err(DurableError::Step)?;
        let output = serde_json::to_value(&value).map_err(|error| {
            DurableError::Invalid(format!("the output of {call} cannot be recorded as JSON: {error}"))
        })?;
        let connection = self.connection(call)?;
        let sent = self.snapshot.current();
        let request = StepRequest { snapshot_id: sent.clone(), seq, name: name.to_string(), output: output.clone() };
        let response = connection.step(request).await?;
        match response.outcome {
            CallOutcome::Completed => {
                self.adopt(&sent, response.snapshot_id);
                // A step recorded already at this position (by a try whose answer was lost) keeps
                // what was recorded first.
                match response.entry.and_then(|entry| entry.output) {
                    Some(recorded) if recorded != output => decode(seq, call, recorded),
                    _ => Ok(value),
                }
            }
            CallOutcome::Mismatch => Err(self.mismatch(seq, call, response.error)),
            CallOutcome::Stale => self.end(connection, End::Stop).await,
            CallOutcome::Waiting => {
                Err(DurableError::UnexpectedAnswer(format!("the server answered WAITING to recording {call}")))
            }
        }
    }

    /// A wait: its recorded result, or the wait made and awaited, in place or across a
    /// suspension. `wait` makes the request's body, when one is sent.
    async fn wait(
        &self,
        call: &Call,
        wait: impl FnOnce() -> Result<Wait, DurableError>,
        metadata: &Metadata,
    ) -> Result<Waited, DurableError> {
        let seq = match self.next(call)? {
            Replay::Recorded { seq, output, is_error } => return Ok(Waited { seq, output, is_error }),
            Replay::Call { seq } => seq,
        };
        let wait = wait()?;
        let connection = self.connection(call)?;
        connection.flush_metadata(metadata).await;
        let sent = self.snapshot.current();
        let response = connection.wait(WaitRequest { snapshot_id: sent.clone(), seq, wait }).await?;
        let blocked = match response.outcome {
            CallOutcome::Completed => {
                self.adopt(&sent, response.snapshot_id);
                return completed(seq, call, response.entry);
            }
            CallOutcome::Waiting => {
                let blocked = response.snapshot_id.unwrap_or_else(|| sent.clone());
                self.snapshot.advance(&sent, &blocked);
                blocked
            }
            CallOutcome::Mismatch => return Err(self.mismatch(seq, call, response.error)),
            CallOutcome::Stale => return self.end(connection, End::Stop).await,
        };
        // Every continue names the blocked snapshot, even once a heartbeat has told the attempt
        // the one it went on under: that is how the server knows the answer to give.
        loop {
            let request = ContinueRequest { snapshot_id: blocked.clone(), seq, wait_ms: CONTINUE_WAIT_MS };
            let response = connection.resume(request).await?;
            match response.action {
                ContinueAction::Continue => {
                    self.adopt(&blocked, response.snapshot_id);
                    return completed(seq, call, response.entry);
                }
                ContinueAction::Wait => {}
                ContinueAction::Suspend => return self.end(connection, End::Suspend).await,
                ContinueAction::Stop => return self.end(connection, End::Stop).await,
            }
        }
    }
}

/// Marks a durable call in flight; a call dropped before it finished fails the attempt, since
/// the server may have recorded or blocked something the task then goes on without.
struct Busy<'a> {
    durable: &'a Durable,
    call: &'a Call,
    finished: bool,
}

impl Busy<'_> {
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.durable.busy.store(false, Ordering::Release);
        if !self.finished {
            // Also the case of an attempt the worker stops, which reports nothing either way.
            self.durable.fail(Failure::ConcurrentCall(format!(
                "{} was abandoned before it finished (its future was dropped, by a select! or a timeout around it?): \
                 the task went on without knowing what the server recorded",
                self.call
            )));
        }
    }
}

/// The result of a completed wait, from the server's answer.
fn completed(seq: u32, call: &Call, entry: Option<JournalEntry>) -> Result<Waited, DurableError> {
    match entry {
        Some(entry) if entry.completed => {
            Ok(Waited { seq, output: entry.output.unwrap_or(Value::Null), is_error: entry.is_error })
        }
        _ => Err(DurableError::UnexpectedAnswer(format!("the server said {call} completed but gave no result"))),
    }
}

/// A recorded result as `T`.
fn decode<T: DeserializeOwned>(seq: u32, call: &Call, output: Value) -> Result<T, DurableError> {
    serde_json::from_value(output).map_err(|error| {
        DurableError::Decode(format!(
            "the result of {call} recorded at position {seq} is not of the type the task asks for: {error}"
        ))
    })
}

/// Durable calls. The rules they rely on are in the crate's documentation, "Durable execution":
/// in short, make the same durable calls in the same order on every replay, one at a time, and put
/// every side effect inside a [`step`](TaskContext::step).
impl TaskContext {
    /// Runs `run` once for the run, records its output, and returns it; a replay of the run
    /// returns the recorded output (read back from JSON as `T`) without running `run` again.
    ///
    /// Everything outside steps runs again on every replay; a step runs until it has succeeded
    /// once. A step that fails (returns `Err`) records nothing and gives
    /// [`DurableError::Step`] with its error, which `?` turns back into that error: the attempt
    /// fails, and the next attempt runs the step again. A step can also run again after it
    /// succeeded, when the worker crashes or loses the server between running it and recording
    /// its output: make steps idempotent (an idempotency key to the payment provider, an upsert
    /// rather than an insert).
    ///
    /// `name` must be the same on every replay (it is checked against the journal; names may
    /// repeat). Do not make durable calls inside `run`. Put a timeout inside the step, not around
    /// it.
    ///
    /// ```no_run
    /// use stint_sdk::{TaskContext, TaskError};
    ///
    /// async fn charge(ctx: TaskContext, order: String) -> Result<String, TaskError> {
    ///     let receipt: String = ctx
    ///         .step("charge", || async {
    ///             // Runs once per run, even if the task is replayed after a wait.
    ///             Ok(format!("receipt for {order}"))
    ///         })
    ///         .await?;
    ///     Ok(receipt)
    /// }
    /// ```
    pub async fn step<T, F, Fut>(&self, name: &str, run: F) -> Result<T, DurableError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, TaskError>>,
    {
        let durable = self.durable();
        let call = Call::step(name);
        durable.exclusive(&call, durable.step(&call, name, run)).await
    }

    /// Waits for `duration`, counted from this call (on a replay the wait is over: the journal
    /// records that it was waited for, not for how long). See [`TaskContext::wait_until`].
    pub async fn wait_for(&self, duration: Duration) -> Result<(), DurableError> {
        let until = SystemTime::now().checked_add(duration).ok_or_else(|| {
            DurableError::Invalid(format!("a wait of {duration:?} ends too far in the future to be written down"))
        })?;
        self.wait_until(until).await
    }

    /// Waits until `at` (a time passed means no wait). The run's slot stays taken while the
    /// server lets the attempt wait in place; after the server's threshold (5 s by default) it
    /// suspends the run instead: the attempt ends without a result and frees its slot, and once
    /// the time has come any worker replays the task from the top, with every durable call
    /// before this one answered from the journal.
    ///
    /// Only the kind of call is checked against the journal on a replay, not the time.
    pub async fn wait_until(&self, at: SystemTime) -> Result<(), DurableError> {
        let until = crate::trigger_options::date_text(at);
        let call = Call::wait(until.clone());
        self.wait_call(&call, || Ok(Wait::Until { until })).await.map(drop)
    }

    /// Waits until the token `id` (`waitpoint_…`, made with the API's
    /// `POST /api/v1/waitpoints/tokens`) is completed, and returns the data it was completed with
    /// as `T` (a token completed without data gives JSON `null`: use `()` or an `Option`). A
    /// token that times out first gives `Ok(Err(`[`TokenTimeout`]`))`; `??` turns both layers
    /// into task errors. An unknown token is [`DurableError::Rejected`] with status 404.
    ///
    /// The token's id must be the same on every replay: create it in a [`step`](TaskContext::step)
    /// or with an idempotency key. Waiting works as for [`TaskContext::wait_until`].
    pub async fn wait_for_token<T: DeserializeOwned>(&self, id: &str) -> Result<Result<T, TokenTimeout>, DurableError> {
        let call = Call::token(id);
        let waited = self.wait_call(&call, || Ok(Wait::Token { id: id.to_string() })).await?;
        if waited.is_error {
            return Ok(Err(TokenTimeout::new(id, waited.output)));
        }
        decode(waited.seq, &call, waited.output).map(Ok)
    }

    /// Triggers a run of `task_id` as a child of this run, locked to this run's version, and
    /// waits until it has finished; returns how it ended, failures included (see
    /// [`RunResult::output`]). `options` mean what they mean for [`TaskContext::trigger`].
    ///
    /// The child is triggered once per run: a replay gets the recorded result, and a call sent
    /// again gets the child the first call made. `task_id` must be the same on every replay.
    /// Waiting works as for [`TaskContext::wait_until`]; a parent waiting on a run that waits on
    /// it is refused with [`DurableError::Rejected`] (422, `RECURSIVE_WAIT_DEADLOCK`).
    pub async fn trigger_and_wait(
        &self,
        task_id: &str,
        payload: impl Serialize,
        options: TriggerOptions,
    ) -> Result<RunResult, DurableError> {
        let call = Call::run(task_id);
        let wait = || {
            let payload = serde_json::to_value(payload).map_err(|error| {
                DurableError::Invalid(format!("the payload of {call} cannot be sent as JSON: {error}"))
            })?;
            let options =
                options.to_wire(Some(self.run_id())).map_err(|error| DurableError::Invalid(error.to_string()))?;
            Ok(Wait::Run { task: task_id.to_string(), payload, options: Some(options) })
        };
        let waited = self.wait_call(&call, wait).await?;
        decode::<wire::RunResult>(waited.seq, &call, waited.output).map(RunResult::from)
    }

    /// Triggers a batch of up to 1,000 child runs, each item with its own task, payload and
    /// options, and waits until all have finished; returns their results in item order, failures
    /// included. See [`TaskContext::trigger_and_wait`]; the number of items must be the same on
    /// every replay.
    pub async fn batch_trigger_and_wait(&self, items: Vec<BatchItem>) -> Result<BatchResult, DurableError> {
        let call = Call::batch(items.len());
        let parent = self.run_id();
        let wait = move || {
            let items = items.into_iter().enumerate().map(|(at, item)| item.into_wire(at, Some(parent)));
            let items =
                items.collect::<Result<Vec<_>, _>>().map_err(|error| DurableError::Invalid(error.to_string()))?;
            Ok(Wait::Batch { items })
        };
        let waited = self.wait_call(&call, wait).await?;
        decode::<wire::BatchResult>(waited.seq, &call, waited.output).map(BatchResult::from)
    }

    /// The error this attempt must fail with whatever the task returned, if it misused durable
    /// calls.
    pub(crate) fn durable_failure(&self) -> Option<TaskError> {
        self.durable().failure()
    }

    async fn wait_call(
        &self,
        call: &Call,
        wait: impl FnOnce() -> Result<Wait, DurableError>,
    ) -> Result<Waited, DurableError> {
        let durable = self.durable();
        durable.exclusive(call, durable.wait(call, wait, self.metadata())).await
    }
}

#[cfg(test)]
mod tests;
