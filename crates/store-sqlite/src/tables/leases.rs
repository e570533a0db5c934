use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use stint_store::{Error, LeaseTable, Signal, Signals};
use stint_types::Timestamp;

use crate::codec::map_error;
use crate::tx::SqliteTx;

#[async_trait]
impl LeaseTable for SqliteTx<'_> {
    async fn lease_acquire(
        &mut self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<i64>, Error> {
        self.connection
            .prepare_cached(
                "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?1, ?2, 1, ?4) \
                 ON CONFLICT (name) DO UPDATE SET \
                   epoch = CASE WHEN holder = excluded.holder THEN epoch ELSE epoch + 1 END, \
                   holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE holder = excluded.holder OR expires_at <= ?3 \
                 RETURNING epoch",
            )
            .and_then(|mut s| s.query_row(params![name, holder, now.0, until.0], |r| r.get(0)).optional())
            .map_err(map_error)
    }

    async fn lease_release(&mut self, name: &str, holder: &str) -> Result<(), Error> {
        self.connection
            .prepare_cached("DELETE FROM leases WHERE name = ? AND holder = ?")
            .and_then(|mut s| s.execute(params![name, holder]))
            .map(drop)
            .map_err(map_error)
    }
}

/// One node uses a SQLite file: there is no one to signal.
#[async_trait]
impl Signals for SqliteTx<'_> {
    async fn signal(&mut self, _signal: &Signal) -> Result<(), Error> {
        Ok(())
    }
}
