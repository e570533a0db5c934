//! [`Task`]: a task's identifier, options and code.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use stint_protocol::types::{ErrorCode, TaskRunError};
use stint_protocol::worker::{QueueDeclaration, RateLimit, ScheduleDeclaration, TaskDeclaration};

use crate::{Retry, TaskContext, TaskError};

/// A task a worker can run: an identifier, options, and an async function from a payload to an
/// output.
///
/// The payload is any `DeserializeOwned` type, decoded from the run's JSON payload; the output is
/// any `Serialize` type, sent back as JSON.
///
/// ```no_run
/// use serde::Deserialize;
/// use stint_sdk::{Task, TaskContext, TaskError};
///
/// #[derive(Deserialize)]
/// struct Hello {
///     name: String,
/// }
///
/// async fn hello(_ctx: TaskContext, payload: Hello) -> Result<String, TaskError> {
///     Ok(format!("Hello, {}!", payload.name))
/// }
///
/// let task = Task::new("hello-world", hello).queue("greetings", Some(5));
/// ```
pub struct Task {
    pub(crate) id: String,
    queue: Option<QueueDeclaration>,
    retry: Option<Retry>,
    pub(crate) max_duration: Option<Duration>,
    pub(crate) ttl: Option<Duration>,
    schedule: Option<ScheduleDeclaration>,
    pub(crate) handler: Arc<dyn Handler>,
}

