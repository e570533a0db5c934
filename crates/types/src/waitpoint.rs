//! Waitpoints, as Trigger.dev models them, and the kinds of entry in a run's journal.
//!
//! A waitpoint is something a run can wait for: a time (`DATETIME`), a token completed through
//! the API (`MANUAL`), another run finishing (`RUN`) or a batch finishing (`BATCH`). A run blocked
//! on waitpoints resumes once all of them are completed.
//!
//! A run's journal records its durable calls in call order, so that a task run again from the top
//! after a suspension gets the recorded results instead of doing the work twice.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What completes a waitpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaitpointKind {
    /// A point in time: completed when it passes.
    Datetime,
    /// A token: completed through the API, or with an error when its timeout passes.
    Manual,
    /// A run: completed with its output or error when it finishes.
    Run,
    /// A batch: completed when it is sealed and all its runs have finished.
    Batch,
}

/// Whether a waitpoint is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaitpointStatus {
    /// Not completed yet: runs waiting on it stay blocked.
    Pending,
    /// Completed; completing it again changes nothing.
    Completed,
}

/// The kind of one durable call recorded in a run's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JournalKind {
    /// `ctx.step(name, …)`: its output, recorded once the step succeeded.
    Step,
    /// `ctx.wait_for` / `ctx.wait_until`: a `DATETIME` waitpoint.
    Wait,
    /// `ctx.wait_for_token`: a `MANUAL` waitpoint made through the API.
    Token,
    /// `trigger_and_wait`: a child run and its `RUN` waitpoint.
    Run,
    /// `batch_trigger_and_wait`: a batch of child runs and its `BATCH` waitpoint.
    Batch,
}

/// The error code a `MANUAL` waitpoint is completed with when its timeout passes.
pub const WAITPOINT_TIMEOUT_CODE: &str = "TRIGGER_WAITPOINT_TIMEOUT";

/// Text enums: every value, its spelling, `Display` and `FromStr`.
macro_rules! text_enum {
    ($name:ident, $what:literal, [$($variant:ident => $text:literal),+ $(,)?]) => {
        impl $name {
            /// Every value, in the order of the enum.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored and sent over the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " '{}'"), text))
            }
        }
    };
}

text_enum!(WaitpointKind, "waitpoint type", [Datetime => "DATETIME", Manual => "MANUAL", Run => "RUN", Batch => "BATCH"]);
text_enum!(WaitpointStatus, "waitpoint status", [Pending => "PENDING", Completed => "COMPLETED"]);
text_enum!(JournalKind, "journal entry kind", [Step => "STEP", Wait => "WAIT", Token => "TOKEN", Run => "RUN", Batch => "BATCH"]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_their_text() {
        for kind in WaitpointKind::ALL {
            assert_eq!(kind.as_str().parse::<WaitpointKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
        for status in WaitpointStatus::ALL {
            assert_eq!(status.as_str().parse::<WaitpointStatus>(), Ok(*status));
        }
        for kind in JournalKind::ALL {
            assert_eq!(kind.as_str().parse::<JournalKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
        assert_eq!("NOPE".parse::<WaitpointKind>().unwrap_err(), "unknown waitpoint type 'NOPE'");
    }
}
