//! The table traits of `stint-store`, implemented on SQLite.

mod batches;
mod leases;
mod limits;
mod options;
mod queues;
mod rates;
mod run_inserts;
pub(crate) mod runs;
mod schedules;
mod tenancy;
mod waitpoints;
mod workers;
