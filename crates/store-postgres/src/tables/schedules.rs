#![allow(unused_variables)]
//! Schedules and the runs they fired (to be written).

use async_trait::async_trait;
use stint_store::{Error, ScheduleFireRow, ScheduleRow, ScheduleTable};
use stint_types::{EnvId, RunId, ScheduleId, Timestamp};

use crate::tx::PgTx;

#[async_trait]
impl ScheduleTable for PgTx<'_> {
    async fn schedule_insert(&mut self, row: &ScheduleRow) -> Result<(), Error> {
        unimplemented!()
    }
    async fn schedule_update(&mut self, row: &ScheduleRow) -> Result<(), Error> {
        unimplemented!()
    }
    async fn schedule_get(&mut self, id: &ScheduleId) -> Result<Option<ScheduleRow>, Error> {
        unimplemented!()
    }
    async fn schedule_by_dedup_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<ScheduleRow>, Error> {
        unimplemented!()
    }
    async fn schedule_delete(&mut self, id: &ScheduleId) -> Result<bool, Error> {
        unimplemented!()
    }
    async fn schedule_list(
        &mut self,
        env_id: &EnvId,
        task_id: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<ScheduleRow>, Error> {
        unimplemented!()
    }
    async fn schedule_count(&mut self, env_id: &EnvId, task_id: Option<&str>) -> Result<u64, Error> {
        unimplemented!()
    }
    async fn schedule_declarative(&mut self, env_id: &EnvId) -> Result<Vec<ScheduleRow>, Error> {
        unimplemented!()
    }
    async fn schedule_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<ScheduleRow>, Error> {
        unimplemented!()
    }
    async fn schedule_next_due(&mut self) -> Result<Option<Timestamp>, Error> {
        unimplemented!()
    }
    async fn schedule_fire_insert(&mut self, row: &ScheduleFireRow) -> Result<(), Error> {
        unimplemented!()
    }
    async fn schedule_fire_of_run(&mut self, run_id: &RunId) -> Result<Option<ScheduleFireRow>, Error> {
        unimplemented!()
    }
}
