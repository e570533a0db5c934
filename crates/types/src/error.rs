//! Errors of task runs: what a failed attempt reports, whether it is retried, and which final
//! status it leads to. Shapes and rules are Trigger.dev's (`TaskRunError`, `shouldRetryError`,
//! `runStatusFromError`).

use serde::{Deserialize, Serialize};

use crate::env::EnvironmentType;
use crate::status::RunStatus;

/// The error of a failed attempt, in Trigger.dev's wire shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskRunError {
    /// An error value the task returned or threw.
    #[serde(rename_all = "camelCase")]
    BuiltInError {
        /// The error's type name.
        name: String,
        /// What went wrong.
        message: String,
        /// Where, as text.
        #[serde(default)]
        stack_trace: String,
    },
    /// A thrown value that is not an error, serialised as JSON text.
    CustomError {
        /// The JSON text.
        raw: String,
    },
    /// A thrown string.
    StringError {
        /// The string.
        raw: String,
    },
    /// An error raised by the platform rather than by task code.
    #[serde(rename_all = "camelCase")]
    InternalError {
        /// The stable code.
        code: ErrorCode,
        /// Details.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Where, as text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stack_trace: Option<String>,
    },
}

/// The error as the public API shows it on a run: `{message, name?, stackTrace?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SerializedError {
    /// What went wrong.
    pub message: String,
    /// The error's type name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

impl TaskRunError {
    /// An internal error with a message.
    pub fn internal(code: ErrorCode, message: impl Into<String>) -> TaskRunError {
        TaskRunError::InternalError { code, message: Some(message.into()), stack_trace: None }
    }

    /// The internal code, if this is an internal error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            TaskRunError::InternalError { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether another attempt may fix this error (Trigger.dev's `shouldRetryError`).
    pub fn is_retryable(&self) -> bool {
        match self {
            TaskRunError::InternalError { code, .. } => code.is_retryable(),
            _ => true,
        }
    }

    /// The final status of a run that ends with this error (Trigger.dev's `runStatusFromError`).
    pub fn final_status(&self, environment: EnvironmentType) -> RunStatus {
        match self {
            TaskRunError::InternalError { code, .. } => code.final_status(environment),
            _ => RunStatus::Failed,
        }
    }

    /// The error as the public API shows it.
    pub fn to_serialized(&self) -> SerializedError {
        match self {
            TaskRunError::BuiltInError { name, message, stack_trace } => SerializedError {
                message: message.clone(),
                name: Some(name.clone()),
                stack_trace: (!stack_trace.is_empty()).then(|| stack_trace.clone()),
            },
            TaskRunError::CustomError { raw } | TaskRunError::StringError { raw } => {
                SerializedError { message: raw.clone(), name: None, stack_trace: None }
            }
            TaskRunError::InternalError { code, message, stack_trace } => SerializedError {
                message: message.clone().unwrap_or_else(|| format!("internal error ({})", code.as_str())),
                name: Some(code.as_str().to_string()),
                stack_trace: stack_trace.clone(),
            },
        }
    }
}

/// Stable codes of platform errors. The subset of Trigger.dev's codes that Stint raises or accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The worker has no task with the run's identifier.
    CouldNotFindTask,
    /// The run was cancelled while an attempt ran.
    TaskRunCancelled,
    /// The attempt ran longer than the task's maximum duration.
    MaxDurationExceeded,
    /// No heartbeat arrived from an executing attempt within the timeout.
    TaskRunStalledExecuting,
    /// No heartbeat arrived from an attempt waiting on waitpoints within the timeout.
    TaskRunStalledExecutingWithWaitpoints,
    /// A dequeued run was never started, too many times.
    TaskRunDequeuedMaxRetries,
    /// The payload could not be decoded into the task's input type.
    TaskInputError,
    /// The task's output could not be encoded.
    TaskOutputError,
    /// The task panicked or threw outside its own error handling.
    TaskRunUncaughtException,
    /// The task's process crashed.
    TaskRunCrashed,
    /// The task's process exited with a non-zero code.
    TaskProcessExitedWithNonZeroCode,
    /// The task's process was killed for using too much memory.
    TaskProcessOomKilled,
    /// The task's process received SIGTERM.
    TaskProcessSigterm,
    /// The worker shut down before the attempt could finish.
    GracefulExitTimeout,
}

