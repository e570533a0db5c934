#![allow(unused_variables)]
//! Waitpoints, the edges blocking runs on them, runs' journals and named secrets (to be written).

use async_trait::async_trait;
use stint_store::{Error, JournalRow, WaitpointListParams, WaitpointRow, WaitpointTable};
use stint_types::{BatchId, EnvId, RunId, Timestamp, WaitpointId};

use crate::tx::PgTx;

#[async_trait]
impl WaitpointTable for PgTx<'_> {
    async fn waitpoint_insert(&mut self, row: &WaitpointRow) -> Result<(), Error> {
        unimplemented!()
    }
    async fn waitpoint_get(&mut self, id: &WaitpointId) -> Result<Option<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_get_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_lock_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_by_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_retire_key(&mut self, id: &WaitpointId, replacement: &str) -> Result<(), Error> {
        unimplemented!()
    }
    async fn waitpoint_complete(
        &mut self,
        id: &WaitpointId,
        output: Option<&str>,
        output_type: Option<&str>,
        is_error: bool,
        at: Timestamp,
    ) -> Result<bool, Error> {
        unimplemented!()
    }
    async fn waitpoint_list(&mut self, params: &WaitpointListParams) -> Result<Vec<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        unimplemented!()
    }
    async fn waitpoint_pending_for_runs(&mut self, run_ids: &[RunId]) -> Result<Vec<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_pending_for_batches(&mut self, batch_ids: &[BatchId]) -> Result<Vec<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_of_run(&mut self, run_id: &RunId) -> Result<Option<WaitpointRow>, Error> {
        unimplemented!()
    }
    async fn waitpoint_block(
        &mut self,
        run_id: &RunId,
        waitpoint_ids: &[WaitpointId],
        at: Timestamp,
    ) -> Result<(), Error> {
        unimplemented!()
    }
    async fn waitpoint_blocked_runs(&mut self, waitpoint_ids: &[WaitpointId]) -> Result<Vec<RunId>, Error> {
        unimplemented!()
    }
    async fn waitpoint_pending_count(&mut self, run_id: &RunId) -> Result<u32, Error> {
        unimplemented!()
    }
    async fn waitpoint_unblock(&mut self, run_id: &RunId) -> Result<(), Error> {
        unimplemented!()
    }
    async fn batch_unfinished(&mut self, batch_id: &BatchId) -> Result<u32, Error> {
        unimplemented!()
    }
    async fn journal_insert(&mut self, row: &JournalRow) -> Result<(), Error> {
        unimplemented!()
    }
    async fn journal_list(&mut self, run_id: &RunId) -> Result<Vec<JournalRow>, Error> {
        unimplemented!()
    }
    async fn secret_get_or_insert(&mut self, name: &str, value: &str) -> Result<String, Error> {
        unimplemented!()
    }
}
