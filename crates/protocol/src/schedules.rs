//! The schedules API in Trigger.dev's shapes (`/api/v1/schedules…`, `/api/v1/timezones`), the
//! schedule a run shows, and the payload a scheduled task is triggered with.
//!
//! Request types refuse unknown fields, as in [`crate::api`]; response types accept them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use stint_types::{EnvironmentType, Timestamp};

use crate::queues::PagePosition;

/// Body of `POST /api/v1/schedules`: makes an imperative schedule, or updates the one of the
/// environment with the same `deduplicationKey`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateScheduleRequest {
    /// The task it triggers; the environment must know it.
    pub task: String,
    /// A 5-field cron expression (minute, hour, day of month, month, day of week).
    pub cron: String,
    /// Required, as in Trigger.dev: a create with a key the environment has updates that
    /// schedule, so sending a create again never makes a second schedule.
    pub deduplication_key: String,
    /// The creator's id for the schedule (a user's id, say); handed to each run in its payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The IANA time zone the expression is read in, daylight saving included; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Trigger.dev's spread of fire times; not supported yet, refused when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Value>,
}

/// Body of `PUT /api/v1/schedules/{id}`: the create's fields but the deduplication key. Replaces
/// the schedule's task, expression, time zone and external id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateScheduleRequest {
    /// The task it triggers.
    pub task: String,
    /// A 5-field cron expression.
    pub cron: String,
    /// The creator's id for the schedule; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The IANA time zone; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Trigger.dev's spread of fire times; not supported yet, refused when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Value>,
}

/// Where a schedule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScheduleType {
    /// Declared by a task in its code; changed only by changing the code.
    Declarative,
    /// Made through the API.
    Imperative,
}

/// A schedule (Trigger.dev's `ScheduleObject`), as every schedule route answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleObject {
    /// Its id, `sched_…`.
    pub id: String,
    /// Declarative or imperative.
    #[serde(rename = "type")]
    pub kind: ScheduleType,
    /// The task it triggers.
    pub task: String,
    /// Whether it triggers runs; an inactive schedule keeps its fire times.
    pub active: bool,
    /// The key it was created with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication_key: Option<String>,
    /// The creator's id for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Its cron expression and a description in words.
    pub generator: ScheduleGenerator,
    /// The IANA time zone the expression is read in.
    pub timezone: String,
    /// The next time it fires (ISO 8601, UTC); absent when the expression has no time left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// The environment it fires in.
    pub environments: Vec<ScheduleEnvironment>,
}

/// What makes a schedule's times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleGenerator {
    /// Always `CRON`.
    #[serde(rename = "type")]
    pub kind: GeneratorType,
    /// The cron expression.
    pub expression: String,
    /// The expression in words, like "At 03:00 AM".
    pub description: String,
}

/// The kind of a schedule's generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GeneratorType {
    /// A cron expression.
    Cron,
}

/// An environment a schedule fires in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleEnvironment {
    /// The environment's id.
    pub id: String,
    /// Its kind, `DEVELOPMENT`, `STAGING`, `PRODUCTION` or `PREVIEW`.
    #[serde(rename = "type")]
    pub kind: EnvironmentType,
    /// The user a development environment belongs to; Stint has no users, so always absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// A page of schedules (`GET /api/v1/schedules?page=&perPage=`), numbered from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleListResponse {
    /// The page.
    pub data: Vec<ScheduleObject>,
    /// Where the page is.
    pub pagination: PagePosition,
}

/// Answer of `GET /api/v1/timezones`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimezonesResponse {
    /// The IANA time zones a schedule accepts, `UTC` first unless `excludeUtc=true`, then by name.
    pub timezones: Vec<String>,
}

/// The schedule that fired a run, as `GET /api/v3/runs/{runId}` shows it (Trigger.dev's
/// `RunScheduleDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSchedule {
    /// The schedule's id.
    pub id: String,
    /// The creator's id for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The key it was created with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication_key: Option<String>,
    /// Its cron expression and a description in words.
    pub generator: ScheduleGenerator,
}

/// The payload of a run a schedule fired (Trigger.dev's `ScheduledTaskPayload`): JSON
/// `{scheduleId, type, timestamp, lastTimestamp?, externalId?, timezone, upcoming}`, times as
/// ISO 8601 text in UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePayload {
    /// The schedule that fired the run (`sched_…`); a task can have several.
    pub schedule_id: String,
    /// Declarative (declared by the task) or imperative (made through the API).
    #[serde(rename = "type")]
    pub kind: ScheduleType,
    /// The time the run was due, by the expression: a few ms before the run starts.
    #[serde(with = "iso")]
    pub timestamp: Timestamp,
    /// The time the schedule fired before this one; absent the first time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "iso_option")]
    pub last_timestamp: Option<Timestamp>,
    /// The creator's id for the schedule, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The IANA time zone the expression is read in (`UTC` by default).
    pub timezone: String,
    /// The next times the schedule fires, earliest first.
    #[serde(with = "iso_list")]
    pub upcoming: Vec<Timestamp>,
}

