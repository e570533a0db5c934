//! [`Metadata`]: a run's metadata as its task reads and changes it.
//!
//! Changes apply at once to the task's own copy, so [`Metadata::get`] sees them, and are queued
//! for the server: the worker sends them about every second while the attempt runs, and the last
//! ones with its completion, so the run's final metadata is stored with its final state.

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};
use stint_protocol::types::metadata::{self, Operation};

pub use stint_protocol::types::metadata::Error as MetadataError;

/// The metadata of the run a task is executing: a JSON object the run carries, which the API
/// shows (`GET /api/v1/runs/{id}/metadata`, and `metadata` on the run) while the run executes
/// and after.
///
/// Keys are property names, or paths `$.a.b` into nested objects (created as needed); `__proto__`,
/// `constructor` and `prototype` are refused. A change that would make the metadata larger than
/// 256 KB serialized is refused and changes nothing.
///
/// ```no_run
/// # fn example(ctx: stint_sdk::TaskContext) -> Result<(), stint_sdk::MetadataError> {
/// let metadata = ctx.metadata();
/// metadata.set("status", "downloading")?;
/// metadata.increment("$.progress.done", 1)?;
/// metadata.append("log", "fetched page 1")?;
/// assert_eq!(metadata.get("$.progress.done"), Some(serde_json::json!(1)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Metadata {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    inner: Mutex<Inner>,
    /// Held while this attempt's operations are on their way to the server, so the last ones
    /// (sent with the completion) never overtake earlier ones.
    sending: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Default)]
struct Inner {
    current: Map<String, Value>,
    /// Operations not yet sent, oldest first.
    pending: Vec<Operation>,
    /// The attempt has ended: changes are no longer sent.
    closed: bool,
}

impl Metadata {
    /// The metadata a run was dequeued with (an object; anything else counts as empty).
    pub(crate) fn new(initial: Option<Value>) -> Metadata {
        let current = match initial {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let inner = Mutex::new(Inner { current, ..Inner::default() });
        Metadata { state: Arc::new(State { inner, sending: Arc::default() }) }
    }

    /// The value at `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Value> {
        metadata::get(&self.state.inner.lock().current, key).cloned()
    }

    /// The whole metadata object.
    pub fn current(&self) -> Map<String, Value> {
        self.state.inner.lock().current.clone()
    }

    /// Sets the value at `key`.
    pub fn set(&self, key: &str, value: impl Into<Value>) -> Result<(), MetadataError> {
        self.change(Operation::Set { key: key.into(), value: value.into() })
    }

    /// Removes the value at `key`, if there is one.
    pub fn delete(&self, key: &str) -> Result<(), MetadataError> {
        self.change(Operation::Delete { key: key.into() })
    }

    /// Appends `value` to the array at `key`: a missing value becomes `[value]`, a value that is
    /// not an array `[old, value]`.
    pub fn append(&self, key: &str, value: impl Into<Value>) -> Result<(), MetadataError> {
        self.change(Operation::Append { key: key.into(), value: value.into() })
    }

    /// Removes the elements equal to `value` from the array at `key`.
    pub fn remove(&self, key: &str, value: impl Into<Value>) -> Result<(), MetadataError> {
        self.change(Operation::Remove { key: key.into(), value: value.into() })
    }

    /// Adds `by` to the number at `key` (a missing value, or one that is not a number, counts as
    /// 0); a negative `by` decrements.
    pub fn increment(&self, key: &str, by: impl Into<f64>) -> Result<(), MetadataError> {
        self.change(Operation::Increment { key: key.into(), value: by.into() })
    }

    /// Replaces the whole object.
    pub fn replace(&self, object: Map<String, Value>) -> Result<(), MetadataError> {
        self.change(Operation::Update { value: object })
    }

    /// Applies `operation` to the task's copy and queues it for the server, or changes nothing
    /// and says why it cannot apply.
    fn change(&self, operation: Operation) -> Result<(), MetadataError> {
        let mut inner = self.state.inner.lock();
        let changed = metadata::apply_all(&inner.current, std::slice::from_ref(&operation))?;
        metadata::check_size(&changed)?;
        inner.current = changed;
        if inner.closed {
            tracing::warn!("metadata changed after its attempt ended; the change is not sent to the server");
            return Ok(());
        }
        queue(&mut inner.pending, operation);
        Ok(())
    }

