//! The table traits of `stint-store`, implemented on SQLite.

mod leases;
mod limits;
mod options;
mod queues;
mod rates;
pub(crate) mod runs;
mod tenancy;
mod workers;