/// A time as ISO 8601 text; also read from a number of ms since the epoch.
mod iso {
    use super::*;

    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time.to_rfc3339())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Time {
            Text(String),
            Millis(i64),
        }
        match Time::deserialize(deserializer)? {
            Time::Millis(ms) => Ok(Timestamp(ms)),
            Time::Text(text) => Timestamp::parse(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("'{text}' is not an ISO 8601 date and time"))),
        }
    }
}

/// An optional time as ISO 8601 text.
mod iso_option {
    use super::*;

    pub fn serialize<S: Serializer>(time: &Option<Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => iso::serialize(time, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Timestamp>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "iso")] Timestamp);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(time)| time))
    }
}

/// Times as a list of ISO 8601 texts.
mod iso_list {
    use super::*;

    pub fn serialize<S: Serializer>(times: &[Timestamp], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(times.iter().map(|time| time.to_rfc3339()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Timestamp>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "iso")] Timestamp);
        Ok(Vec::<Wrapped>::deserialize(deserializer)?.into_iter().map(|Wrapped(time)| time).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_create_needs_its_deduplication_key_and_refuses_unknown_fields() {
        let missing = serde_json::from_value::<CreateScheduleRequest>(json!({"task": "t", "cron": "0 * * * *"}));
        assert!(missing.unwrap_err().to_string().contains("deduplicationKey"));
        let unknown = serde_json::from_value::<CreateScheduleRequest>(
            json!({"task": "t", "cron": "0 * * * *", "deduplicationKey": "k", "timeZone": "UTC"}),
        );
        assert!(unknown.unwrap_err().to_string().contains("timeZone"));
        let update = serde_json::from_value::<UpdateScheduleRequest>(
            json!({"task": "t", "cron": "0 * * * *", "deduplicationKey": "k"}),
        );
        assert!(update.is_err(), "an update does not take a deduplication key");
    }

    #[test]
    fn a_schedule_has_trigger_devs_shape() {
        let schedule = ScheduleObject {
            id: "sched_1".into(),
            kind: ScheduleType::Imperative,
            task: "t".into(),
            active: true,
            deduplication_key: Some("k".into()),
            external_id: None,
            generator: ScheduleGenerator {
                kind: GeneratorType::Cron,
                expression: "0 3 * * *".into(),
                description: "At 03:00 AM".into(),
            },
            timezone: "Europe/London".into(),
            next_run: Some("2026-12-01T03:00:00.000Z".into()),
            environments: vec![ScheduleEnvironment {
                id: "env_1".into(),
                kind: EnvironmentType::Production,
                user_name: None,
            }],
        };
        assert_eq!(
            serde_json::to_value(&schedule).unwrap(),
            json!({
                "id": "sched_1", "type": "IMPERATIVE", "task": "t", "active": true, "deduplicationKey": "k",
                "generator": {"type": "CRON", "expression": "0 3 * * *", "description": "At 03:00 AM"},
                "timezone": "Europe/London", "nextRun": "2026-12-01T03:00:00.000Z",
                "environments": [{"id": "env_1", "type": "PRODUCTION"}],
            })
        );
    }

    #[test]
    fn the_payload_reads_and_writes_iso_times() {
        let wire = json!({
            "scheduleId": "sched_1", "type": "DECLARATIVE", "timestamp": "2026-12-01T03:00:00.000Z",
            "timezone": "Europe/London", "upcoming": ["2026-12-02T03:00:00.000Z"],
        });
        let payload: SchedulePayload = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(payload.kind, ScheduleType::Declarative);
        assert_eq!(payload.timestamp, Timestamp::parse("2026-12-01T03:00:00Z").unwrap());
        assert_eq!(payload.last_timestamp, None);
        assert_eq!(payload.upcoming.len(), 1);
        assert_eq!(serde_json::to_value(&payload).unwrap(), wire);

        let later: SchedulePayload = serde_json::from_value(json!({
            "scheduleId": "sched_1", "type": "IMPERATIVE", "timestamp": "2026-12-02T04:00:00+01:00",
            "lastTimestamp": "2026-12-01T03:00:00.000Z", "externalId": "user-7", "timezone": "UTC", "upcoming": [],
        }))
        .unwrap();
        assert_eq!(later.timestamp.to_rfc3339(), "2026-12-02T03:00:00.000Z");
        assert_eq!(later.last_timestamp, Some(payload.timestamp));
        assert_eq!(later.external_id.as_deref(), Some("user-7"));
        let bad = serde_json::from_value::<SchedulePayload>(json!({
            "scheduleId": "s", "type": "IMPERATIVE", "timestamp": "tomorrow", "timezone": "UTC", "upcoming": [],
        }));
        assert!(bad.unwrap_err().to_string().contains("tomorrow"));
    }
}
