//! [`TaskContext`]: what a task knows about the attempt it runs in.

use std::fmt::Display;
use std::sync::Arc;

use serde::Serialize;
use stint_protocol::worker::DequeuedRun;

use crate::durable::{Connection, Durable};
use crate::runtime::running::HeldSnapshot;
use crate::{BatchHandle, BatchItem, Client, Error, Metadata, TriggerHandle, TriggerOptions};

/// The run and attempt a task is executing, and the durable calls it makes (see "Durable
/// execution" in the crate's documentation). Cloning is cheap: clones share one allocation, and
/// one journal position counter, so durable calls made through any clone are numbered together.
#[derive(Clone, Debug)]
pub struct TaskContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    run_id: String,
    task_id: String,
    attempt: u32,
    max_attempts: u32,
    tags: Vec<String>,
    metadata: Metadata,
    triggers: Triggers,
    is_test: bool,
    queue: String,
    concurrency_key: Option<String>,
    created_at: String,
    durable: Durable,
}

/// How a task triggers other runs.
#[derive(Clone, Debug)]
pub(crate) enum Triggers {
    /// Through the public API with the worker's secret key.
    Client(Client),
    /// It cannot, for this reason.
    Unavailable(&'static str),
}

impl TaskContext {
    /// The context of a dequeued run, taking everything but the payload, whose attempt holds
    /// `snapshot` and makes its durable calls through `connection` (with none, it can only
    /// replay recorded results).
    pub(crate) fn from_run(
        run: &mut DequeuedRun,
        triggers: Triggers,
        snapshot: Arc<HeldSnapshot>,
        connection: Option<Arc<dyn Connection>>,
    ) -> TaskContext {
        TaskContext {
            inner: Arc::new(Inner {
                run_id: run.run_id.clone(),
                task_id: run.task_identifier.clone(),
                attempt: run.attempt_number,
                max_attempts: run.max_attempts,
                tags: std::mem::take(&mut run.tags),
                metadata: Metadata::new(run.metadata.take()),
                triggers,
                is_test: run.is_test,
                queue: std::mem::take(&mut run.queue),
                concurrency_key: run.concurrency_key.take(),
                created_at: std::mem::take(&mut run.created_at),
                durable: Durable::new(std::mem::take(&mut run.journal), snapshot, connection),
            }),
        }
    }

    /// The run's id (`run_…`).
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// The task's identifier.
    pub fn task_id(&self) -> &str {
        &self.inner.task_id
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The attempts the run may have in all.
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// Whether this is the run's last allowed attempt.
    pub fn is_last_attempt(&self) -> bool {
        self.inner.attempt >= self.inner.max_attempts
    }

    /// The run's tags.
    pub fn tags(&self) -> &[String] {
        &self.inner.tags
    }

    /// The run's metadata, to read and change while the run executes: changes reach the server
    /// about every second, and the last ones with the attempt's completion.
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// Triggers a run of `task_id` as a child of this run: the new run's `parentRunId` is this
    /// run, so each shows the other among its related runs. The worker must have a secret key;
    /// a worker pool, registered with a personal access token, cannot trigger runs.
    pub async fn trigger(
        &self,
        task_id: &str,
        payload: impl Serialize,
        options: TriggerOptions,
    ) -> Result<TriggerHandle, Error> {
        match &self.inner.triggers {
            Triggers::Client(client) => client.trigger_from(task_id, payload, &options, Some(&self.inner.run_id)).await,
            Triggers::Unavailable(reason) => Err(Error::Invalid((*reason).to_string())),
        }
    }

    /// Triggers a batch of runs, each a child of this run (see [`TaskContext::trigger`] and
    /// [`Client::batch_trigger`]).
    pub async fn batch_trigger(&self, items: Vec<BatchItem>) -> Result<BatchHandle, Error> {
        match &self.inner.triggers {
            Triggers::Client(client) => client.batch_trigger_from(items, Some(&self.inner.run_id)).await,
            Triggers::Unavailable(reason) => Err(Error::Invalid((*reason).to_string())),
        }
    }

    /// Whether the run is a test run.
    pub fn is_test(&self) -> bool {
        self.inner.is_test
    }

    /// The queue the run was taken from.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// The run's concurrency key, if it has one.
    pub fn concurrency_key(&self) -> Option<&str> {
        self.inner.concurrency_key.as_deref()
    }

    /// When the run was created, RFC 3339.
    pub fn created_at(&self) -> &str {
        &self.inner.created_at
    }

    /// The attempt's durable state.
    pub(crate) fn durable(&self) -> &Durable {
        &self.inner.durable
    }

    /// A logger whose events carry this run's id, task and attempt.
    pub fn logger(&self) -> Logger<'_> {
        Logger { context: self }
    }
}

/// Logs through `tracing`, each event carrying the fields `run_id`, `task` and `attempt`.
/// Obtained from [`TaskContext::logger`].
#[derive(Clone, Copy, Debug)]
pub struct Logger<'a> {
    context: &'a TaskContext,
}

