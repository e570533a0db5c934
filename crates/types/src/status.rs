//! The two vocabularies of a run's state, as in Trigger.dev: the public status users see and the
//! internal execution status of each snapshot.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A run's public status, as the API and the dashboard show it (Trigger.dev's `RunStatus` with API
/// version `2025-07-16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Waiting for its delay to pass.
    Delayed,
    /// Waiting for a worker version that has its task.
    PendingVersion,
    /// In the queue, waiting for a worker.
    Queued,
    /// Taken by a worker that has not started the attempt yet.
    Dequeued,
    /// An attempt is running.
    Executing,
    /// Suspended on a waitpoint.
    Waiting,
    /// Finished successfully.
    Completed,
    /// Cancelled by a user.
    Canceled,
    /// Finished with an error from the task, after its last attempt.
    Failed,
    /// The task's process crashed and the run will not be retried.
    Crashed,
    /// Failed because of an error in the system rather than the task.
    SystemFailure,
    /// Its time to live ran out before it started.
    Expired,
    /// An attempt ran longer than its maximum duration.
    TimedOut,
}

impl RunStatus {
    /// Every status, in the order of the enum.
    pub const ALL: [RunStatus; 13] = [
        RunStatus::Delayed,
        RunStatus::PendingVersion,
        RunStatus::Queued,
        RunStatus::Dequeued,
        RunStatus::Executing,
        RunStatus::Waiting,
        RunStatus::Completed,
        RunStatus::Canceled,
        RunStatus::Failed,
        RunStatus::Crashed,
        RunStatus::SystemFailure,
        RunStatus::Expired,
        RunStatus::TimedOut,
    ];

    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Delayed => "DELAYED",
            RunStatus::PendingVersion => "PENDING_VERSION",
            RunStatus::Queued => "QUEUED",
            RunStatus::Dequeued => "DEQUEUED",
            RunStatus::Executing => "EXECUTING",
            RunStatus::Waiting => "WAITING",
            RunStatus::Completed => "COMPLETED",
            RunStatus::Canceled => "CANCELED",
            RunStatus::Failed => "FAILED",
            RunStatus::Crashed => "CRASHED",
            RunStatus::SystemFailure => "SYSTEM_FAILURE",
            RunStatus::Expired => "EXPIRED",
            RunStatus::TimedOut => "TIMED_OUT",
        }
    }

    /// True for the statuses a run never leaves.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Completed
                | RunStatus::Canceled
                | RunStatus::Failed
                | RunStatus::Crashed
                | RunStatus::SystemFailure
                | RunStatus::Expired
                | RunStatus::TimedOut
        )
    }

    /// Trigger.dev's `isQueued` helper.
    pub fn is_queued(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Delayed | RunStatus::PendingVersion)
    }

    /// Trigger.dev's `isExecuting` helper.
    pub fn is_executing(self) -> bool {
        matches!(self, RunStatus::Executing | RunStatus::Dequeued)
    }

    /// Trigger.dev's `isWaiting` helper.
    pub fn is_waiting(self) -> bool {
        self == RunStatus::Waiting
    }

    /// Trigger.dev's `isCompleted` helper: finished in any way but by expiry or timeout, which the
    /// reference implementation leaves out of the list.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            RunStatus::Completed
                | RunStatus::Canceled
                | RunStatus::Failed
                | RunStatus::Crashed
                | RunStatus::SystemFailure
        )
    }

    /// Trigger.dev's `isSuccess` helper.
    pub fn is_success(self) -> bool {
        self == RunStatus::Completed
    }

    /// Trigger.dev's `isFailed` helper: completed, but not successfully.
    pub fn is_failed(self) -> bool {
        self.is_completed() && self != RunStatus::Completed
    }

    /// Trigger.dev's `isCancelled` helper.
    pub fn is_cancelled(self) -> bool {
        self == RunStatus::Canceled
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| format!("unknown run status '{text}'"))
    }
}

/// The execution status of a snapshot: the engine's internal view of where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Created but not queued (parked on a version).
    RunCreated,
    /// Waiting for its delay.
    Delayed,
    /// In the queue.
    Queued,
    /// Taken by a worker; the attempt has not started.
    PendingExecuting,
    /// An attempt is running.
    Executing,
    /// An attempt is running and waits on waitpoints.
    ExecutingWithWaitpoints,
    /// The process stopped while the run waits on waitpoints.
    Suspended,
    /// Cancel requested; the worker has not confirmed yet.
    PendingCancel,
    /// The run has ended.
    Finished,
}

impl ExecutionStatus {
    /// Every status, in the order of the enum.
    pub const ALL: [ExecutionStatus; 9] = [
        ExecutionStatus::RunCreated,
        ExecutionStatus::Delayed,
        ExecutionStatus::Queued,
        ExecutionStatus::PendingExecuting,
        ExecutionStatus::Executing,
        ExecutionStatus::ExecutingWithWaitpoints,
        ExecutionStatus::Suspended,
        ExecutionStatus::PendingCancel,
        ExecutionStatus::Finished,
    ];

    /// The status as stored and sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::RunCreated => "RUN_CREATED",
            ExecutionStatus::Delayed => "DELAYED",
            ExecutionStatus::Queued => "QUEUED",
            ExecutionStatus::PendingExecuting => "PENDING_EXECUTING",
            ExecutionStatus::Executing => "EXECUTING",
            ExecutionStatus::ExecutingWithWaitpoints => "EXECUTING_WITH_WAITPOINTS",
            ExecutionStatus::Suspended => "SUSPENDED",
            ExecutionStatus::PendingCancel => "PENDING_CANCEL",
            ExecutionStatus::Finished => "FINISHED",
        }
    }

    /// True while a worker holds the run, which is exactly when it holds a concurrency slot.
    pub fn holds_slot(self) -> bool {
        matches!(
            self,
            ExecutionStatus::PendingExecuting
                | ExecutionStatus::Executing
                | ExecutionStatus::ExecutingWithWaitpoints
                | ExecutionStatus::PendingCancel
        )
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        ExecutionStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown execution status '{text}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        for status in ExecutionStatus::ALL {
            assert_eq!(status.as_str().parse::<ExecutionStatus>().unwrap(), status);
        }
    }

    #[test]
    fn helpers_match_trigger_dev() {
        assert!(RunStatus::Failed.is_failed());
        assert!(!RunStatus::Completed.is_failed());
        assert!(RunStatus::Canceled.is_failed() && RunStatus::Canceled.is_cancelled());
        assert!(RunStatus::Expired.is_final() && !RunStatus::Expired.is_completed());
        assert!(RunStatus::Dequeued.is_executing());
    }
}
