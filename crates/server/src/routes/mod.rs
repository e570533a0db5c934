//! The HTTP routes.

pub mod runs;
pub mod workers;
