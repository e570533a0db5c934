//! The schema's migrations, embedded in the binary and applied under an advisory lock.
//!
//! sqlx's [`Migrator`] does the work: it takes a PostgreSQL advisory lock (one per database) on
//! its connection, creates the schema if it is missing, reads `_sqlx_migrations`, checks that the
//! migrations applied before are unchanged (by checksum), and applies each missing one in a
//! transaction of its own together with its bookkeeping row. Several nodes starting at once
//! therefore apply each migration exactly once: the others wait for the lock and then find
//! nothing left to do. The migrations are built from SQL text compiled into the binary, so
//! nothing is read from disk at run time and sqlx's `macros` feature is not needed.
//!
//! The migration runs on a connection of its own, closed afterwards: an advisory lock is held by
//! the session, and a migration that fails half-way must not leave it held by a pooled
//! connection.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use stint_store::Error;

use crate::connect::{self, Options};

/// Every migration: version, description, SQL. Versions match the file names' prefixes; a
/// migration, once released, is never edited (its checksum is checked at every start).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "leases", include_str!("../migrations/0002_leases.sql")),
    (3, "idempotency", include_str!("../migrations/0003_idempotency.sql")),
    (4, "queue_order", include_str!("../migrations/0004_queue_order.sql")),
    (5, "queue_controls", include_str!("../migrations/0005_queue_controls.sql")),
    (6, "queue_lanes", include_str!("../migrations/0006_queue_lanes.sql")),
    (7, "tenancy_admin", include_str!("../migrations/0007_tenancy_admin.sql")),
    (8, "limits", include_str!("../migrations/0008_limits.sql")),
    (9, "rate_limits", include_str!("../migrations/0009_rate_limits.sql")),
    (10, "worker_pools", include_str!("../migrations/0010_worker_pools.sql")),
    (11, "trigger_options", include_str!("../migrations/0011_trigger_options.sql")),
    (12, "worker_versions", include_str!("../migrations/0012_worker_versions.sql")),
    (13, "batches", include_str!("../migrations/0013_batches.sql")),
    (14, "task_ttl", include_str!("../migrations/0014_task_ttl.sql")),
    (15, "waitpoints", include_str!("../migrations/0015_waitpoints.sql")),
    (16, "schedules", include_str!("../migrations/0016_schedules.sql")),
    (17, "schedules_due_at", include_str!("../migrations/0017_schedules_due_at.sql")),
];

/// Brings the schema named by `options` (created if missing) up to date, under the advisory
/// lock, on a connection of its own.
pub async fn migrate(options: &Options) -> Result<(), Error> {
    let connect = connect::connect_options(options)?;
    let mut migrator = Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    );
    if let Some(schema) = &options.schema {
        migrator.create_schema(connect::quote_identifier(schema)?);
    }
    let mut connection = connect::connect_one(&connect, options).await?;
    // `run_direct` is `Migrator::run` on a connection. sqlx keeps it public (though hidden from
    // its docs) because the generic `Acquire` bound of `run` fails "implementation of `Acquire`
    // is not general enough" in futures that must be `Send`, such as a spawned `open`.
    let outcome = migrator.run_direct(None, &mut connection, false).await;
    // Closing ends the session, and with it the advisory lock if a failure left it held.
    let _ = sqlx::Connection::close(connection).await;
    outcome.map_err(|e| {
        let schema = options.schema.as_deref().unwrap_or("the default schema");
        Error::Unavailable(format!("migrating {schema} at {}: {e}", options.redacted_url()))
    })
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every file in `migrations/` is embedded, in version order, with the version of its name.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> =
            MIGRATIONS.iter().map(|(version, description, _)| format!("{version:04}_{description}.sql")).collect();
        assert_eq!(files, embedded);
    }
}
