//! Cron expressions read in a time zone: parsing with field-named errors, next fire times, the
//! catch-up time after downtime, and a description in words.
//!
//! The syntax is Trigger.dev's: five fields (minute hour day-of-month month day-of-week), no
//! seconds, with `L` (last day of the month, `5L` the last Friday), `W` (weekday nearest a day)
//! and `#` (`1#2` the second Monday).
//! Times are wall-clock times in an IANA zone, and daylight saving follows Vixie cron, as croner
//! implements it: a fixed time of day that a spring-forward skips fires once, at the first instant
//! after the gap, and one that a fall-back repeats fires once, at its first occurrence; interval
//! expressions (`0 * * * *`, `*/15 * * * *`) fire at every wall-clock match that exists, both
//! repeated ones included.

mod describe;

use std::fmt;

use chrono::TimeZone;
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};

use crate::time::Timestamp;

/// A cron expression read in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// The expression as given, trimmed.
    expression: String,
    /// The five fields, upper-cased, for the description.
    fields: [String; 5],
    /// The zone the fields are read in.
    timezone: Tz,
    /// The parsed expression.
    schedule: croner::Cron,
}

/// Why an expression or a time zone was refused: the request field at fault and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    /// `"cron"` or `"timezone"`.
    pub field: &'static str,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for CronError {}

/// Every IANA time zone name, for `GET /api/v1/timezones`.
pub fn timezones() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect()
}

/// The names of the five fields, in order.
const FIELD_NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// What each field accepts besides `*`, lists (`,`), ranges (`-`) and steps (`/`).
const FIELD_VALUES: [&str; 5] = [
    "0-59",
    "0-23",
    "1-31, L (the last day) or nW (the weekday nearest day n)",
    "1-12 or JAN-DEC",
    "0-7 or SUN-SAT (0 and 7 are Sunday), nL (the last one in the month) or n#k (the k-th one)",
];

