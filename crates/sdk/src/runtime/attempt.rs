//! Running one attempt: look up the task, run it as its own tokio task with panics caught and
//! the maximum duration enforced, and queue its completion.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use stint_protocol::types::{ErrorCode, TaskRunError};
use stint_protocol::worker::{Completion, DequeuedRun, RunRef};
use tokio::sync::OwnedSemaphorePermit;

use super::Shared;
use super::durable::Link;
use super::running::HeldSnapshot;
use crate::TaskContext;
use crate::task::{Handler, Outcome};

/// Starts the attempt of a dequeued run. `slot` is one unit of the worker's concurrency; it is
/// released when the attempt's completion is queued or the attempt is stopped.
pub(crate) fn start(shared: &Arc<Shared>, mut run: DequeuedRun, slot: OwnedSemaphorePermit) {
    let Some(task) = shared.tasks.get(&run.task_identifier) else {
        tracing::error!(run_id = %run.run_id, task = %run.task_identifier, "no task with this identifier in this worker");
        let error = TaskRunError::internal(
            ErrorCode::CouldNotFindTask,
            format!("this worker has no task \"{}\"", run.task_identifier),
        );
        shared.completions.push(Completion::failure(
            RunRef { run_id: run.run_id, snapshot_id: run.snapshot_id },
            error,
            true,
        ));
        return;
    };
    // The run's own limit is set when it was triggered and wins over the task's default.
    let limit = run.max_duration.map(|seconds| Duration::from_secs(u64::from(seconds))).or(task.max_duration);
    let handler = Arc::clone(&task.handler);
    let payload = std::mem::take(&mut run.payload);
    // The snapshot the attempt holds changes as it waits; whatever reports on the attempt reads
    // the current one.
    let snapshot = HeldSnapshot::new(std::mem::take(&mut run.snapshot_id));
    let (token, stopped) = shared.running.insert(run.run_id.clone(), Arc::clone(&snapshot));
    let link = Link { shared: Arc::clone(shared), run_id: run.run_id.clone(), token, snapshot: Arc::clone(&snapshot) };
    let context = TaskContext::from_run(&mut run, shared.triggers.clone(), Arc::clone(&snapshot), Some(Arc::new(link)));
    let metadata = context.metadata().clone();
    shared.metadata.insert(run.run_id.clone(), Arc::clone(&snapshot), metadata.clone());
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let outcome = tokio::select! {
            biased;
            // The entry was removed by a heartbeat answer, a durable call the server answered
            // SUSPEND or STOP, or at shutdown: whoever removed it reports the attempt, if anyone
            // does. Dropping the task's future here ends a durable call waiting for ever.
            _ = stopped => None,
            outcome = execute(handler, context, payload, limit) => Some(outcome),
        };
        if let Some(outcome) = outcome
            && shared.running.finish(&run.run_id, token)
        {
            // The changes not sent yet go with the completion, after any send in flight.
            let operations = metadata.finish().await;
            let run_ref = RunRef { run_id: run.run_id.clone(), snapshot_id: snapshot.current() };
            let mut completion = completion(run_ref, outcome);
            completion.metadata_operations = operations;
            shared.completions.push(completion);
        }
        shared.metadata.remove(&run.run_id, &snapshot);
        drop(slot);
    });
}

/// Runs the task: a panic becomes a `Panic` error and running past `limit` becomes
/// `MAX_DURATION_EXCEEDED`. Either way only this attempt fails.
pub(crate) async fn execute(
    handler: Arc<dyn Handler>,
    context: TaskContext,
    payload: Value,
    limit: Option<Duration>,
) -> Outcome {
    // The call itself goes inside the future so that a panic before the first await is caught too.
    let guarded = AssertUnwindSafe(async move { handler.call(context, payload).await }).catch_unwind();
    let finished = match limit {
        Some(limit) => match tokio::time::timeout(limit, guarded).await {
            Ok(finished) => finished,
            Err(_) => {
                let message = format!("the attempt ran longer than its maximum duration of {}s", limit.as_secs_f64());
                return Outcome::internal(ErrorCode::MaxDurationExceeded, message, true);
            }
        },
        None => guarded.await,
    };
    finished.unwrap_or_else(|panic| Outcome::Failure {
        error: TaskRunError::BuiltInError {
            name: "Panic".into(),
            message: panic_message(panic.as_ref()),
            stack_trace: String::new(),
        },
        skip_retrying: false,
    })
}

