//! What durable calls give back: the results of waits on tokens and child runs, and why a call
//! did not give its result.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;
use stint_protocol::durable;
use stint_protocol::types::{RunStatus, TaskRunError};

use crate::TaskError;

/// Why a durable call ([`TaskContext::step`](crate::TaskContext::step), the waits, the triggers
/// that wait) did not give its result.
///
/// `?` turns it into the [`TaskError`] it stands for, so a task returning
/// `Result<_, TaskError>` can use `?` on every durable call. For that conversion to keep each
/// error's name and retry rule, `DurableError` does not implement `std::error::Error`, as
/// [`TaskError`] does not. The conversion keeps a step's own error as it was; the others become
/// errors named as listed on each variant. Errors that another attempt would meet again (the
/// task is not deterministic, a recorded result of another type) end the run without retries.
#[derive(Debug)]
#[non_exhaustive]
pub enum DurableError {
    /// The step's own code failed. Nothing was recorded, so another attempt runs the step again.
    Step(TaskError),
    /// The task did not make the durable call the run's journal recorded at this position: its
    /// durable calls are not deterministic. The message says the position, what was recorded and
    /// what was called. The attempt fails with `NonDeterminismError`, without retries, whatever
    /// the task does with this error.
    NonDeterminism(String),
    /// A durable call was made while another of the same run was in flight (calls joined or
    /// spawned side by side, or a durable call inside a step), or a call was abandoned before it
    /// finished (its future dropped by a `select!` or a timeout). Positions in the journal would
    /// then depend on timing. The attempt fails with `ConcurrentDurableCallError`, without
    /// retries, whatever the task does with this error.
    ConcurrentCall(String),
    /// A recorded result cannot be read as the type asked for (a step's output type changed, a
    /// token completed with other data). Becomes `DurableDecodeError`, not retried: a replay
    /// reads the same result.
    Decode(String),
    /// The call cannot be made as asked: a step output or a payload that cannot be encoded as
    /// JSON, trigger options the SDK cannot send. Becomes `InvalidDurableCallError`, not retried.
    Invalid(String),
    /// The server refused the call: an unknown token (404), trigger options it does not accept
    /// (422), a wait that would make runs wait on each other for ever (422, the message contains
    /// `RECURSIVE_WAIT_DEADLOCK`). Nothing was recorded. Becomes `DurableCallRejectedError`,
    /// retried according to the task's settings.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// The call could not reach the server: the worker is stopping, or the context belongs to no
    /// worker. Becomes `DurableCallUnavailableError`, retried according to the task's settings.
    Unavailable(String),
    /// The server's answer does not follow the worker protocol. Becomes `DurableProtocolError`,
    /// retried according to the task's settings.
    UnexpectedAnswer(String),
}

impl DurableError {
    /// The name of the [`TaskError`] this error becomes, and whether that error ends the run
    /// without retries; `None` for a step's own error, which stays as it is.
    fn wire_name(&self) -> Option<(&'static str, bool)> {
        Some(match self {
            DurableError::Step(_) => return None,
            DurableError::NonDeterminism(_) => ("NonDeterminismError", true),
            DurableError::ConcurrentCall(_) => ("ConcurrentDurableCallError", true),
            DurableError::Decode(_) => ("DurableDecodeError", true),
            DurableError::Invalid(_) => ("InvalidDurableCallError", true),
            DurableError::Rejected { .. } => ("DurableCallRejectedError", false),
            DurableError::Unavailable(_) => ("DurableCallUnavailableError", false),
            DurableError::UnexpectedAnswer(_) => ("DurableProtocolError", false),
        })
    }
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurableError::Step(error) => write!(f, "{error}"),
            DurableError::NonDeterminism(message)
            | DurableError::ConcurrentCall(message)
            | DurableError::Decode(message)
            | DurableError::Invalid(message)
            | DurableError::Unavailable(message)
            | DurableError::UnexpectedAnswer(message) => f.write_str(message),
            DurableError::Rejected { status, message } => {
                write!(f, "the server refused the call with status {status}: {message}")
            }
        }
    }
}

impl From<DurableError> for TaskError {
    fn from(error: DurableError) -> TaskError {
        let Some((name, fatal)) = error.wire_name() else {
            let DurableError::Step(error) = error else { unreachable!("only a step's error has no name of its own") };
            return error;
        };
        let error = TaskError::new(error.to_string()).with_name(name);
        if fatal { error.do_not_retry() } else { error }
    }
}

/// A token that timed out before anyone completed it: what
/// [`TaskContext::wait_for_token`](crate::TaskContext::wait_for_token) gives instead of the
/// token's data. `?` turns it into a [`TaskError`] named `TokenTimeout`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("token {token_id} timed out: {message}")]
pub struct TokenTimeout {
    /// The token's id, `waitpoint_…`.
    pub token_id: String,
    /// The server's explanation (`Waitpoint timed out at …`).
    pub message: String,
    /// The error the token was completed with, as recorded:
    /// `{"code": "TRIGGER_WAITPOINT_TIMEOUT", "message": …}`.
    pub error: Value,
}

impl TokenTimeout {
    /// The timeout a token's recorded error output describes.
    pub(crate) fn new(token_id: &str, error: Value) -> TokenTimeout {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("the token timed out").to_string();
        TokenTimeout { token_id: token_id.to_string(), message, error }
    }
}

