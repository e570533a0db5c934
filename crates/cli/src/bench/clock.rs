//! `CLOCK_MONOTONIC` in microseconds: the same clock in every process on the machine, as the
//! peers' harness uses, so a trigger time taken by the bench and a start time taken by a worker
//! compare directly.

use nix::time::{ClockId, clock_gettime};

/// Microseconds on the monotonic clock.
pub fn monotonic_us() -> i64 {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always available");
    now.tv_sec() * 1_000_000 + now.tv_nsec() / 1_000
}