/// Three-letter names a field may use instead of numbers, and the letters it allows alone.
const FIELD_NAMES_ALLOWED: [(&[&str], &str); 5] = [
    (&[], ""),
    (&[], ""),
    (&[], "LW"),
    (&["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], ""),
    (&["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], "L"),
];

const EXPECTED_FIELDS: &str = "expected 5 fields (minute hour day-of-month month day-of-week)";

impl Cron {
    /// Parses a 5-field expression (minute hour day-of-month month day-of-week, with the `L`, `W`
    /// and `#` forms Trigger.dev accepts) in an IANA time zone (`None` is `"UTC"`).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Cron, CronError> {
        let expression = expression.trim();
        let (fields, schedule) =
            parse_expression(expression).map_err(|message| CronError { field: "cron", message })?;
        let timezone =
            parse_timezone(timezone.unwrap_or("UTC")).map_err(|message| CronError { field: "timezone", message })?;
        Ok(Cron { expression: expression.to_owned(), fields, timezone, schedule })
    }

    /// The first fire time strictly after `after`.
    /// `None` only if there is none the calendar can represent.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        // Fire times are whole seconds, so the first one after `after` is the first one after
        // `after`'s second; croner reads times to the second.
        let start = self.timezone.timestamp_opt(after.millis().div_euclid(1000), 0).single()?;
        let next = self.schedule.find_next_occurrence(&start, false).ok()?;
        Some(Timestamp(next.timestamp_millis()))
    }

    /// The next `n` fire times strictly after `after`, earliest first.
    pub fn upcoming(&self, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut times = Vec::with_capacity(n);
        let mut cursor = after;
        while times.len() < n {
            let Some(next) = self.next_after(cursor) else { break };
            times.push(next);
            cursor = next;
        }
        times
    }

    /// The latest fire time in `[from, now]`, or `None` if there is none.
    /// This is the one catch-up run after downtime: missed fire times are not replayed.
    pub fn latest_at_or_before(&self, from: Timestamp, now: Timestamp) -> Option<Timestamp> {
        if from > now {
            return None;
        }
        let first = self.next_after(from.plus_millis(-1)).filter(|first| *first <= now)?;
        // Without downtime the first is the only one.
        if self.next_after(first).is_none_or(|second| second > now) {
            return Some(first);
        }
        // `fires_within(x)`: some fire time lies in `(x, now]`. It holds from `first` and fails
        // from the latest fire time on, so a binary search finds the last `x` where it holds, and
        // the next fire time after that `x` is the answer: about 40 searches, however dense the
        // expression or long the downtime.
        let fires_within = |x: Timestamp| self.next_after(x).is_some_and(|next| next <= now);
        let mut low = first;
        let mut high = now;
        while high.millis() - low.millis() > 1 {
            let middle = Timestamp(low.millis() + (high.millis() - low.millis()) / 2);
            if fires_within(middle) {
                low = middle;
            } else {
                high = middle;
            }
        }
        self.next_after(low)
    }

    /// The expression in words, the way cronstrue renders Trigger.dev's
    /// `generator.description`, with a 24-hour clock: "Every minute", "At 03:00",
    /// "At 09:30, Monday through Friday".
    /// Forms it has no words for are returned as the expression itself.
    pub fn describe(&self) -> String {
        describe::describe(&self.fields).unwrap_or_else(|| self.expression.clone())
    }

    /// The expression as given, without surrounding spaces.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA name of the time zone the expression is read in.
    pub fn timezone(&self) -> &str {
        self.timezone.name()
    }
}

/// Parses and checks an expression, returning its upper-cased fields and croner's reading of it,
/// or a message that names the field at fault.
fn parse_expression(expression: &str) -> Result<([String; 5], croner::Cron), String> {
    if expression.is_empty() {
        return Err(format!("the expression is empty; {EXPECTED_FIELDS}, like `0 * * * *` for every hour"));
    }
    if expression.starts_with('@') {
        let fields = match expression.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => Some("0 0 1 1 *"),
            "@monthly" => Some("0 0 1 * *"),
            "@weekly" => Some("0 0 * * 0"),
            "@daily" | "@midnight" => Some("0 0 * * *"),
            "@hourly" => Some("0 * * * *"),
            _ => None,
        };
        return Err(match fields {
            Some(fields) => format!("`{expression}` is not supported; write `{fields}`"),
            None => format!("{EXPECTED_FIELDS}, got `{expression}`"),
        });
    }
    let fields: Vec<String> = expression.split_whitespace().map(str::to_ascii_uppercase).collect();
    let fields: [String; 5] =
        fields.try_into().map_err(|fields: Vec<String>| format!("{EXPECTED_FIELDS}, got {}", fields.len()))?;

    // croner reads month and weekday names anywhere and accepts forms Trigger.dev does not (`+`
    // in the day of week), so each field is checked on its own first. Parsing it alone, the other
    // fields `*`, finds which field croner objects to.
    let parser = parser();
    for (index, field) in fields.iter().enumerate() {
        let invalid = |reason: &str| {
            format!(
                "{} `{field}` is not valid ({reason}); use {}, with * , - and /",
                FIELD_NAMES[index], FIELD_VALUES[index]
            )
        };
        let (names, letters) = FIELD_NAMES_ALLOWED[index];
        if let Some(word) = unknown_word(field, names, letters) {
            return Err(invalid(&format!("`{word}` is not a value here")));
        }
        if field.contains('+') {
            return Err(invalid("`+` is not supported"));
        }
        if index == 4 && field.split(',').any(|item| item == "L") {
            return Err(invalid("`L` needs a weekday before it, like `5L` for the last Friday"));
        }
        let mut probe = ["*"; 5];
        probe[index] = field;
        if let Err(error) = parser.parse(&probe.join(" ")) {
            return Err(invalid(&croner_reason(&error)));
        }
    }
    let schedule = parser.parse(&fields.join(" ")).map_err(|error| format!("not valid: {}", croner_reason(&error)))?;

    // A date the expression names may not exist (`0 0 31 2 *`); such an expression would never
    // fire. Dates do not depend on the zone, so a search in naive time decides it.
    let epoch = chrono::DateTime::UNIX_EPOCH.naive_utc();
    if schedule.find_next_occurrence(&epoch, true).is_err() {
        return Err(
            "the expression never fires: no month has the day of the month it names (like `31 2` for 31 February)"
                .into(),
        );
    }
    Ok((fields, schedule))
}

/// The parser for Trigger.dev's syntax: five fields only; `0/15` read as `*/15` from 0, as
/// cron-parser does.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .sloppy_ranges(true)
        .build()
}