/// How a child run ended, as [`TaskContext::trigger_and_wait`](crate::TaskContext::trigger_and_wait)
/// and [`TaskContext::batch_trigger_and_wait`](crate::TaskContext::batch_trigger_and_wait) give
/// it. A child that failed is a result too, not an error of the call: read its
/// [`output`](RunResult::output) to treat it as one.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The child run's id (`run_…`).
    pub id: String,
    /// The task it ran.
    pub task_identifier: String,
    /// Its final status.
    pub status: RunStatus,
    /// Its output (JSON) when it succeeded, else its error.
    pub result: Result<Value, TaskRunError>,
}

impl RunResult {
    /// Whether the child run succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The child's output as `T`; an error when the child failed or its output is not a `T`.
    ///
    /// ```no_run
    /// # async fn parent(ctx: stint_sdk::TaskContext) -> Result<u64, stint_sdk::TaskError> {
    /// use stint_sdk::TriggerOptions;
    ///
    /// let child = ctx.trigger_and_wait("count-rows", serde_json::json!({"table": "users"}), TriggerOptions::new()).await?;
    /// let rows: u64 = child.output()?;
    /// # Ok(rows)
    /// # }
    /// ```
    pub fn output<T: DeserializeOwned>(&self) -> Result<T, ChildRunError> {
        match &self.result {
            Ok(output) => T::deserialize(output)
                .map_err(|error| ChildRunError::Output { id: self.id.clone(), reason: error.to_string() }),
            Err(error) => {
                Err(ChildRunError::Failed { id: self.id.clone(), status: self.status, error: Box::new(error.clone()) })
            }
        }
    }
}

impl From<durable::RunResult> for RunResult {
    fn from(run: durable::RunResult) -> RunResult {
        let result = match (run.ok, run.error) {
            (true, _) => Ok(run.output.unwrap_or(Value::Null)),
            (false, Some(error)) => Err(error),
            (false, None) => Err(TaskRunError::StringError {
                raw: format!("the run ended {} without an error", run.status.as_str()),
            }),
        };
        RunResult { id: run.id, task_identifier: run.task_identifier, status: run.status, result }
    }
}

/// Why a child run's output could not be had. `?` turns it into a [`TaskError`] named
/// `ChildRunError`, retried according to the task's settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChildRunError {
    /// The child run failed.
    #[error("child run {id} ended {}: {}", status.as_str(), error.to_serialized().message)]
    Failed {
        /// The child run's id.
        id: String,
        /// Its final status.
        status: RunStatus,
        /// Its error.
        error: Box<TaskRunError>,
    },
    /// The child run succeeded, but its output is not of the type asked for.
    #[error("the output of child run {id} is not of the type asked for: {reason}")]
    Output {
        /// The child run's id.
        id: String,
        /// What does not match.
        reason: String,
    },
}

/// How a batch of child runs ended, as
/// [`TaskContext::batch_trigger_and_wait`](crate::TaskContext::batch_trigger_and_wait) gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    /// The batch's id (`batch_…`).
    pub id: String,
    /// One result per item, in item order, failures included.
    pub runs: Vec<RunResult>,
}

impl From<durable::BatchResult> for BatchResult {
    fn from(batch: durable::BatchResult) -> BatchResult {
        BatchResult { id: batch.id, runs: batch.runs.into_iter().map(RunResult::from).collect() }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_error_becomes_a_task_error_with_its_name_and_retry_rule() {
        let step = TaskError::fatal("card declined").with_name("PaymentError");
        let kept = TaskError::from(DurableError::Step(step));
        assert_eq!((kept.name(), kept.message(), kept.is_fatal()), ("PaymentError", "card declined", true));
        let mismatch = TaskError::from(DurableError::NonDeterminism("at position 2 …".into()));
        assert_eq!(
            (mismatch.name(), mismatch.message(), mismatch.is_fatal()),
            ("NonDeterminismError", "at position 2 …", true)
        );
        let refused = TaskError::from(DurableError::Rejected { status: 404, message: "no such token".into() });
        assert_eq!(refused.name(), "DurableCallRejectedError");
        assert!(refused.message().contains("404") && refused.message().contains("no such token"));
        assert!(!refused.is_fatal());
    }

    #[test]
    fn a_child_result_gives_its_output_or_why_not() {
        let ok = RunResult::from(durable::RunResult {
            id: "run_c".into(),
            task_identifier: "child".into(),
            ok: true,
            status: RunStatus::Completed,
            output: Some(json!({"n": 3})),
            error: None,
        });
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Out {
            n: u32,
        }
        assert_eq!(ok.output::<Out>(), Ok(Out { n: 3 }));
        assert!(matches!(ok.output::<String>(), Err(ChildRunError::Output { .. })));
        let failed = RunResult::from(durable::RunResult {
            id: "run_d".into(),
            task_identifier: "child".into(),
            ok: false,
            status: RunStatus::Failed,
            output: None,
            error: Some(TaskRunError::StringError { raw: "boom".into() }),
        });
        assert!(!failed.is_ok());
        let error = failed.output::<Out>().unwrap_err();
        assert_eq!(error.to_string(), "child run run_d ended FAILED: boom");
        assert_eq!(TaskError::from(error).name(), "ChildRunError");
    }

    #[test]
    fn a_timeout_keeps_the_servers_explanation() {
        let timeout = TokenTimeout::new(
            "waitpoint_t",
            json!({"code": "TRIGGER_WAITPOINT_TIMEOUT", "message": "Waitpoint timed out at 2026-01-01T00:00:00.000Z"}),
        );
        assert_eq!(timeout.to_string(), "token waitpoint_t timed out: Waitpoint timed out at 2026-01-01T00:00:00.000Z");
        assert_eq!(TaskError::from(timeout).name(), "TokenTimeout");
    }
}