impl Task {
    /// A task with this identifier running `run`, in its own queue `task/<id>` without a
    /// concurrency limit, with the default [`Retry`] settings and no maximum duration.
    pub fn new<F, Fut, P, O>(id: impl Into<String>, run: F) -> Task
    where
        F: Fn(TaskContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
        P: DeserializeOwned + 'static,
        O: Serialize + 'static,
    {
        Task {
            id: id.into(),
            queue: None,
            retry: None,
            max_duration: None,
            ttl: None,
            schedule: None,
            handler: Arc::new(FnHandler { run, types: PhantomData }),
        }
    }

    /// Runs the task in the named queue. With `Some(limit)`, at most `limit` runs of the queue
    /// execute at once across all workers, and runs triggered with a concurrency key get that
    /// limit for each key; tasks sharing a queue must agree on the limit.
    pub fn queue(mut self, name: impl Into<String>, concurrency_limit: Option<u32>) -> Task {
        let previous = self.queue.take();
        self.queue = Some(QueueDeclaration {
            name: name.into(),
            concurrency_limit,
            combined_concurrency_limit: previous.as_ref().and_then(|q| q.combined_concurrency_limit),
            rate_limit: previous.and_then(|q| q.rate_limit),
        });
        self
    }

    /// Caps the runs of all concurrency keys of the task's queue together at `limit`, on top
    /// of the queue's limit for each key. Applies to the task's own queue `task/<id>` unless
    /// [`Task::queue`] names another.
    pub fn combined_concurrency_limit(mut self, limit: u32) -> Task {
        let id = self.id.clone();
        let queue = self.queue.get_or_insert_with(|| QueueDeclaration {
            name: format!("task/{id}"),
            concurrency_limit: None,
            combined_concurrency_limit: None,
            rate_limit: None,
        });
        queue.combined_concurrency_limit = Some(limit);
        self
    }

    /// Starts at most `limit` runs of the task's queue per `period` (1 s to one day, counted in
    /// whole ms), across all workers; with `per_key`, for each concurrency key (and the runs
    /// without one) on its own. `limit` runs may start at once after a quiet period, then one every
    /// `period / limit`. Runs over the limit stay queued and start when it allows; a retry's
    /// attempt is a start too. Applies to the task's own queue `task/<id>` unless [`Task::queue`]
    /// names another; tasks sharing a queue must agree on it.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use stint_sdk::{Task, TaskContext, TaskError};
    /// # async fn call(_ctx: TaskContext, _payload: serde_json::Value) -> Result<(), TaskError> { Ok(()) }
    /// // 100 calls a minute for each customer (the concurrency key the runs are triggered with).
    /// let task = Task::new("call-api", call).rate_limit(100, Duration::from_secs(60), true);
    /// ```
    pub fn rate_limit(mut self, limit: u32, period: Duration, per_key: bool) -> Task {
        let id = self.id.clone();
        let queue = self.queue.get_or_insert_with(|| QueueDeclaration {
            name: format!("task/{id}"),
            concurrency_limit: None,
            combined_concurrency_limit: None,
            rate_limit: None,
        });
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        queue.rate_limit = Some(RateLimit { limit, period_ms, per_key });
        self
    }

    /// Retries failed attempts with these settings instead of the defaults.
    pub fn retry(mut self, retry: Retry) -> Task {
        self.retry = Some(retry);
        self
    }

    /// Stops an attempt that runs longer than this and ends the run `TIMED_OUT`. The server
    /// stores whole seconds, rounded up.
    pub fn max_duration(mut self, max_duration: Duration) -> Task {
        self.max_duration = Some(max_duration);
        self
    }

    /// Expires a run of the task that has not started this long after it was queued, unless its
    /// trigger sets a `ttl` of its own. The server stores whole seconds, rounded up.
    pub fn ttl(mut self, ttl: Duration) -> Task {
        self.ttl = Some(ttl);
        self
    }

    /// Triggers the task at each time of a cron expression read in UTC, in every environment the
    /// worker registers it in; the same as [`Task::schedule`] with `"UTC"` and no environments.
    ///
    /// ```no_run
    /// use stint_sdk::{SchedulePayload, Task, TaskContext, TaskError};
    ///
    /// async fn tick(_ctx: TaskContext, payload: SchedulePayload) -> Result<String, TaskError> {
    ///     Ok(format!("{} fired at {}", payload.schedule_id, payload.timestamp.to_rfc3339()))
    /// }
    ///
    /// // Every five minutes.
    /// let task = Task::new("tick", tick).cron("*/5 * * * *");
    /// ```
    pub fn cron(self, expression: impl Into<String>) -> Task {
        self.schedule(expression, "UTC", Vec::<String>::new())
    }

    /// Triggers the task at each time of a 5-field cron expression (minute, hour, day of month,
    /// month, day of week; `L` for the last day of the month, `1L` for its last Monday) read in
    /// the IANA `timezone`, daylight saving included, in the named `environments` (`dev`,
    /// `staging`, `prod`, `preview`), or in every environment the worker registers it in when
    /// none are named. This is Trigger.dev's declarative schedule: the server keeps one
    /// `DECLARATIVE` schedule of the task in step with the environment's current version, made,
    /// changed or removed as the code is, and not changeable through the API. Each run's payload is
    /// a [`SchedulePayload`](crate::SchedulePayload), which the task takes as its input type. A
    /// bad expression, time zone or environment fails the worker's registration with a message
    /// naming it.
    ///
    /// ```no_run
    /// use serde_json::{Value, json};
    /// use stint_sdk::{SchedulePayload, Task, TaskContext, TaskError};
    ///
    /// async fn report(_ctx: TaskContext, payload: SchedulePayload) -> Result<Value, TaskError> {
    ///     Ok(json!({"day": payload.timestamp.to_rfc3339()}))
    /// }
    ///
    /// // 03:00 in London, winter and summer, in production only.
    /// let task = Task::new("nightly-report", report).schedule("0 3 * * *", "Europe/London", ["prod"]);
    /// ```
    pub fn schedule<I, E>(mut self, expression: impl Into<String>, timezone: impl Into<String>, environments: I) -> Task
    where
        I: IntoIterator<Item = E>,
        E: Into<String>,
    {
        self.schedule = Some(ScheduleDeclaration {
            cron: expression.into(),
            timezone: Some(timezone.into()),
            environments: environments.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// The task's identifier.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The task as declared at registration.
    pub(crate) fn declaration(&self) -> TaskDeclaration {
        TaskDeclaration {
            id: self.id.clone(),
            queue: self.queue.clone(),
            retry: self.retry.map(Into::into),
            max_duration: self.max_duration.map(whole_seconds_up),
            ttl: self.ttl.map(whole_seconds_up),
            schedule: self.schedule.clone(),
        }
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("queue", &self.queue)
            .field("retry", &self.retry)
            .field("max_duration", &self.max_duration)
            .field("ttl", &self.ttl)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// Seconds, rounded up so the server never stops an attempt earlier than asked; at least 1.
fn whole_seconds_up(duration: Duration) -> u32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    u32::try_from(seconds.max(1)).unwrap_or(u32::MAX)
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The task returned this output.
    Success(Value),
    /// The attempt failed.
    Failure {
        /// The error.
        error: TaskRunError,
        /// Do not retry.
        skip_retrying: bool,
    },
}

impl Outcome {
    /// A failure with an internal code.
    pub(crate) fn internal(code: ErrorCode, message: impl Into<String>, skip_retrying: bool) -> Outcome {
        Outcome::Failure { error: TaskRunError::internal(code, message), skip_retrying }
    }
}

/// A boxed attempt future.
pub(crate) type AttemptFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A task's code with its payload and output types erased.
pub(crate) trait Handler: Send + Sync {
    /// Decodes the payload and starts the task. A payload that does not decode yields a ready
    /// `TASK_INPUT_ERROR` failure without calling the task.
    fn call(&self, context: TaskContext, payload: Value) -> AttemptFuture;
}

struct FnHandler<F, P, O> {
    run: F,
    /// `fn` pointers keep the handler `Send + Sync` whatever `P` and `O` are.
    types: PhantomData<fn(P) -> O>,
}

impl<F, Fut, P, O> Handler for FnHandler<F, P, O>
where
    F: Fn(TaskContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
    P: DeserializeOwned + 'static,
    O: Serialize + 'static,
{
    fn call(&self, context: TaskContext, payload: Value) -> AttemptFuture {
        let input = match serde_json::from_value::<P>(payload) {
            Ok(input) => input,
            Err(error) => {
                let message = format!("the payload does not match the task's input type: {error}");
                return Box::pin(std::future::ready(Outcome::internal(ErrorCode::TaskInputError, message, true)));
            }
        };
        let durable = context.clone();
        let running = (self.run)(context, input);
        Box::pin(async move {
            let result = running.await;
            // A misuse of durable calls fails the attempt even when the task went on after it.
            if let Some(error) = durable.durable_failure() {
                let (error, skip_retrying) = error.into_wire();
                return Outcome::Failure { error, skip_retrying };
            }
            match result {
                Ok(output) => match serde_json::to_value(&output) {
                    Ok(value) => Outcome::Success(value),
                    Err(error) => Outcome::internal(
                        ErrorCode::TaskOutputError,
                        format!("the task's output could not be encoded as JSON: {error}"),
                        false,
                    ),
                },
                Err(error) => {
                    let (error, skip_retrying) = error.into_wire();
                    Outcome::Failure { error, skip_retrying }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::dequeued;
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    struct Hello {
        name: String,
    }

    async fn hello(ctx: TaskContext, payload: Hello) -> Result<Value, TaskError> {
        if payload.name.is_empty() {
            return Err(TaskError::fatal("name is empty").with_name("ValidationError"));
        }
        Ok(json!({"message": format!("Hello, {}!", payload.name), "attempt": ctx.attempt()}))
    }

    async fn call(task: &Task, payload: Value) -> Outcome {
        let mut run = dequeued(&task.id, 1, Value::Null);
        task.handler.call(crate::context::tests::detached(&mut run), payload).await
    }

    #[tokio::test]
    async fn payload_output_and_errors_are_translated() {
        let task = Task::new("hello", hello);
        assert_eq!(
            call(&task, json!({"name": "Ada"})).await,
            Outcome::Success(json!({"message": "Hello, Ada!", "attempt": 1}))
        );
        let Outcome::Failure { error, skip_retrying } = call(&task, json!({"name": ""})).await else { panic!() };
        assert!(skip_retrying);
        assert_eq!(
            error,
            TaskRunError::BuiltInError {
                name: "ValidationError".into(),
                message: "name is empty".into(),
                stack_trace: String::new()
            }
        );
    }

    #[tokio::test]
    async fn undecodable_payload_is_an_input_error_not_retried() {
        let task = Task::new("hello", hello);
        let Outcome::Failure { error, skip_retrying } = call(&task, json!({"nom": 1})).await else { panic!() };
        assert!(skip_retrying);
        assert_eq!(error.code(), Some(ErrorCode::TaskInputError));
    }

    #[tokio::test]
    async fn unencodable_output_is_an_output_error() {
        // JSON object keys must be strings, so a map keyed by tuples cannot be encoded.
        let task =
            Task::new("bad-output", |_ctx, (): ()| async { Ok::<_, TaskError>(BTreeMap::from([((1, 2), "x")])) });
        let Outcome::Failure { error, .. } = call(&task, Value::Null).await else { panic!() };
        assert_eq!(error.code(), Some(ErrorCode::TaskOutputError));
    }

    #[test]
    fn declaration_carries_the_options() {
        let task = Task::new("flaky", hello)
            .queue("flaky-queue", Some(2))
            .retry(Retry { max_attempts: 5, ..Retry::default() })
            .max_duration(Duration::from_millis(1_500));
        let declaration = serde_json::to_value(task.declaration()).unwrap();
        assert_eq!(declaration["queue"], json!({"name": "flaky-queue", "concurrencyLimit": 2}));
        assert_eq!(declaration["retry"]["maxAttempts"], 5);
        assert_eq!(declaration["maxDuration"], 2);
        let plain = serde_json::to_value(Task::new("hello", hello).declaration()).unwrap();
        assert_eq!(plain, json!({"id": "hello"}));
    }

    #[tokio::test]
    async fn a_scheduled_task_takes_the_schedule_payload() {
        let task = Task::new("tick", |_ctx, payload: crate::SchedulePayload| async move {
            Ok::<_, TaskError>(json!({"id": payload.schedule_id, "at": payload.timestamp.to_rfc3339()}))
        });
        let fired = json!({
            "scheduleId": "sched_1", "type": "IMPERATIVE", "timestamp": "2026-12-01T03:00:00.000Z",
            "lastTimestamp": "2026-11-30T03:00:00.000Z", "timezone": "Europe/London",
            "upcoming": ["2026-12-02T03:00:00.000Z"],
        });
        assert_eq!(
            call(&task, fired).await,
            Outcome::Success(json!({"id": "sched_1", "at": "2026-12-01T03:00:00.000Z"}))
        );
    }

    #[test]
    fn a_schedule_is_declared_with_the_task() {
        let every_minute = Task::new("tick", hello).cron("* * * * *");
        assert_eq!(
            serde_json::to_value(every_minute.declaration()).unwrap()["schedule"],
            json!({"cron": "* * * * *", "timezone": "UTC"})
        );
        let nightly = Task::new("nightly", hello).schedule("0 3 * * *", "Europe/London", ["prod", "staging"]);
        assert_eq!(
            serde_json::to_value(nightly.declaration()).unwrap()["schedule"],
            json!({"cron": "0 3 * * *", "timezone": "Europe/London", "environments": ["prod", "staging"]})
        );
    }

    #[test]
    fn a_rate_limit_is_declared_on_the_tasks_queue() {
        let own = Task::new("call", hello).rate_limit(100, Duration::from_secs(60), true);
        assert_eq!(
            serde_json::to_value(own.declaration()).unwrap()["queue"],
            json!({"name": "task/call", "rateLimit": {"limit": 100, "periodMs": 60_000, "perKey": true}})
        );
        let named = Task::new("call", hello).rate_limit(3, Duration::from_secs(10), false).queue("api", Some(4));
        assert_eq!(
            serde_json::to_value(named.declaration()).unwrap()["queue"],
            json!({"name": "api", "concurrencyLimit": 4, "rateLimit": {"limit": 3, "periodMs": 10_000, "perKey": false}}),
            "naming the queue afterwards keeps the rate limit"
        );
    }
}
