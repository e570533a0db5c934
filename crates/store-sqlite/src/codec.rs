//! Conversions between store values and SQLite columns.

use rusqlite::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stint_store::Error;
use stint_types::Timestamp;

/// Maps a SQLite error onto the store's error kinds.
pub(crate) fn map_error(error: rusqlite::Error) -> Error {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) if failure.code == ErrorCode::ConstraintViolation => {
            Error::Duplicate(error.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => Error::Corrupt(error.to_string()),
        _ => Error::Unavailable(error.to_string()),
    }
}

/// Parses text stored by [`to_json`] or an enum's `as_str`.
pub(crate) fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T, Error> {
    text.parse().map_err(Error::Corrupt)
}

/// JSON text of a value.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store values serialize to JSON")
}

/// Decodes JSON text written by [`to_json`].
pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("bad JSON column: {e}")))
}

/// A timestamp column.
pub(crate) fn ts(value: Option<i64>) -> Option<Timestamp> {
    value.map(Timestamp)
}

/// A count column that must fit a u32.
pub(crate) fn count(value: i64) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("count {value} out of range")))
}

/// A count of rows, as `COUNT(*)` gives it.
pub(crate) fn total(value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("row count {value} out of range")))
}
