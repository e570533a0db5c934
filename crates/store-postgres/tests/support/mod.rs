//! Stores on schemas of their own, on the server named by `STINT_TEST_POSTGRES_URL`.
//!
//! Every store gets a new schema, so tests run in parallel on one database without seeing each
//! other, and the schema is dropped with the store, so runs leave nothing behind.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use rand::RngExt;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use stint_store::{BoxFuture, Error, Job, Store};
use stint_store_postgres::{Options, PostgresStore};

/// The variable naming the test server.
pub const URL_VARIABLE: &str = "STINT_TEST_POSTGRES_URL";

/// The server used when the variable is not set: the local PostgreSQL with trust auth.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The test server's URL.
pub fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// A schema name no other test uses.
pub fn new_schema() -> String {
    format!("stint_test_{:016x}", rand::rng().random::<u64>())
}

/// Options for a store on `schema` of the test server, with a small pool.
pub fn options(schema: &str) -> Options {
    Options { max_connections: 4, schema: Some(schema.to_string()), ..Options::new(url()) }
}

/// Fails the test, saying which server it needs and how to name another.
pub fn no_server(options: &Options, error: Error) -> ! {
    panic!(
        "the PostgreSQL tests need a server at {} (set {URL_VARIABLE} to use another): {error}",
        options.redacted_url()
    )
}

/// A store on a new schema, dropped with it.
pub struct OnOwnSchema {
    /// The store.
    pub store: PostgresStore,
    /// Its schema.
    pub schema: String,
}

impl OnOwnSchema {
    /// Opens a store on a new schema; fails the test if the server cannot be reached.
    pub async fn open() -> OnOwnSchema {
        let schema = new_schema();
        let options = options(&schema);
        match PostgresStore::open(&options).await {
            Ok(store) => OnOwnSchema { store, schema },
            Err(error) => {
                // The schema may have been created before the failure; if the server is not
                // there, there is nothing to drop.
                let _ = drop_schema(&schema);
                no_server(&options, error)
            }
        }
    }
}

impl Store for OnOwnSchema {
    fn write_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        self.store.write_job(job)
    }

    fn read_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        self.store.read_job(job)
    }
}

impl Drop for OnOwnSchema {
    fn drop(&mut self) {
        if let Err(error) = drop_schema(&self.schema) {
            eprintln!("{error}");
        }
    }
}

/// Drops `schema` and everything in it, waiting until it is gone. Callable from `Drop`, inside
/// or outside a runtime: it works on a thread of its own with a runtime of its own.
pub fn drop_schema(schema: &str) -> Result<(), String> {
    let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let mut connection = PgConnection::connect(&url()).await?;
            connection.execute(AssertSqlSafe(statement)).await?;
            connection.close().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
    })
    .join();
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("could not drop the test schema {schema}: {error}")),
        Err(_) => Err(format!("dropping the test schema {schema} panicked")),
    }
}
