//! Delays between retries of a call the server did not answer.

use std::time::Duration;

/// First delay after a failed call.
const INITIAL: Duration = Duration::from_millis(100);
/// Largest delay, so a worker notices a recovered server within seconds.
const CAP: Duration = Duration::from_secs(5);
/// Longest `Retry-After` honoured, so a confused server cannot park a worker for hours.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// Exponential backoff: 100 ms, doubling each time, at most 5 s. Not randomised: each worker
/// retries few calls, so synchronised retries cost little, and fixed delays are testable.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL }
    }
}

impl Backoff {
    /// The delay before the next retry; each call doubles the following one up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(CAP);
        delay
    }

    /// The delay before the next retry when the server asked for `retry_after`: that delay,
    /// within reason, else the next backoff step. The backoff grows either way.
    pub(crate) fn next_delay_honouring(&mut self, retry_after: Option<Duration>) -> Duration {
        let own = self.next_delay();
        retry_after.map_or(own, |asked| asked.min(RETRY_AFTER_CAP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_100ms_up_to_5s() {
        let mut backoff = Backoff::default();
        let delays: Vec<u128> = (0..9).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]);
    }

    #[test]
    fn retry_after_wins_within_a_minute() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.next_delay_honouring(Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(backoff.next_delay_honouring(None), Duration::from_millis(200));
        assert_eq!(backoff.next_delay_honouring(Some(Duration::from_secs(3_600))), RETRY_AFTER_CAP);
    }
}
