//! Worker versions: `YYYYMMDD.N`, the UTC day a version was made and its number that day.
//!
//! The server gives each distinct worker registration of an environment a version (see
//! `systems/workers.rs` in the engine); a run locks to one, and `lockToVersion` names one.

use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::time::Timestamp;

/// Largest number of a version within its day.
const MAX_NUMBER: u32 = 999_999;

/// A worker version: the day it was made (`YYYYMMDD` as a number) and its number that day, from 1.
/// Versions order as they were made: by day, then number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    day: u32,
    number: u32,
}

impl Version {
    /// Parses `YYYYMMDD.N`: a real date, a dot and a number from 1 without leading zeros.
    pub fn parse(text: &str) -> Result<Version, String> {
        let wrong =
            || format!("'{text}' is not a version like 20261130.1 (a date YYYYMMDD, a dot and a number from 1)");
        let (day, number) = text.split_once('.').ok_or_else(wrong)?;
        if day.len() != 8 || !day.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        NaiveDate::parse_from_str(day, "%Y%m%d").map_err(|_| wrong())?;
        if number.is_empty()
            || number.starts_with('0')
            || number.len() > 6
            || !number.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(wrong());
        }
        Ok(Version { day: day.parse().map_err(|_| wrong())?, number: number.parse().map_err(|_| wrong())? })
    }

    /// The version made at `at` after `latest`, the environment's newest: the first of `at`'s
    /// UTC day, or the next number of `latest`'s day when that day is not earlier (a clock behind
    /// the newest version's keeps counting on its day, so versions only grow).
    pub fn next(latest: Option<Version>, at: Timestamp) -> Version {
        let date = at.to_datetime().date_naive();
        let today = u32::try_from(date.year()).unwrap_or(0) * 10_000 + date.month() * 100 + date.day();
        match latest {
            Some(latest) if latest.day >= today => {
                Version { day: latest.day, number: (latest.number + 1).min(MAX_NUMBER) }
            }
            _ => Version { day: today, number: 1 },
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}.{}", self.day, self.number)
    }
}

/// Checks that `text` has the shape of a version, `YYYYMMDD.N`.
pub fn check_version(text: &str) -> Result<(), String> {
    Version::parse(text).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T12:00:00Z.
    const NOV_30: Timestamp = Timestamp(1_796_040_000_000);
    const DAY: i64 = 86_400_000;

    #[test]
    fn versions_parse_and_print_back() {
        for text in ["20261130.1", "20240229.17", "19991231.999999"] {
            assert_eq!(Version::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn ill_formed_versions_are_refused() {
        for text in [
            "",
            "1.0.0",
            "20261130",
            "20261130.",
            "20261130.0",
            "20261130.01",
            "20261130.x",
            "20261130.1000000",
            "2026113.1",
            "202611301.1",
            "20261131.1",
            "20230229.1",
            " 20261130.1",
            "20261130.1 ",
            "+0261130.1",
        ] {
            assert!(Version::parse(text).is_err(), "{text:?} was accepted");
        }
        assert!(check_version("20261130.2").is_ok());
    }

    #[test]
    fn numbers_count_up_within_a_day_and_restart_the_next() {
        let first = Version::next(None, NOV_30);
        assert_eq!(first.to_string(), "20261130.1");
        let second = Version::next(Some(first), NOV_30.plus_millis(1_000));
        assert_eq!(second.to_string(), "20261130.2");
        assert_eq!(Version::next(Some(second), NOV_30.plus_millis(DAY)).to_string(), "20261201.1");
        assert_eq!(
            Version::next(Some(second), NOV_30.plus_millis(-DAY)).to_string(),
            "20261130.3",
            "a clock behind the newest version's day keeps counting on that day"
        );
        assert!(first < second && second < Version::parse("20261201.1").unwrap());
        assert!(Version::parse("20261130.10").unwrap() > Version::parse("20261130.9").unwrap());
    }
}
