//! Retry settings and Trigger.dev's retry delay formula.

use serde::{Deserialize, Serialize};

/// Attempts allowed before a run is given up, regardless of any setting (Trigger.dev's hard cap).
pub const MAX_ATTEMPTS_CAP: u32 = 250;

/// How a task retries failed attempts. Field names and defaults are Trigger.dev's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RetryOptions {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Growth of the delay from one attempt to the next.
    pub factor: f64,
    /// Delay after the first failed attempt, before randomisation.
    pub min_timeout_in_ms: u64,
    /// Largest delay.
    pub max_timeout_in_ms: u64,
    /// Multiply each delay by a random factor in [1, 2).
    pub randomize: bool,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_attempts: 3,
            factor: 2.0,
            min_timeout_in_ms: 1_000,
            max_timeout_in_ms: 60_000,
            randomize: true,
        }
    }
}

impl RetryOptions {
    /// The delay in ms before the attempt after `failed_attempt` (1-based), or `None` when that was
    /// the last attempt allowed.
    ///
    /// `random` is a number in [0, 1), used only when `randomize` is set:
    /// `round(min(max, (1 + random) * min * factor^(attempt - 1)))`.
    pub fn delay_after(&self, failed_attempt: u32, random: f64) -> Option<u64> {
        if failed_attempt >= self.max_attempts.min(MAX_ATTEMPTS_CAP) {
            return None;
        }
        let spread = if self.randomize { 1.0 + random.clamp(0.0, 1.0) } else { 1.0 };
        let exponent = i32::try_from(failed_attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let raw = spread * self.min_timeout_in_ms as f64 * self.factor.powi(exponent);
        let capped = raw.min(self.max_timeout_in_ms as f64);
        Some(capped.round().max(0.0) as u64)
    }

    /// Checks the settings make sense, saying what is wrong if not.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts < 1 {
            return Err("retry.maxAttempts must be at least 1".into());
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err("retry.factor must be a number of at least 1".into());
        }
        if self.min_timeout_in_ms > self.max_timeout_in_ms {
            return Err("retry.minTimeoutInMs must not exceed retry.maxTimeoutInMs".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_formula() {
        let retry = RetryOptions::default();
        assert_eq!(retry.delay_after(1, 0.0), Some(1_000));
        assert_eq!(retry.delay_after(1, 0.5), Some(1_500));
        assert_eq!(retry.delay_after(2, 0.0), Some(2_000));
        assert_eq!(retry.delay_after(2, 0.999), Some(3_998));
        assert_eq!(retry.delay_after(3, 0.0), None);
    }

    #[test]
    fn delay_is_capped_and_deterministic_without_randomize() {
        let retry = RetryOptions {
            max_attempts: 20,
            factor: 3.0,
            min_timeout_in_ms: 500,
            max_timeout_in_ms: 10_000,
            randomize: false,
        };
        assert_eq!(retry.delay_after(1, 0.9), Some(500));
        assert_eq!(retry.delay_after(3, 0.9), Some(4_500));
        assert_eq!(retry.delay_after(4, 0.9), Some(10_000));
        assert_eq!(retry.delay_after(19, 0.9), Some(10_000));
        assert_eq!(retry.delay_after(20, 0.9), None);
    }

    #[test]
    fn hard_cap_applies() {
        let retry = RetryOptions { max_attempts: 1_000, ..RetryOptions::default() };
        assert!(retry.delay_after(249, 0.0).is_some());
        assert_eq!(retry.delay_after(250, 0.0), None);
    }

    #[test]
    fn validate_names_the_field() {
        let bad = RetryOptions { max_attempts: 0, ..RetryOptions::default() };
        assert!(bad.validate().unwrap_err().contains("maxAttempts"));
        let bad = RetryOptions { min_timeout_in_ms: 5, max_timeout_in_ms: 1, ..RetryOptions::default() };
        assert!(bad.validate().unwrap_err().contains("minTimeoutInMs"));
    }
}
