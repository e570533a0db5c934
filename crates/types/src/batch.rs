//! A batch's status, as Trigger.dev names it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a batch is: waiting for its items, sealed with runs still unfinished, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchStatus {
    /// Not every item has arrived yet: the batch is not sealed.
    Pending,
    /// Every item has arrived (the batch is sealed) and some of its runs have not finished.
    Processing,
    /// Sealed, and every one of its runs has finished.
    Completed,
}

impl BatchStatus {
    /// Every status, in the order of the enum.
    pub const ALL: [BatchStatus; 3] = [BatchStatus::Pending, BatchStatus::Processing, BatchStatus::Completed];

    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Pending => "PENDING",
            BatchStatus::Processing => "PROCESSING",
            BatchStatus::Completed => "COMPLETED",
        }
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BatchStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        BatchStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown batch status '{text}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_text() {
        for status in BatchStatus::ALL {
            assert_eq!(status.as_str().parse::<BatchStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
        }
        assert!("SEALED".parse::<BatchStatus>().is_err());
    }
}