impl ErrorCode {
    /// The code as text.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::CouldNotFindTask => "COULD_NOT_FIND_TASK",
            ErrorCode::TaskRunCancelled => "TASK_RUN_CANCELLED",
            ErrorCode::MaxDurationExceeded => "MAX_DURATION_EXCEEDED",
            ErrorCode::TaskRunStalledExecuting => "TASK_RUN_STALLED_EXECUTING",
            ErrorCode::TaskRunStalledExecutingWithWaitpoints => "TASK_RUN_STALLED_EXECUTING_WITH_WAITPOINTS",
            ErrorCode::TaskRunDequeuedMaxRetries => "TASK_RUN_DEQUEUED_MAX_RETRIES",
            ErrorCode::TaskInputError => "TASK_INPUT_ERROR",
            ErrorCode::TaskOutputError => "TASK_OUTPUT_ERROR",
            ErrorCode::TaskRunUncaughtException => "TASK_RUN_UNCAUGHT_EXCEPTION",
            ErrorCode::TaskRunCrashed => "TASK_RUN_CRASHED",
            ErrorCode::TaskProcessExitedWithNonZeroCode => "TASK_PROCESS_EXITED_WITH_NON_ZERO_CODE",
            ErrorCode::TaskProcessOomKilled => "TASK_PROCESS_OOM_KILLED",
            ErrorCode::TaskProcessSigterm => "TASK_PROCESS_SIGTERM",
            ErrorCode::GracefulExitTimeout => "GRACEFUL_EXIT_TIMEOUT",
        }
    }

    /// Whether another attempt may fix an error with this code.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            ErrorCode::CouldNotFindTask
                | ErrorCode::TaskRunCancelled
                | ErrorCode::MaxDurationExceeded
                | ErrorCode::TaskRunDequeuedMaxRetries
                | ErrorCode::TaskProcessOomKilled
        )
    }

    /// The final status of a run that ends with this code.
    pub fn final_status(self, environment: EnvironmentType) -> RunStatus {
        match self {
            ErrorCode::TaskRunCancelled => RunStatus::Canceled,
            ErrorCode::MaxDurationExceeded => RunStatus::TimedOut,
            ErrorCode::TaskRunStalledExecuting | ErrorCode::TaskRunStalledExecutingWithWaitpoints => {
                if environment == EnvironmentType::Development { RunStatus::Canceled } else { RunStatus::Failed }
            }
            ErrorCode::TaskInputError | ErrorCode::TaskOutputError | ErrorCode::TaskRunUncaughtException => {
                RunStatus::Failed
            }
            ErrorCode::TaskRunCrashed
            | ErrorCode::TaskProcessExitedWithNonZeroCode
            | ErrorCode::TaskProcessOomKilled => RunStatus::Crashed,
            ErrorCode::CouldNotFindTask
            | ErrorCode::TaskRunDequeuedMaxRetries
            | ErrorCode::TaskProcessSigterm
            | ErrorCode::GracefulExitTimeout => RunStatus::SystemFailure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_trigger_devs() {
        let error =
            TaskRunError::BuiltInError { name: "Error".into(), message: "boom".into(), stack_trace: "at f".into() };
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "BUILT_IN_ERROR", "name": "Error", "message": "boom", "stackTrace": "at f"})
        );
        let internal: TaskRunError =
            serde_json::from_value(serde_json::json!({"type": "INTERNAL_ERROR", "code": "TASK_RUN_CANCELLED"}))
                .unwrap();
        assert_eq!(internal.code(), Some(ErrorCode::TaskRunCancelled));
    }

    #[test]
    fn status_and_retry_rules() {
        let stalled = TaskRunError::internal(ErrorCode::TaskRunStalledExecuting, "no heartbeat");
        assert!(stalled.is_retryable());
        assert_eq!(stalled.final_status(EnvironmentType::Production), RunStatus::Failed);
        assert_eq!(stalled.final_status(EnvironmentType::Development), RunStatus::Canceled);
        let timeout = TaskRunError::internal(ErrorCode::MaxDurationExceeded, "too long");
        assert!(!timeout.is_retryable());
        assert_eq!(timeout.final_status(EnvironmentType::Production), RunStatus::TimedOut);
        let user = TaskRunError::StringError { raw: "nope".into() };
        assert!(user.is_retryable());
        assert_eq!(user.to_serialized().message, "nope");
    }
}
