//! [`TriggerOptions`]: how a run is triggered, typed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use stint_protocol::api;
use stint_protocol::types::Timestamp;

/// Options of a trigger, built with chained calls; every option of Trigger.dev's trigger.
///
/// ```
/// use std::time::Duration;
/// use stint_sdk::{Debounce, DebounceMode, TriggerOptions};
///
/// let options = TriggerOptions::new()
///     .queue("emails")
///     .concurrency_key("customer-42")
///     .delay(Duration::from_secs(90))
///     .tags(["welcome", "customer-42"])
///     .max_attempts(5)
///     .debounce(Debounce::new("customer-42", Duration::from_secs(5)).mode(DebounceMode::Trailing));
/// ```
///
/// The server refuses an option it does not support yet with a 422 that names it, rather than
/// ignoring it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerOptions {
    queue: Option<String>,
    concurrency_key: Option<String>,
    delay: Option<When>,
    ttl: Option<Duration>,
    idempotency_key: Option<String>,
    idempotency_key_ttl: Option<Duration>,
    debounce: Option<Debounce>,
    tags: Vec<String>,
    metadata: Option<Value>,
    max_attempts: Option<u32>,
    max_duration: Option<Duration>,
    priority: Option<Duration>,
    lock_to_version: Option<String>,
    machine: Option<String>,
    test: Option<bool>,
}

/// When a delayed run is due: after a while, or at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// This long after the trigger (whole seconds, rounded up).
    In(Duration),
    /// At this time; a time that has passed means no delay.
    At(SystemTime),
}

impl From<Duration> for When {
    fn from(delay: Duration) -> When {
        When::In(delay)
    }
}

impl From<SystemTime> for When {
    fn from(at: SystemTime) -> When {
        When::At(at)
    }
}

/// Debouncing: triggers with one key while the first run made with it is still delayed push
/// that run's start back instead of making new runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    key: String,
    delay: Duration,
    mode: DebounceMode,
    max_delay: Option<Duration>,
}

/// Which trigger of a debounced burst the run keeps the payload and options of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DebounceMode {
    /// The first's (Trigger.dev's default).
    #[default]
    Leading,
    /// The last's.
    Trailing,
}

impl Debounce {
    /// Debounces triggers with `key` (at most 512 characters), delaying the run by `delay` after
    /// each, in [`DebounceMode::Leading`] mode with no bound on the total delay.
    pub fn new(key: impl Into<String>, delay: Duration) -> Debounce {
        Debounce { key: key.into(), delay, mode: DebounceMode::Leading, max_delay: None }
    }

    /// Keeps the first or the last trigger's payload and options.
    pub fn mode(mut self, mode: DebounceMode) -> Debounce {
        self.mode = mode;
        self
    }

    /// Starts the run at the latest this long after its first trigger, however many follow.
    pub fn max_delay(mut self, max_delay: Duration) -> Debounce {
        self.max_delay = Some(max_delay);
        self
    }
}

impl TriggerOptions {
    /// No options: the task's queue, no delay, no key, no tags.
    pub fn new() -> TriggerOptions {
        TriggerOptions::default()
    }

    /// Runs in the named queue instead of the task's.
    pub fn queue(mut self, name: impl Into<String>) -> TriggerOptions {
        self.queue = Some(name.into());
        self
    }

    /// Runs in the sub-queue of this key: the queue's limit applies to each key on its own.
    pub fn concurrency_key(mut self, key: impl Into<String>) -> TriggerOptions {
        self.concurrency_key = Some(key.into());
        self
    }

    /// Queues the run only after a delay (a [`Duration`]) or at a time (a [`SystemTime`]).
    pub fn delay(mut self, when: impl Into<When>) -> TriggerOptions {
        self.delay = Some(when.into());
        self
    }

    /// Expires the run if it has not started this long after it was queued.
    pub fn ttl(mut self, ttl: Duration) -> TriggerOptions {
        self.ttl = Some(ttl);
        self
    }

