//! Engine settings.

use std::time::Duration;

/// How long a held run may go without a heartbeat before it is considered stalled, per
/// execution status. Defaults are Trigger.dev's webapp defaults. (Trigger.dev also times out
/// `PENDING_EXECUTING`; Stint's dequeue starts the attempt at once, so runs are never in it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A run whose attempt is running.
    pub executing: Duration,
    /// A cancelled run whose worker has not confirmed.
    pub pending_cancel: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { executing: Duration::from_secs(300), pending_cancel: Duration::from_secs(60) }
    }
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Stall timeouts.
    pub timeouts: Timeouts,
    /// Delay before a stalled run's next attempt (Trigger.dev: 250 ms).
    pub stall_retry_delay: Duration,
    /// How long a run may stay blocked on waitpoints with its attempt alive (holding its slot)
    /// before the attempt is suspended and the slot freed.
    pub suspend_after: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeouts: Timeouts::default(),
            stall_retry_delay: Duration::from_millis(250),
            suspend_after: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// How often workers should send heartbeats: a quarter of the executing timeout, so three
    /// heartbeats can be lost before a run stalls, and at most every 5 s, so a cancel reaches the
    /// worker quickly.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.timeouts.executing / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }
}
