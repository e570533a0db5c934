//! The table traits of `stint-store`, implemented on SQLite.

mod queues;
mod runs;
mod tenancy;
mod workers;
