use async_trait::async_trait;
use stint_store::{Error, LeaseTable, Signal, Signals};
use stint_types::Timestamp;

use crate::codec::{get, map_error};
use crate::tx::PgTx;

/// The channel of `NOTIFY` that carries signals between nodes.
pub(crate) const CHANNEL: &str = "stint";

#[async_trait]
impl LeaseTable for PgTx<'_> {
    async fn lease_acquire(
        &mut self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<i64>, Error> {
        // Two nodes racing for a free lease serialise on the row; the second finds it held.
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, $2, 1, $4) \
             ON CONFLICT (name) DO UPDATE SET \
               epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END, \
               holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $3 \
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(now.0)
        .bind(until.0)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.map(|r| get::<i64>(&r, 0)).transpose()
    }

    async fn lease_release(&mut self, name: &str, holder: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }
}

/// Signals travel as `NOTIFY`, which PostgreSQL delivers when the transaction commits and drops
/// when it rolls back.
#[async_trait]
impl Signals for PgTx<'_> {
    async fn signal(&mut self, signal: &Signal) -> Result<(), Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(signal.encode())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }
}
