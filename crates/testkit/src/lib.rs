//! Test helpers for Stint.

mod clock;

pub use clock::ManualClock;
