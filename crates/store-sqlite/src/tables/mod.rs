//! The table traits of `stint-store`, implemented on SQLite.

mod leases;
mod queues;
pub(crate) mod runs;
mod tenancy;
mod workers;
