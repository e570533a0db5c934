//! Making and removing whole databases, for tools that need a fresh one (the benchmark).

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use stint_store::Error;

use crate::codec::map_error;
use crate::connect::quote_identifier;

/// Creates the database `name` on the server of `admin_url` and returns the URL of the new
/// database.
pub async fn create_database(admin_url: &str, name: &str) -> Result<String, Error> {
    let mut connection = connect(admin_url).await?;
    let statement = format!("CREATE DATABASE {}", quote_identifier(name)?);
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut connection).await.map_err(map_error)?;
    Ok(database_url(admin_url, name))
}

/// Drops the database `name` on the server of `admin_url`, closing its connections.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), Error> {
    let mut connection = connect(admin_url).await?;
    let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(name)?);
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut connection).await.map(drop).map_err(map_error)
}

async fn connect(url: &str) -> Result<PgConnection, Error> {
    let options: PgConnectOptions = url.parse().map_err(|e| Error::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
    PgConnection::connect_with(&options).await.map_err(map_error)
}

/// `url` naming `database` instead of the one it names.
pub fn database_url(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    match query {
        Some(query) => format!("{}/{database}?{query}", &base[..path]),
        None => format!("{}/{database}", &base[..path]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_another_database() {
        assert_eq!(database_url("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(database_url("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(database_url("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
