//! Conversions between store values and PostgreSQL columns, and of sqlx errors into store errors.
//!
//! The error mapping is what lets the server answer correctly: a row that breaks a uniqueness (or
//! other integrity) rule is [`Error::Duplicate`], a value that cannot be decoded is
//! [`Error::Corrupt`], a closed pool is [`Error::Closed`], and everything else (connection, pool,
//! IO, TLS, timeouts, server shutdown, deadlocks) is [`Error::Unavailable`], answered with a 503.

use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::{Decode, Postgres, Row, Type};
use stint_store::Error;
use stint_types::Timestamp;

/// Maps a sqlx error onto the store's error kinds.
pub(crate) fn map_error(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default().into_owned();
            // Class 23 is "integrity constraint violation": unique keys above all.
            if code.starts_with("23") {
                let constraint = database.constraint().unwrap_or("a constraint");
                Error::Duplicate(format!("{} ({constraint})", database.message()))
            } else {
                Error::Unavailable(format!("{} (SQLSTATE {code})", database.message()))
            }
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::RowNotFound => Error::Corrupt(error.to_string()),
        sqlx::Error::PoolClosed => Error::Closed,
        _ => Error::Unavailable(error.to_string()),
    }
}

/// Checks that an `INSERT … ON CONFLICT DO NOTHING` wrote its row: none written means a unique
/// key of it exists already. Refusing this way, rather than by letting the insert fail, keeps the
/// transaction usable, as a failed statement leaves it in SQLite; a failed statement aborts a
/// PostgreSQL transaction.
pub(crate) fn inserted(result: PgQueryResult, what: impl FnOnce() -> String) -> Result<(), Error> {
    if result.rows_affected() == 0 { Err(Error::Duplicate(what())) } else { Ok(()) }
}

/// A column of any type sqlx decodes.
pub(crate) fn get<'r, T: Decode<'r, Postgres> + Type<Postgres>>(row: &'r PgRow, index: usize) -> Result<T, Error> {
    row.try_get(index).map_err(map_error)
}

/// A BIGINT column holding a count that must fit a u32.
pub(crate) fn count(row: &PgRow, index: usize) -> Result<u32, Error> {
    to_count(get(row, index)?)
}

/// A nullable BIGINT column holding a count that must fit a u32.
pub(crate) fn count_opt(row: &PgRow, index: usize) -> Result<Option<u32>, Error> {
    get::<Option<i64>>(row, index)?.map(to_count).transpose()
}

/// A BIGINT column holding a count of rows, as `COUNT(*)` gives it.
pub(crate) fn total(row: &PgRow, index: usize) -> Result<u64, Error> {
    let value: i64 = get(row, index)?;
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("row count {value} out of range")))
}

fn to_count(value: i64) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("count {value} out of range")))
}

/// A BIGINT column of milliseconds.
pub(crate) fn ts(row: &PgRow, index: usize) -> Result<Timestamp, Error> {
    get(row, index).map(Timestamp)
}

/// A nullable BIGINT column of milliseconds.
pub(crate) fn ts_opt(row: &PgRow, index: usize) -> Result<Option<Timestamp>, Error> {
    get::<Option<i64>>(row, index).map(|value| value.map(Timestamp))
}

/// A TEXT column holding an enum's `as_str` form.
pub(crate) fn parsed<T: FromStr<Err = String>>(row: &PgRow, index: usize) -> Result<T, Error> {
    get::<String>(row, index)?.parse().map_err(Error::Corrupt)
}

/// A nullable TEXT column holding JSON written by [`to_json`].
pub(crate) fn json<T: DeserializeOwned>(row: &PgRow, index: usize) -> Result<Option<T>, Error> {
    get::<Option<String>>(row, index)?.map(|text| from_json(&text)).transpose()
}

/// JSON text of a value.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store values serialize to JSON")
}

/// Decodes JSON text written by [`to_json`].
pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("bad JSON column: {e}")))
}

/// A u32 as the BIGINT it is stored as.
pub(crate) fn big(value: u32) -> i64 {
    i64::from(value)
}

/// An optional u32 as the BIGINT it is stored as.
pub(crate) fn big_opt(value: Option<u32>) -> Option<i64> {
    value.map(i64::from)
}
