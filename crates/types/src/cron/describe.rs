//! Cron expressions in words, like cronstrue (which Trigger.dev uses for a schedule's
//! `generator.description`) with a 24-hour clock.
//!
//! Only common forms have words; for anything else [`describe`] returns `None` and the caller
//! shows the expression.

/// The weekdays by cron number, Sunday first.
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const WEEKDAY_ABBREVIATIONS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTH_ABBREVIATIONS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const ORDINALS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];

/// Describes five valid, upper-cased fields, or `None` for a form without words.
pub(super) fn describe(fields: &[String; 5]) -> Option<String> {
    let [minute, hour, day_of_month, month, day_of_week] = fields;
    let mut parts = vec![time(minute, hour)?];
    let days = day_of_month_phrase(day_of_month)?;
    let weekdays = day_of_week_phrase(day_of_week)?;
    match (days, weekdays) {
        (Some(days), Some(weekdays)) => {
            parts.push(days);
            parts.push(format!("and {weekdays}"));
        }
        (days, weekdays) => parts.extend(days.into_iter().chain(weekdays)),
    }
    parts.extend(month_phrase(month)?);
    Some(parts.join(", "))
}

/// One field read as a simple form: the ones with words.
#[derive(Debug, PartialEq)]
enum Simple {
    /// `*` or `?`.
    Any,
    /// `*/n`.
    Every(u32),
    /// `a,b,c` or one value, sorted.
    Values(Vec<u32>),
    /// `a-b`.
    Range(u32, u32),
}

/// Reads a field without `L`, `W` or `#`, with `names` (indexed from `first`) standing for numbers.
fn simple(field: &str, names: &[&str], first: u32) -> Option<Simple> {
    let number = |text: &str| -> Option<u32> {
        text.parse().ok().or_else(|| names.iter().position(|name| *name == text).map(|i| i as u32 + first))
    };
    if field == "*" || field == "?" {
        return Some(Simple::Any);
    }
    if let Some(step) = field.strip_prefix("*/") {
        return step.parse().ok().map(Simple::Every);
    }
    if let Some((from, to)) = field.split_once('-') {
        return Some(Simple::Range(number(from)?, number(to)?));
    }
    let mut values = field.split(',').map(number).collect::<Option<Vec<u32>>>()?;
    values.sort_unstable();
    values.dedup();
    Some(Simple::Values(values))
}

/// The time-of-day phrase, which every description starts with.
fn time(minute: &str, hour: &str) -> Option<String> {
    let minute = simple(minute, &[], 0)?;
    let hour = simple(hour, &[], 0)?;
    let past_the_hour = |minutes: &[u32]| match minutes {
        [0] => "Every hour".to_owned(),
        [one] => format!("At {} past the hour", plural(*one, "minute")),
        _ => format!("At {} minutes past the hour", join(&numbers(minutes))),
    };
    let within_hours = |from: u32, to: u32| format!("between {from:02}:00 and {to:02}:59");
    Some(match (&minute, &hour) {
        (Simple::Any, Simple::Any) => "Every minute".to_owned(),
        (Simple::Every(n), Simple::Any) => format!("Every {}", plural(*n, "minute")),
        (Simple::Values(minutes), Simple::Any) => past_the_hour(minutes),
        (Simple::Values(minutes), Simple::Values(hours)) if minutes.len() * hours.len() <= 6 => {
            let times: Vec<String> =
                hours.iter().flat_map(|h| minutes.iter().map(move |m| format!("{h:02}:{m:02}"))).collect();
            format!("At {}", join(&times))
        }
        (Simple::Values(minutes), Simple::Every(n)) => match minutes.as_slice() {
            [0] => format!("Every {}", plural(*n, "hour")),
            _ => format!("{}, every {}", past_the_hour(minutes), plural(*n, "hour")),
        },
        (_, Simple::Range(from, to)) => {
            format!("{}, {}", every_minutes(&minute, past_the_hour)?, within_hours(*from, *to))
        }
        (_, Simple::Values(hours)) if hours.len() == 1 => {
            format!("{}, {}", every_minutes(&minute, past_the_hour)?, within_hours(hours[0], hours[0]))
        }
        _ => return None,
    })
}

/// The minute phrase of a time within some hours: "Every minute", "Every 5 minutes".
fn every_minutes(minute: &Simple, past_the_hour: impl Fn(&[u32]) -> String) -> Option<String> {
    Some(match minute {
        Simple::Any => "Every minute".to_owned(),
        Simple::Every(n) => format!("Every {}", plural(*n, "minute")),
        Simple::Values(minutes) => past_the_hour(minutes),
        Simple::Range(..) => return None,
    })
}

/// The day-of-month phrase; `Some(None)` when the field is `*`.
fn day_of_month_phrase(field: &str) -> Option<Option<String>> {
    let phrase = match field {
        "L" => "on the last day of the month".to_owned(),
        "LW" => "on the last weekday of the month".to_owned(),
        _ if field.ends_with('W') => format!("on the weekday nearest day {} of the month", field.trim_end_matches('W')),
        _ => match simple(field, &[], 0)? {
            Simple::Any => return Some(None),
            Simple::Every(n) => format!("every {}", plural(n, "day")),
            Simple::Values(days) if days.len() == 1 => format!("on day {} of the month", days[0]),
            Simple::Values(days) => format!("on days {} of the month", join(&numbers(&days))),
            Simple::Range(from, to) => format!("between day {from} and {to} of the month"),
        },
    };
    Some(Some(phrase))
}

