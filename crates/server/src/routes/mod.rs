//! The HTTP routes.

pub mod admin;
pub mod batches;
pub mod environments;
pub mod projects;
pub mod queues;
pub mod rundata;
pub mod runs;
pub mod schedules;
pub mod waitpoints;
pub mod workers;
