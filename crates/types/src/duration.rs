//! Durations as Trigger.dev writes them in trigger options: digits and a unit, concatenated from
//! the largest unit to the smallest, like `1h30m`, `2d`, `45s` or `1w2d`.

use std::time::Duration;

/// The units, largest first, with their lengths in seconds; `hr` is another name for `h`.
const UNITS: [(&str, u64); 6] = [("w", 604_800), ("d", 86_400), ("hr", 3_600), ("h", 3_600), ("m", 60), ("s", 1)];

/// Parses a duration like `1h30m`: each part digits and one of `w`, `d`, `h` (or `hr`), `m`,
/// `s`, each unit at most once and in that order; at most 100 characters. `None` for anything
/// else, the empty text included.
pub fn parse(text: &str) -> Option<Duration> {
    if text.is_empty() || text.len() > 100 {
        return None;
    }
    let mut rest = text;
    let mut seconds: u64 = 0;
    // The next unit allowed: units go from the largest to the smallest.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let amount: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let at = UNITS[next_unit..].iter().position(|(unit, _)| rest.starts_with(unit))? + next_unit;
        let (unit, length) = UNITS[at];
        rest = &rest[unit.len()..];
        seconds = seconds.checked_add(amount.checked_mul(length)?)?;
        // `h` and `hr` are one unit: after either, the next is `m`.
        next_unit = if unit == "hr" { at + 2 } else { at + 1 };
    }
    Some(Duration::from_secs(seconds))
}

/// Writes whole seconds the way [`parse`] reads them, largest units first: `90` is `1m30s`,
/// `0` is `0s`.
pub fn format(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let mut rest = seconds;
    let mut text = String::new();
    for (unit, length) in UNITS {
        if unit == "hr" {
            continue;
        }
        if rest >= length {
            text.push_str(&format!("{}{unit}", rest / length));
            rest %= length;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trigger_dev_durations() {
        let cases = [
            ("1h30m", 5_400),
            ("45s", 45),
            ("2d", 172_800),
            ("1w2d", 777_600),
            ("3hr", 10_800),
            ("1hr5m", 3_900),
            ("10m", 600),
            ("0s", 0),
            ("1w1d1h1m1s", 604_800 + 86_400 + 3_600 + 61),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse(text), Some(Duration::from_secs(seconds)), "{text}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        for text in ["", "10", "m", "1m1h", "1h1h", "1.5h", "1 h", "-1s", "1month", "1hrm", "1y", &"1".repeat(101)] {
            assert_eq!(parse(text), None, "{text}");
        }
        assert_eq!(parse("99999999999999999999w"), None, "overflow");
    }

    #[test]
    fn writes_what_it_reads() {
        for seconds in [0, 1, 59, 60, 61, 3_600, 5_400, 86_400, 777_600, 1_000_000] {
            let text = format(seconds);
            assert_eq!(parse(&text), Some(Duration::from_secs(seconds)), "{text}");
        }
        assert_eq!(format(5_400), "1h30m");
    }
}