/// The day-of-week phrase; `Some(None)` when the field is `*`.
fn day_of_week_phrase(field: &str) -> Option<Option<String>> {
    let weekday = |text: &str| -> Option<&str> {
        let number =
            text.parse::<usize>().ok().or_else(|| WEEKDAY_ABBREVIATIONS.iter().position(|name| *name == text))?;
        WEEKDAYS.get(number % 7).copied()
    };
    if let Some(day) = field.strip_suffix("#L").or_else(|| field.strip_suffix('L').filter(|day| !day.is_empty())) {
        return Some(Some(format!("on the last {} of the month", weekday(day)?)));
    }
    if let Some((day, nth)) = field.split_once('#') {
        let ordinal = ORDINALS.get(nth.parse::<usize>().ok()?.checked_sub(1)?)?;
        return Some(Some(format!("on the {ordinal} {} of the month", weekday(day)?)));
    }
    let name = |n: u32| WEEKDAYS[n as usize % 7];
    Some(Some(match simple(field, &WEEKDAY_ABBREVIATIONS, 0)? {
        Simple::Any => return Some(None),
        Simple::Values(days) => {
            // 0 and 7 are both Sunday.
            let mut days: Vec<u32> = days.iter().map(|d| d % 7).collect();
            days.sort_unstable();
            days.dedup();
            format!("only on {}", join(&days.iter().map(|d| name(*d).to_owned()).collect::<Vec<_>>()))
        }
        Simple::Range(from, to) => format!("{} through {}", name(from), name(to)),
        Simple::Every(_) => return None,
    }))
}

/// The month phrase; `Some(None)` when the field is `*`.
fn month_phrase(field: &str) -> Option<Option<String>> {
    let name = |n: u32| MONTHS.get(n.checked_sub(1)? as usize).copied();
    Some(Some(match simple(field, &MONTH_ABBREVIATIONS, 1)? {
        Simple::Any => return Some(None),
        Simple::Every(n) => format!("every {}", plural(n, "month")),
        Simple::Values(months) => {
            format!(
                "only in {}",
                join(&months.iter().map(|m| name(*m).map(str::to_owned)).collect::<Option<Vec<_>>>()?)
            )
        }
        Simple::Range(from, to) => format!("{} through {}", name(from)?, name(to)?),
    }))
}

/// `1 minute`, `5 minutes`.
fn plural(n: u32, unit: &str) -> String {
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

fn numbers(values: &[u32]) -> Vec<String> {
    values.iter().map(u32::to_string).collect()
}

/// `a`, `a and b`, `a, b and c`.
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cron;

    #[test]
    fn describes_common_forms() {
        let cases = [
            ("* * * * *", "Every minute"),
            ("*/15 * * * *", "Every 15 minutes"),
            ("*/1 * * * *", "Every 1 minute"),
            ("0 * * * *", "Every hour"),
            ("30 * * * *", "At 30 minutes past the hour"),
            ("0,30 * * * *", "At 0 and 30 minutes past the hour"),
            ("0 */2 * * *", "Every 2 hours"),
            ("15 */6 * * *", "At 15 minutes past the hour, every 6 hours"),
            ("0 3 * * *", "At 03:00"),
            ("30 9 * * 1-5", "At 09:30, Monday through Friday"),
            ("30 9 * * mon-fri", "At 09:30, Monday through Friday"),
            ("0 9,17 * * *", "At 09:00 and 17:00"),
            ("0 9 * * 1", "At 09:00, only on Monday"),
            ("0 9 * * 0,7", "At 09:00, only on Sunday"),
            ("0 9 * * 1,3,5", "At 09:00, only on Monday, Wednesday and Friday"),
            ("0 0 1 * *", "At 00:00, on day 1 of the month"),
            ("0 0 1,15 * *", "At 00:00, on days 1 and 15 of the month"),
            ("0 0 1-7 * *", "At 00:00, between day 1 and 7 of the month"),
            ("0 0 L * *", "At 00:00, on the last day of the month"),
            ("0 0 LW * *", "At 00:00, on the last weekday of the month"),
            ("0 9 15W * *", "At 09:00, on the weekday nearest day 15 of the month"),
            ("0 22 * * 5L", "At 22:00, on the last Friday of the month"),
            ("0 22 * * FRI#L", "At 22:00, on the last Friday of the month"),
            ("0 9 * * 1#2", "At 09:00, on the second Monday of the month"),
            ("0 0 1 1 *", "At 00:00, on day 1 of the month, only in January"),
            ("0 0 1 jan,jul *", "At 00:00, on day 1 of the month, only in January and July"),
            ("0 8 * 3-5 *", "At 08:00, March through May"),
            ("0 0 1 */3 *", "At 00:00, on day 1 of the month, every 3 months"),
            ("0 0 13 * 5", "At 00:00, on day 13 of the month, and only on Friday"),
            ("*/5 9-17 * * 1-5", "Every 5 minutes, between 09:00 and 17:59, Monday through Friday"),
            ("0 9-17 * * *", "Every hour, between 09:00 and 17:59"),
            ("* 3 * * *", "Every minute, between 03:00 and 03:59"),
            // Forms without words fall back to the expression.
            ("1-5 * * * *", "1-5 * * * *"),
            ("0 1-3,5 * * *", "0 1-3,5 * * *"),
            ("0/15 * * * *", "0/15 * * * *"),
            ("0,10,20,30 1,2 * * *", "0,10,20,30 1,2 * * *"),
        ];
        for (expression, expected) in cases {
            let cron = Cron::parse(expression, None).unwrap_or_else(|e| panic!("{expression}: {e}"));
            assert_eq!(cron.describe(), expected, "{expression}");
        }
    }
}