/// The completion reporting `outcome`.
fn completion(run: RunRef, outcome: Outcome) -> Completion {
    match outcome {
        Outcome::Success(output) => Completion::success(run, output),
        Outcome::Failure { error, skip_retrying } => {
            tracing::debug!(run_id = %run.run_id, ?error, "attempt failed");
            Completion::failure(run, error, skip_retrying)
        }
    }
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&'static str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "the task panicked with a value that is not a string".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::dequeued;
    use crate::{Task, TaskError};

    async fn run(task: Task, payload: Value, limit: Option<Duration>) -> Outcome {
        let mut dequeued = dequeued(task.id(), 1, Value::Null);
        execute(task.handler, crate::context::tests::detached(&mut dequeued), payload, limit).await
    }

    async fn panics(_ctx: TaskContext, code: u32) -> Result<(), TaskError> {
        tokio::task::yield_now().await;
        panic!("bad code {code}");
    }

    #[tokio::test]
    async fn a_panic_fails_only_the_attempt() {
        let Outcome::Failure { error, skip_retrying } = run(Task::new("p", panics), Value::from(7), None).await else {
            panic!("expected a failure")
        };
        assert!(!skip_retrying);
        assert_eq!(
            error,
            TaskRunError::BuiltInError {
                name: "Panic".into(),
                message: "bad code 7".into(),
                stack_trace: String::new()
            }
        );
    }

    #[tokio::test]
    async fn a_panic_before_the_first_await_is_caught() {
        let task = Task::new("p", |_ctx, (): ()| -> std::future::Ready<Result<(), TaskError>> { panic!("at once") });
        let Outcome::Failure { error, .. } = run(task, Value::Null, None).await else { panic!("expected a failure") };
        assert!(matches!(error, TaskRunError::BuiltInError { ref message, .. } if message == "at once"));
    }

    #[tokio::test(start_paused = true)]
    async fn running_past_the_limit_is_max_duration_exceeded() {
        let task = Task::new("slow", |_ctx, (): ()| async {
            std::future::pending::<()>().await;
            Ok::<_, TaskError>(())
        });
        let outcome = run(task, Value::Null, Some(Duration::from_secs(2))).await;
        let Outcome::Failure { error, skip_retrying } = outcome else { panic!("expected a failure") };
        assert!(skip_retrying);
        assert_eq!(error.code(), Some(ErrorCode::MaxDurationExceeded));
    }

    #[tokio::test]
    async fn a_run_of_a_task_this_worker_lacks_fails_without_retries() {
        // A server hands a worker only runs of tasks it registered, so this guards against a
        // server that strays; nothing here calls it.
        let api = super::super::api::Api::new("http://127.0.0.1:9", "tr_dev_x").unwrap();
        let request = stint_protocol::worker::RegisterRequest {
            version: "0.0.0".into(),
            sdk_version: None,
            tasks: Vec::new(),
            environments: None,
        };
        let session = super::super::session::Session::new(api, request);
        let triggers = crate::context::Triggers::Unavailable("no client in tests");
        let shared = Arc::new(Shared::new(session, std::collections::HashMap::new(), 1, Duration::ZERO, triggers));
        let slot = Arc::clone(&shared.slots).try_acquire_owned().unwrap();
        start(&shared, dequeued("nobody", 1, Value::Null), slot);
        let queued = shared.completions.take_batch();
        assert_eq!(queued.len(), 1);
        assert!(!queued[0].ok && queued[0].skip_retrying);
        assert_eq!(queued[0].error.as_ref().and_then(TaskRunError::code), Some(ErrorCode::CouldNotFindTask));
        assert_eq!(shared.slots.available_permits(), 1, "the slot is free again");
    }

    #[test]
    fn panic_payloads_become_messages() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert!(panic_message(&42u8).contains("not a string"));
    }
}