    /// Whether changes wait to be sent.
    pub(crate) fn has_pending(&self) -> bool {
        !self.state.inner.lock().pending.is_empty()
    }

    /// The lock held while this attempt's operations are being sent.
    pub(crate) fn sending(&self) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(&self.state.sending)
    }

    /// Takes the operations waiting to be sent.
    pub(crate) fn take_pending(&self) -> Vec<Operation> {
        std::mem::take(&mut self.state.inner.lock().pending)
    }

    /// Puts back operations whose sending failed, ahead of those queued since.
    pub(crate) fn restore(&self, mut operations: Vec<Operation>) {
        let mut inner = self.state.inner.lock();
        operations.append(&mut inner.pending);
        inner.pending = operations;
    }

    /// Ends the attempt's changes: waits for a send in flight to be answered, then takes what was
    /// not sent, for the completion. Later changes are not sent.
    pub(crate) async fn finish(&self) -> Vec<Operation> {
        let _sending = self.state.sending.lock().await;
        let mut inner = self.state.inner.lock();
        inner.closed = true;
        std::mem::take(&mut inner.pending)
    }
}

/// Queues `operation`, folding it into the last one when together they are one: increments of a
/// key add up, and a set replaces a set of the same key. A task counting in a loop then sends one
/// operation a second, not thousands.
fn queue(pending: &mut Vec<Operation>, operation: Operation) {
    match (pending.last_mut(), operation) {
        (Some(Operation::Increment { key, value }), Operation::Increment { key: next, value: by }) if *key == next => {
            *value += by;
        }
        (Some(Operation::Set { key, value }), Operation::Set { key: next, value: new }) if *key == next => {
            *value = new;
        }
        (_, operation) => pending.push(operation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_apply_locally_and_queue_folded() {
        let metadata = Metadata::new(Some(json!({"n": 1})));
        metadata.increment("n", 1.0).unwrap();
        metadata.increment("n", 2.0).unwrap();
        metadata.set("s", "a").unwrap();
        metadata.set("s", "b").unwrap();
        metadata.append("$.log.lines", "x").unwrap();
        assert_eq!(metadata.get("n"), Some(json!(4)));
        assert_eq!(Value::Object(metadata.current()), json!({"n": 4, "s": "b", "log": {"lines": ["x"]}}));
        let pending = metadata.take_pending();
        assert_eq!(
            serde_json::to_value(&pending).unwrap(),
            json!([
                {"type": "increment", "key": "n", "value": 3.0},
                {"type": "set", "key": "s", "value": "b"},
                {"type": "append", "key": "$.log.lines", "value": "x"}
            ])
        );
        assert!(!metadata.has_pending());
    }

    #[test]
    fn refused_changes_change_nothing() {
        let metadata = Metadata::new(Some(json!({"a": 1})));
        assert!(metadata.set("$.__proto__.polluted", true).is_err());
        assert!(metadata.set("$.a.b", 1).is_err(), "a is a number");
        assert!(matches!(metadata.set("big", "x".repeat(300_000)), Err(MetadataError::TooLarge { .. })));
        assert_eq!(Value::Object(metadata.current()), json!({"a": 1}));
        assert!(!metadata.has_pending());
    }

    #[tokio::test]
    async fn failed_sends_are_restored_ahead_and_finishing_takes_the_rest() {
        let metadata = Metadata::new(None);
        metadata.append("l", 1).unwrap();
        let sent = metadata.take_pending();
        metadata.append("l", 2).unwrap();
        metadata.restore(sent);
        let last = metadata.finish().await;
        assert_eq!(last.len(), 2);
        assert_eq!(last[0], Operation::Append { key: "l".into(), value: json!(1) });
        metadata.set("late", 1).unwrap();
        assert!(!metadata.has_pending(), "changes after the attempt ended are not sent");
    }
}
