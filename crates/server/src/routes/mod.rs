//! The HTTP routes.

pub mod queues;
pub mod runs;
pub mod workers;
