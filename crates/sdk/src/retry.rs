//! [`Retry`]: how a task's failed attempts are retried.

use std::time::Duration;

use stint_protocol::types::RetryOptions;

/// How a task retries failed attempts, with Trigger.dev's defaults: 3 attempts in all, delays
/// from 1 s growing by a factor of 2 up to 60 s, each multiplied by a random factor in [1, 2).
///
/// The server computes the delay after a failed attempt as
/// `min(max_timeout, (1 + random) × min_timeout × factor^(attempt − 1))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Growth of the delay from one attempt to the next.
    pub factor: f64,
    /// Delay after the first failed attempt, before randomisation.
    pub min_timeout: Duration,
    /// Largest delay.
    pub max_timeout: Duration,
    /// Multiply each delay by a random factor in [1, 2), so that runs failing together do not
    /// retry together.
    pub randomize: bool,
}

impl Retry {
    /// Settings that never retry: one attempt only.
    pub fn never() -> Retry {
        Retry { max_attempts: 1, ..Retry::default() }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            factor: 2.0,
            min_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(60),
            randomize: true,
        }
    }
}

impl From<Retry> for RetryOptions {
    fn from(retry: Retry) -> RetryOptions {
        RetryOptions {
            max_attempts: retry.max_attempts,
            factor: retry.factor,
            min_timeout_in_ms: duration_ms(retry.min_timeout),
            max_timeout_in_ms: duration_ms(retry.max_timeout),
            randomize: retry.randomize,
        }
    }
}

/// Whole milliseconds, saturating for durations beyond `u64::MAX` ms.
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_trigger_devs() {
        assert_eq!(RetryOptions::from(Retry::default()), RetryOptions::default());
    }

    #[test]
    fn durations_become_milliseconds() {
        let retry = Retry {
            max_attempts: 5,
            factor: 2.0,
            min_timeout: Duration::from_millis(100),
            max_timeout: Duration::from_secs(1),
            randomize: false,
        };
        let options = RetryOptions::from(retry);
        assert_eq!(
            options,
            RetryOptions {
                max_attempts: 5,
                factor: 2.0,
                min_timeout_in_ms: 100,
                max_timeout_in_ms: 1_000,
                randomize: false
            }
        );
        assert_eq!(options.delay_after(3, 0.0), Some(400));
        assert_eq!(RetryOptions::from(Retry::never()).max_attempts, 1);
    }
}