    /// Makes at most one run per environment, task and key while the key applies: a trigger with
    /// a key a live run holds returns that run, `is_cached`.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> TriggerOptions {
        self.idempotency_key = Some(key.into());
        self
    }

    /// How long the idempotency key applies (whole seconds; the server's default is 30 days).
    pub fn idempotency_key_ttl(mut self, ttl: Duration) -> TriggerOptions {
        self.idempotency_key_ttl = Some(ttl);
        self
    }

    /// Debounces this trigger with others of the same key.
    pub fn debounce(mut self, debounce: Debounce) -> TriggerOptions {
        self.debounce = Some(debounce);
        self
    }

    /// Adds a tag (at most 10 per run, each at most 128 characters).
    pub fn tag(mut self, tag: impl Into<String>) -> TriggerOptions {
        self.tags.push(tag.into());
        self
    }

    /// Adds tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> TriggerOptions {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The run's first metadata: a JSON object of at most 256 KB serialized.
    pub fn metadata(mut self, metadata: impl Into<Value>) -> TriggerOptions {
        self.metadata = Some(metadata.into());
        self
    }

    /// Allows this many attempts, instead of the task's retry settings.
    pub fn max_attempts(mut self, attempts: u32) -> TriggerOptions {
        self.max_attempts = Some(attempts);
        self
    }

    /// Stops an attempt running longer than this (whole seconds, at least 1).
    pub fn max_duration(mut self, limit: Duration) -> TriggerOptions {
        self.max_duration = Some(limit);
        self
    }

    /// Orders the run in its queue as if it had been queued this much earlier.
    pub fn priority(mut self, ahead: Duration) -> TriggerOptions {
        self.priority = Some(ahead);
        self
    }

    /// Runs on this version of the workers.
    pub fn lock_to_version(mut self, version: impl Into<String>) -> TriggerOptions {
        self.lock_to_version = Some(version.into());
        self
    }

    /// Asks for this machine preset (`small-1x`, …).
    pub fn machine(mut self, preset: impl Into<String>) -> TriggerOptions {
        self.machine = Some(preset.into());
        self
    }

    /// Marks the run as a test run.
    pub fn test(mut self, test: bool) -> TriggerOptions {
        self.test = Some(test);
        self
    }

    /// The options as the API takes them, with `parent` as `parentRunId`.
    ///
    /// They are written out in their wire form and read back as the protocol's type, so the SDK
    /// speaks the API's JSON whatever Rust types the protocol crate gives each option.
    pub(crate) fn to_wire(&self, parent: Option<&str>) -> Result<api::TriggerOptions, crate::Error> {
        let mut wire = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                wire.insert(name.to_string(), value);
            }
        };
        put("queue", self.queue.as_ref().map(|name| json!({"name": name})));
        put("concurrencyKey", self.concurrency_key.clone().map(Value::from));
        put(
            "delay",
            self.delay.map(|when| match when {
                When::In(delay) => Value::from(duration_text(delay)),
                When::At(at) => Value::from(date_text(at)),
            }),
        );
        put("ttl", self.ttl.map(|ttl| Value::from(duration_text(ttl))));
        put("idempotencyKey", self.idempotency_key.clone().map(Value::from));
        put("idempotencyKeyTTL", self.idempotency_key_ttl.map(|ttl| Value::from(duration_text(ttl))));
        put(
            "debounce",
            self.debounce.as_ref().map(|debounce| {
                let mut value = json!({
                    "key": debounce.key,
                    "delay": duration_text(debounce.delay),
                    "mode": match debounce.mode {
                        DebounceMode::Leading => "leading",
                        DebounceMode::Trailing => "trailing",
                    },
                });
                if let Some(max_delay) = debounce.max_delay {
                    value["maxDelay"] = Value::from(duration_text(max_delay));
                }
                value
            }),
        );
        put("tags", (!self.tags.is_empty()).then(|| Value::from(self.tags.clone())));
        put("metadata", self.metadata.clone());
        put("maxAttempts", self.max_attempts.map(Value::from));
        put("maxDuration", self.max_duration.map(|limit| Value::from(whole_seconds(limit))));
        put("priority", self.priority.map(|ahead| Value::from(ahead.as_secs_f64())));
        put("lockToVersion", self.lock_to_version.clone().map(Value::from));
        put("machine", self.machine.clone().map(Value::from));
        put("test", self.test.map(Value::from));
        put("parentRunId", parent.map(Value::from));
        serde_json::from_value(Value::Object(wire))
            .map_err(|error| crate::Error::Invalid(format!("the trigger options cannot be sent: {error}")))
    }
}

/// Whole seconds, rounded up: a delay is never shorter than asked.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// A duration as Trigger.dev writes one: `90s`.
fn duration_text(duration: Duration) -> String {
    format!("{}s", whole_seconds(duration))
}

/// A time as RFC 3339 text with milliseconds.
pub(crate) fn date_text(at: SystemTime) -> String {
    let ms = at.duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    Timestamp(ms).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_its_wire_name_and_form() {
        let options = TriggerOptions::new()
            .queue("q")
            .concurrency_key("k")
            .delay(Duration::from_millis(1_500))
            .ttl(Duration::from_secs(600))
            .idempotency_key("once")
            .idempotency_key_ttl(Duration::from_secs(3_600))
            .debounce(
                Debounce::new("d", Duration::from_secs(5))
                    .mode(DebounceMode::Trailing)
                    .max_delay(Duration::from_secs(60)),
            )
            .tag("a")
            .tags(["b", "c"])
            .metadata(json!({"m": 1}))
            .max_attempts(3)
            .max_duration(Duration::from_secs(30))
            .priority(Duration::from_millis(2_500))
            .lock_to_version("20250101.1")
            .machine("small-1x")
            .test(true);
        let wire = serde_json::to_value(options.to_wire(Some("run_parent")).unwrap()).unwrap();
        assert_eq!(
            wire,
            json!({
                "queue": {"name": "q"}, "concurrencyKey": "k", "delay": "2s", "ttl": "600s",
                "idempotencyKey": "once", "idempotencyKeyTTL": "3600s",
                "debounce": {"key": "d", "delay": "5s", "mode": "trailing", "maxDelay": "60s"},
                "tags": ["a", "b", "c"], "metadata": {"m": 1}, "maxAttempts": 3, "maxDuration": 30.0,
                "priority": 2.5, "lockToVersion": "20250101.1", "machine": "small-1x", "test": true,
                "parentRunId": "run_parent"
            })
        );
        assert_eq!(serde_json::to_value(TriggerOptions::new().to_wire(None).unwrap()).unwrap(), json!({}));
    }

    #[test]
    fn a_delay_until_a_time_is_a_date() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let wire = serde_json::to_value(TriggerOptions::new().delay(at).to_wire(None).unwrap()).unwrap();
        assert_eq!(wire, json!({"delay": "2023-11-14T22:13:20.123Z"}));
    }
}