/// Emits one event at a fixed level with the attempt's fields.
macro_rules! log_at {
    ($level:expr, $context:expr, $message:expr) => {{
        let inner = &$context.inner;
        tracing::event!(
            target: "stint_sdk::task",
            $level,
            run_id = %inner.run_id,
            task = %inner.task_id,
            attempt = inner.attempt,
            "{}",
            $message
        );
    }};
}

impl Logger<'_> {
    /// Logs at TRACE level.
    pub fn trace(&self, message: impl Display) {
        log_at!(tracing::Level::TRACE, self.context, message);
    }

    /// Logs at DEBUG level.
    pub fn debug(&self, message: impl Display) {
        log_at!(tracing::Level::DEBUG, self.context, message);
    }

    /// Logs at INFO level.
    pub fn info(&self, message: impl Display) {
        log_at!(tracing::Level::INFO, self.context, message);
    }

    /// Logs at WARN level.
    pub fn warn(&self, message: impl Display) {
        log_at!(tracing::Level::WARN, self.context, message);
    }

    /// Logs at ERROR level.
    pub fn error(&self, message: impl Display) {
        log_at!(tracing::Level::ERROR, self.context, message);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    use serde_json::Value;

    /// A context that cannot trigger runs, for tests.
    pub(crate) fn detached(run: &mut DequeuedRun) -> TaskContext {
        let snapshot = HeldSnapshot::new(run.snapshot_id.clone());
        TaskContext::from_run(run, Triggers::Unavailable("this context has no client"), snapshot, None)
    }

    /// A dequeued run of `task` with attempt `attempt` and this payload, for tests.
    pub(crate) fn dequeued(task: &str, attempt: u32, payload: Value) -> DequeuedRun {
        DequeuedRun {
            run_id: "run_1".into(),
            snapshot_id: "snapshot_1".into(),
            task_identifier: task.into(),
            attempt_number: attempt,
            max_attempts: 3,
            payload,
            payload_type: "application/json".into(),
            tags: vec!["a".into()],
            metadata: Some(json!({"k": 1})),
            queue: format!("task/{task}"),
            concurrency_key: None,
            max_duration: None,
            is_test: false,
            created_at: "2026-01-01T00:00:00Z".into(),
            journal: Vec::new(),
        }
    }

    #[test]
    fn context_takes_the_runs_fields() {
        let mut run = dequeued("hello", 2, json!({}));
        let context = detached(&mut run);
        assert_eq!((context.run_id(), context.task_id(), context.attempt()), ("run_1", "hello", 2));
        assert_eq!(context.tags(), ["a".to_string()]);
        assert_eq!(context.metadata().get("k"), Some(json!(1)));
        assert_eq!(context.queue(), "task/hello");
        assert!(!context.is_last_attempt());
        context.logger().info("logging needs no subscriber");
    }

    #[tokio::test]
    async fn a_context_without_a_client_says_why_it_cannot_trigger() {
        let context = detached(&mut dequeued("hello", 1, json!({})));
        let error = context.trigger("other", json!({}), TriggerOptions::new()).await.unwrap_err();
        assert_eq!(error.to_string(), "this context has no client");
    }
}
