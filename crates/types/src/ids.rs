//! Identifiers in Trigger.dev's style: a type prefix, an underscore and a body.
//!
//! Bodies are ULIDs in lower case, so ids sort by creation time, which keeps index inserts local
//! and lets lists page by id.
//! Ids are made from parts handed in (a millisecond timestamp and random bits), never from ambient
//! time or randomness, so engine code stays deterministic.

use std::fmt;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Defines an id newtype with a fixed prefix.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with, underscore included.
            pub const PREFIX: &'static str = $prefix;

            /// Makes an id from a creation time in ms since the epoch and 80 random bits.
            pub fn from_parts(millis: u64, random: u128) -> Self {
                let body = Ulid::from_parts(millis, random).to_string().to_ascii_lowercase();
                Self(format!("{}{}", Self::PREFIX, body))
            }

            /// Parses an id, checking its prefix and that the body is a ULID.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let body = text.strip_prefix(Self::PREFIX).ok_or_else(|| IdError {
                    text: text.to_string(),
                    expected: Self::PREFIX,
                })?;
                if body.len() != 26 || Ulid::from_string(&body.to_ascii_uppercase()).is_err() {
                    return Err(IdError { text: text.to_string(), expected: Self::PREFIX });
                }
                Ok(Self(text.to_ascii_lowercase()))
            }

            /// Wraps a string read back from the database without checking it.
            pub fn from_stored(text: String) -> Self {
                Self(text)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, IdError> {
                Self::parse(&text)
            }
        }
    };
}

id_type!(
    /// A run, `run_…`.
    RunId,
    "run_"
);
id_type!(
    /// An execution snapshot, `snapshot_…`; the fencing token of a run's current state.
    SnapshotId,
    "snapshot_"
);
id_type!(
    /// A registered worker process, `worker_…`.
    WorkerId,
    "worker_"
);
id_type!(
    /// An environment, `env_…`.
    EnvId,
    "env_"
);
id_type!(
    /// A project, `proj_…`.
    ProjectId,
    "proj_"
);
id_type!(
    /// An organization, `org_…`.
    OrgId,
    "org_"
);
id_type!(
    /// A queue, `queue_…`.
    QueueId,
    "queue_"
);
id_type!(
    /// A secret key of an environment, `key_…`; the key's text is never stored.
    KeyId,
    "key_"
);
id_type!(
    /// A personal access token of a project, `pat_…`; the token's text is never stored.
    TokenId,
    "pat_"
);
id_type!(
    /// A batch of runs triggered together, `batch_…`.
    BatchId,
    "batch_"
);

id_type!(
    /// A waitpoint, `waitpoint_…`: something a run can wait for (a time, a token, a run, a batch).
    WaitpointId,
    "waitpoint_"
);

id_type!(
    /// A schedule of a task, `sched_…`.
    ScheduleId,
    "sched_"
);

/// Text that is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError {
    /// The text that failed to parse.
    pub text: String,
    /// The prefix that was expected.
    pub expected: &'static str,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a valid id: expected '{}' followed by 26 characters", self.text, self.expected)
    }
}

impl std::error::Error for IdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let early = RunId::from_parts(1_000, 7);
        let late = RunId::from_parts(2_000, 3);
        assert!(early < late);
        assert_eq!(RunId::parse(early.as_str()).unwrap(), early);
        assert!(early.as_str().starts_with("run_"));
        assert_eq!(early.as_str().len(), 4 + 26);
    }

    #[test]
    fn parse_rejects_other_kinds_and_garbage() {
        let snapshot = SnapshotId::from_parts(1, 1);
        assert!(RunId::parse(snapshot.as_str()).is_err());
        assert!(RunId::parse("run_").is_err());
        assert!(RunId::parse("run_not-a-ulid-at-all-xxxxxxxx").is_err());
        let err = RunId::parse("abc").unwrap_err();
        assert!(err.to_string().contains("'run_'"));
    }

    #[test]
    fn parse_accepts_upper_case_bodies() {
        let id = RunId::from_parts(5, 5);
        let upper = format!("run_{}", &id.as_str()[4..].to_ascii_uppercase());
        assert_eq!(RunId::parse(&upper).unwrap(), id);
    }
}