/// The first run of letters in `field` that is neither one of `names` nor made only of `letters`.
fn unknown_word<'a>(field: &'a str, names: &[&str], letters: &str) -> Option<&'a str> {
    field
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|word| !word.is_empty())
        .find(|word| !names.contains(word) && !word.chars().all(|c| letters.contains(c)))
}

/// croner's error as a lower-case clause without its prefix.
fn croner_reason(error: &croner::errors::CronError) -> String {
    let reason = match error {
        croner::errors::CronError::ComponentError(message)
        | croner::errors::CronError::InvalidPattern(message)
        | croner::errors::CronError::IllegalCharacters(message) => message.clone(),
        other => other.to_string(),
    };
    let reason = reason.trim_end_matches('.');
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Looks up an IANA zone by its exact name, suggesting the right spelling when only the case is
/// wrong.
fn parse_timezone(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let hint = "use an IANA name like `America/New_York` or `UTC` (GET /api/v1/timezones lists them)";
    match chrono_tz::TZ_VARIANTS.iter().find(|tz| tz.name().eq_ignore_ascii_case(name)) {
        Some(tz) => Err(format!("unknown time zone `{name}`; did you mean `{}`?", tz.name())),
        None if name.is_empty() => Err(format!("the time zone is empty; {hint}, or leave it out for UTC")),
        None => Err(format!("unknown time zone `{name}`; {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, Offset};

    use super::*;

    /// A time written as RFC 3339; expected values below are worked out by hand from the zones'
    /// offsets and 2026 transitions, which [`transitions_of_2026_are_where_the_tables_assume`]
    /// pins.
    fn t(text: &str) -> Timestamp {
        Timestamp::parse_date(text).unwrap_or_else(|| panic!("bad test time {text}"))
    }

    const NEW_YORK: Option<&str> = Some("America/New_York");
    const LONDON: Option<&str> = Some("Europe/London");
    const LORD_HOWE: Option<&str> = Some("Australia/Lord_Howe");

    /// The UTC offset, in minutes, of a zone at an instant.
    fn offset_minutes(zone: &str, at: &str) -> i32 {
        let tz: Tz = zone.parse().unwrap();
        tz.offset_from_utc_datetime(&t(at).to_datetime().naive_utc()).fix().local_minus_utc() / 60
    }

    #[test]
    fn transitions_of_2026_are_where_the_tables_assume() {
        // (zone, a minute before the change, the change, offset before, offset after).
        let cases = [
            // New York springs forward at 02:00 EST on 8 March, falls back at 02:00 EDT on 1 November.
            ("America/New_York", "2026-03-08T06:59:00Z", "2026-03-08T07:00:00Z", -300, -240),
            ("America/New_York", "2026-11-01T05:59:00Z", "2026-11-01T06:00:00Z", -240, -300),
            // London at 01:00 GMT on 29 March and 02:00 BST on 25 October.
            ("Europe/London", "2026-03-29T00:59:00Z", "2026-03-29T01:00:00Z", 0, 60),
            ("Europe/London", "2026-10-25T00:59:00Z", "2026-10-25T01:00:00Z", 60, 0),
            // Lord Howe moves half an hour: back at 02:00 LHDT on 5 April, forward at 02:00 LHST on 4 October.
            ("Australia/Lord_Howe", "2026-04-04T14:59:00Z", "2026-04-04T15:00:00Z", 660, 630),
            ("Australia/Lord_Howe", "2026-10-03T15:29:00Z", "2026-10-03T15:30:00Z", 630, 660),
        ];
        for (zone, before, at, offset_before, offset_after) in cases {
            assert_eq!(offset_minutes(zone, before), offset_before, "{zone} before {at}");
            assert_eq!(offset_minutes(zone, at), offset_after, "{zone} at {at}");
        }
    }

    #[test]
    fn next_fire_times() {
        // (expression, zone, after, expected next fire, why).
        let cases = [
            // America/New_York: EST is UTC-5, EDT UTC-4.
            ("30 2 * * *", NEW_YORK, "2026-03-06T12:00:00Z", "2026-03-07T07:30:00Z", "02:30 EST the day before"),
            ("30 2 * * *", NEW_YORK, "2026-03-07T08:00:00Z", "2026-03-08T07:00:00Z", "02:30 is skipped: 03:00 EDT"),
            ("30 2 * * *", NEW_YORK, "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "02:30 EDT the day after"),
            ("0 2 * * *", NEW_YORK, "2026-03-08T05:00:00Z", "2026-03-08T07:00:00Z", "02:00 is skipped: 03:00 EDT"),
            ("30 2 * * *", NEW_YORK, "2026-10-31T12:00:00Z", "2026-11-01T07:30:00Z", "02:30 EST on fall-back day"),
            ("30 1 * * *", NEW_YORK, "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z", "the first 01:30, EDT"),
            ("30 1 * * *", NEW_YORK, "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "not the second 01:30"),
            ("30 1 * * *", NEW_YORK, "2026-11-01T06:00:00Z", "2026-11-02T06:30:00Z", "from inside the repeat"),
            ("0 * * * *", NEW_YORK, "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "01:00 EST then 03:00 EDT"),
            ("0 * * * *", NEW_YORK, "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "01:00 EDT then 01:00 EST"),
            ("0 * * * *", NEW_YORK, "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", "01:00 EST then 02:00 EST"),
            ("*/15 * * * *", NEW_YORK, "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "01:45 EST then 03:00 EDT"),
            ("*/15 * * * *", NEW_YORK, "2026-11-01T05:45:00Z", "2026-11-01T06:00:00Z", "01:45 EDT then 01:00 EST"),
            ("*/15 * * * *", NEW_YORK, "2026-11-01T06:45:00Z", "2026-11-01T07:00:00Z", "01:45 EST then 02:00 EST"),
            ("0 0 L * *", NEW_YORK, "2026-02-01T05:00:00Z", "2026-02-28T05:00:00Z", "28 February, EST"),
            ("0 0 L * *", NEW_YORK, "2026-02-28T05:00:00Z", "2026-03-31T04:00:00Z", "31 March, EDT"),
            ("0 9 * * 1-5", NEW_YORK, "2026-03-06T15:00:00Z", "2026-03-09T13:00:00Z", "Friday, then Monday in EDT"),
            ("0 9 * * 1-5", NEW_YORK, "2026-10-30T14:00:00Z", "2026-11-02T14:00:00Z", "Friday, then Monday in EST"),
            // Europe/London: GMT is UTC, BST UTC+1; the clocks change at 01:00 UTC.
            ("0 3 * * *", LONDON, "2026-03-27T12:00:00Z", "2026-03-28T03:00:00Z", "03:00 GMT"),
            ("0 3 * * *", LONDON, "2026-03-28T12:00:00Z", "2026-03-29T02:00:00Z", "03:00 BST on spring-forward day"),
            ("0 3 * * *", LONDON, "2026-10-23T12:00:00Z", "2026-10-24T02:00:00Z", "03:00 BST"),
            ("0 3 * * *", LONDON, "2026-10-24T12:00:00Z", "2026-10-25T03:00:00Z", "03:00 GMT on fall-back day"),
            ("30 1 * * *", LONDON, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z", "01:30 is skipped: 02:00 BST"),
            ("30 1 * * *", LONDON, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z", "the first 01:30, BST"),
            ("30 1 * * *", LONDON, "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "not the second 01:30"),
            ("0 * * * *", LONDON, "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "00:00 GMT then 02:00 BST"),
            ("0 * * * *", LONDON, "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "01:00 BST then 01:00 GMT"),
            // Australia/Lord_Howe: LHST is UTC+10:30, LHDT UTC+11; half-hour changes at 02:00.
            ("15 2 * * *", LORD_HOWE, "2026-10-03T00:00:00Z", "2026-10-03T15:30:00Z", "02:15 is skipped: 02:30 LHDT"),
            ("15 2 * * *", LORD_HOWE, "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z", "02:15 LHDT the day after"),
            ("45 1 * * *", LORD_HOWE, "2026-04-04T00:00:00Z", "2026-04-04T14:45:00Z", "the first 01:45, LHDT"),
            ("45 1 * * *", LORD_HOWE, "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z", "not the second 01:45"),
            ("*/15 * * * *", LORD_HOWE, "2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z", "01:45 LHDT then 01:30 LHST"),
            ("*/15 * * * *", LORD_HOWE, "2026-04-04T15:15:00Z", "2026-04-04T15:30:00Z", "01:45 LHST then 02:00 LHST"),
            ("*/15 * * * *", LORD_HOWE, "2026-10-03T15:15:00Z", "2026-10-03T15:30:00Z", "01:45 LHST then 02:30 LHDT"),
            ("0 * * * *", LORD_HOWE, "2026-10-03T14:30:00Z", "2026-10-03T16:00:00Z", "02:00 does not exist: 03:00"),
            ("0 * * * *", LORD_HOWE, "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z", "01:00 LHDT then 02:00 LHST"),
            // UTC, and the L, W and # forms.
            ("0 0 L * *", None, "2028-02-01T00:00:00Z", "2028-02-29T00:00:00Z", "leap year"),
            ("0 9 * * 5L", None, "2026-01-01T00:00:00Z", "2026-01-30T09:00:00Z", "last Friday of January"),
            ("0 9 * * 5#L", None, "2026-01-01T00:00:00Z", "2026-01-30T09:00:00Z", "last Friday of January"),
            ("0 9 * * 1#2", None, "2026-01-01T00:00:00Z", "2026-01-12T09:00:00Z", "second Monday of January"),
            ("0 9 15W * *", None, "2026-02-01T00:00:00Z", "2026-02-16T09:00:00Z", "the 15th is a Sunday"),
            ("0 9 LW * *", None, "2026-05-01T00:00:00Z", "2026-05-29T09:00:00Z", "31 May is a Sunday"),
            ("0 0 29 2 *", None, "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "the next 29 February"),
            // Strictly after, to the millisecond.
            ("* * * * *", None, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "not the same minute"),
            ("* * * * *", None, "2026-01-01T00:00:59.999Z", "2026-01-01T00:01:00Z", "the next minute"),
            ("* * * * *", None, "2026-01-01T00:00:00.001Z", "2026-01-01T00:01:00Z", "the next minute"),
            ("0 12 * * *", Some("Asia/Kolkata"), "2026-06-01T00:00:00Z", "2026-06-01T06:30:00Z", "UTC+5:30"),
        ];
        for (expression, zone, after, expected, why) in cases {
            let cron = Cron::parse(expression, zone).unwrap_or_else(|e| panic!("{expression}: {e}"));
            assert_eq!(cron.next_after(t(after)), Some(t(expected)), "`{expression}` in {zone:?} after {after}: {why}");
        }
    }

    #[test]
    fn fixed_times_fire_exactly_once_each_day_of_2026() {
        // Each expression names a time that one of the zone's 2026 changes skips or repeats.
        let cases = [
            ("30 2 * * *", NEW_YORK),
            ("30 1 * * *", NEW_YORK),
            ("0 2 * * *", NEW_YORK),
            ("30 1 * * *", LONDON),
            ("0 3 * * *", LONDON),
            ("15 2 * * *", LORD_HOWE),
            ("45 1 * * *", LORD_HOWE),
        ];
        for (expression, zone) in cases {
            let cron = Cron::parse(expression, zone).unwrap();
            let tz: Tz = zone.unwrap().parse().unwrap();
            let mut per_day = BTreeMap::<NaiveDate, usize>::new();
            for fire in cron.upcoming(t("2025-12-30T00:00:00Z"), 380) {
                let local = fire.to_datetime().with_timezone(&tz).date_naive();
                *per_day.entry(local).or_default() += 1;
            }
            per_day.retain(|day, _| day.format("%Y").to_string() == "2026");
            assert_eq!(per_day.len(), 365, "`{expression}` in {zone:?} misses a day");
            assert!(per_day.values().all(|count| *count == 1), "`{expression}` in {zone:?} fires twice a day");
        }
    }

    #[test]
    fn upcoming_times_are_in_order() {
        let cron = Cron::parse("0 * * * *", NEW_YORK).unwrap();
        let expected = ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"];
        assert_eq!(cron.upcoming(t("2026-11-01T04:30:00Z"), 4), expected.map(t));

        for (expression, zone) in [("*/15 * * * *", LORD_HOWE), ("30 2 * * *", NEW_YORK), ("0 9 * * 1-5", LONDON)] {
            let cron = Cron::parse(expression, zone).unwrap();
            let after = t("2026-01-01T00:00:00Z");
            let times = cron.upcoming(after, 500);
            assert_eq!(times.len(), 500);
            assert!(times[0] > after);
            assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "`{expression}` out of order");
            assert_eq!(cron.next_after(after), Some(times[0]));
        }
        assert!(cron.upcoming(t("2026-01-01T00:00:00Z"), 0).is_empty());
    }

    #[test]
    fn latest_at_or_before_is_the_one_catch_up_run() {
        // (expression, zone, from, now, expected).
        let cases = [
            // A week of downtime with a minutely schedule: the last whole minute.
            ("* * * * *", None, "2026-03-01T00:00:00Z", "2026-03-08T00:00:30.500Z", Some("2026-03-08T00:00:00Z")),
            ("* * * * *", NEW_YORK, "2026-03-04T12:00:00Z", "2026-03-11T12:34:56Z", Some("2026-03-11T12:34:00Z")),
            // Both ends count.
            ("* * * * *", None, "2026-03-01T00:00:00Z", "2026-03-01T00:05:00Z", Some("2026-03-01T00:05:00Z")),
            ("0 0 * * *", None, "2026-03-01T00:00:00Z", "2026-03-01T12:00:00Z", Some("2026-03-01T00:00:00Z")),
            ("0 0 * * *", None, "2026-03-01T00:00:00.001Z", "2026-03-01T12:00:00Z", None),
            // Across the fall-back: the second 01:00 is the latest hour.
            ("0 * * * *", NEW_YORK, "2026-11-01T00:00:00Z", "2026-11-01T06:30:00Z", Some("2026-11-01T06:00:00Z")),
            // The spring-forward fire of a skipped time.
            ("30 2 * * *", NEW_YORK, "2026-03-07T12:00:00Z", "2026-03-08T08:00:00Z", Some("2026-03-08T07:00:00Z")),
            ("0 0 1 1 *", None, "2026-01-02T00:00:00Z", "2026-12-31T23:59:59Z", None),
            ("0 0 1 1 *", None, "2020-01-02T00:00:00Z", "2026-12-31T23:59:59Z", Some("2026-01-01T00:00:00Z")),
            ("* * * * *", None, "2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z", None),
        ];
        for (expression, zone, from, now, expected) in cases {
            let cron = Cron::parse(expression, zone).unwrap();
            assert_eq!(cron.latest_at_or_before(t(from), t(now)), expected.map(t), "`{expression}` in [{from}, {now}]");
        }
    }

    #[test]
    fn bad_expressions_and_zones_name_their_field() {
        let fields = "expected 5 fields (minute hour day-of-month month day-of-week)";
        // (expression, zone, field, text the message contains).
        let cases = [
            ("* * * * * *", None, "cron", format!("{fields}, got 6")),
            ("0 0 * * * * *", None, "cron", format!("{fields}, got 7")),
            ("* * * *", None, "cron", format!("{fields}, got 4")),
            ("", None, "cron", "the expression is empty".into()),
            ("   ", None, "cron", "the expression is empty".into()),
            ("@daily", None, "cron", "write `0 0 * * *`".into()),
            ("@often", None, "cron", fields.into()),
            ("61 * * * *", None, "cron", "minute `61` is not valid".into()),
            ("*/0 * * * *", None, "cron", "minute `*/0` is not valid".into()),
            ("MON * * * *", None, "cron", "minute `MON` is not valid (`MON` is not a value here)".into()),
            ("* 24 * * *", None, "cron", "hour `24` is not valid".into()),
            ("* * 0 * *", None, "cron", "day-of-month `0` is not valid".into()),
            ("* * 32 * *", None, "cron", "day-of-month `32` is not valid".into()),
            ("* * * 13 *", None, "cron", "month `13` is not valid".into()),
            ("* * * FOO *", None, "cron", "month `FOO` is not valid".into()),
            ("* * * * 8", None, "cron", "day-of-week `8` is not valid".into()),
            ("* * * * 1#6", None, "cron", "day-of-week `1#6` is not valid".into()),
            ("0 0 * * +1", None, "cron", "day-of-week `+1` is not valid (`+` is not supported)".into()),
            ("0 0 * * L", None, "cron", "day-of-week `L` is not valid (`L` needs a weekday before it".into()),
            ("a b c d e", None, "cron", "minute `A` is not valid".into()),
            ("0 0 31 2 *", None, "cron", "never fires".into()),
            ("0 0 31 4,6,9,11 *", None, "cron", "never fires".into()),
            ("* * * * *", Some("Mars/Olympus_Mons"), "timezone", "unknown time zone `Mars/Olympus_Mons`".into()),
            ("* * * * *", Some("america/new_york"), "timezone", "did you mean `America/New_York`?".into()),
            ("* * * * *", Some(""), "timezone", "the time zone is empty".into()),
            // The expression is checked first.
            ("* * * * * *", Some("Nowhere"), "cron", fields.into()),
        ];
        for (expression, zone, field, contains) in cases {
            let error = Cron::parse(expression, zone).expect_err(expression);
            assert_eq!(error.field, field, "`{expression}` in {zone:?}: {error}");
            assert!(error.message.contains(&contains), "`{expression}` in {zone:?}: {error}");
            assert_eq!(error.to_string(), format!("{field}: {}", error.message));
        }
        let six = Cron::parse("* * * * * *", None).unwrap_err();
        assert_eq!(six.to_string(), format!("cron: {fields}, got 6"));
    }

    #[test]
    fn accepts_trigger_dev_forms() {
        let cases = [
            "0 9 * * MON-FRI",
            "0 9 * * mon-fri",
            "0 0 1 JAN *",
            "0 0 1 jan-mar *",
            "0/15 * * * *",
            "5-55/10 * * * *",
            "0 0 ? * 1",
            "0 0 L * *",
            "0 0 LW * *",
            "0 22 * * 1L",
            "0 22 * * SUN#L",
            "0 9 1,15 * 0,7",
            "  0 9 * * 1  ",
            "0\t9 * * 1",
        ];
        for expression in cases {
            let cron = Cron::parse(expression, LONDON).unwrap_or_else(|e| panic!("{expression}: {e}"));
            assert_eq!(cron.expression(), expression.trim());
            assert_eq!(cron.timezone(), "Europe/London");
        }
        assert_eq!(Cron::parse("* * * * *", None).unwrap().timezone(), "UTC");
        assert_eq!(Cron::parse("* * * * *", Some("US/Eastern")).unwrap().timezone(), "US/Eastern");
    }

    #[test]
    fn lists_every_iana_zone() {
        let zones = timezones();
        assert_eq!(zones.len(), chrono_tz::TZ_VARIANTS.len());
        for zone in ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"] {
            assert!(zones.contains(&zone), "{zone}");
        }
        assert!(zones.iter().all(|zone| Cron::parse("0 0 * * *", Some(zone)).is_ok()));
    }
}
