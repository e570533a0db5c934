//! Run metadata: a JSON object a run carries, and the operations that change it (Trigger.dev's
//! `RunMetadataChangeOperation`s and `applyMetadataOperations`).
//!
//! A key is a top-level property name, or a path `$.a.b` into nested objects (and arrays, by
//! index); setting through a path creates the objects it passes through. Path segments that could
//! reach an object's prototype in JavaScript (`__proto__`, `constructor`, `prototype`) are refused,
//! as Trigger.dev refuses them, so metadata written here is safe to read there.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest metadata object, serialized (Trigger.dev's `TASK_RUN_METADATA_MAXIMUM_SIZE`).
pub const MAX_BYTES: usize = 256 * 1024;

/// Path segments refused anywhere in a key.
const FORBIDDEN: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// One change of a run's metadata, in Trigger.dev's JSON shape (`{"type": "set", "key": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Operation {
    /// Replaces the whole object, as Trigger.dev's `metadata.replace` does.
    Update {
        /// The new object.
        value: Map<String, Value>,
    },
    /// Sets the value at `key`.
    Set {
        /// Where.
        key: String,
        /// The value; `null` when absent.
        #[serde(default)]
        value: Value,
    },
    /// Removes the value at `key`, if there is one.
    Delete {
        /// Where.
        key: String,
    },
    /// Appends `value` to the array at `key`: a missing value becomes `[value]`, a value that is
    /// not an array becomes `[old, value]`.
    Append {
        /// Where.
        key: String,
        /// What to append.
        value: Value,
    },
    /// Removes every element equal to `value` from the array at `key`; anything else is left as
    /// it is.
    Remove {
        /// Where.
        key: String,
        /// What to remove.
        value: Value,
    },
    /// Adds `value` to the number at `key`; a missing value or one that is not a number counts
    /// as 0.
    Increment {
        /// Where.
        key: String,
        /// How much; negative to decrement.
        value: f64,
    },
}

impl Operation {
    /// The key the operation changes; `None` for [`Operation::Update`].
    pub fn key(&self) -> Option<&str> {
        match self {
            Operation::Update { .. } => None,
            Operation::Set { key, .. }
            | Operation::Delete { key }
            | Operation::Append { key, .. }
            | Operation::Remove { key, .. }
            | Operation::Increment { key, .. } => Some(key),
        }
    }
}

/// Why metadata could not be changed. Nothing is changed when an operation fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The key is empty, has an empty path segment, or has a segment that is not allowed.
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The path goes through a value that is neither an object nor an array, or indexes an array
    /// past its end.
    Unreachable {
        /// The key.
        key: String,
        /// Where the path stopped.
        reason: String,
    },
    /// The result, serialized, is over [`MAX_BYTES`].
    TooLarge {
        /// Its size.
        bytes: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidKey { key, reason } => write!(f, "metadata key '{key}' is invalid: {reason}"),
            Error::Unreachable { key, reason } => write!(f, "metadata key '{key}' cannot be reached: {reason}"),
            Error::TooLarge { bytes } => {
                write!(f, "metadata would be {bytes} bytes, over the limit of {MAX_BYTES}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The segments of `key`'s path: `$.a.b` is `[a, b]`; any other key is itself.
fn path(key: &str) -> Result<Vec<&str>, Error> {
    let invalid = |reason: String| Error::InvalidKey { key: key.to_string(), reason };
    let segments: Vec<&str> = match key.strip_prefix("$.") {
        Some(rest) => rest.split('.').collect(),
        None => vec![key],
    };
    for segment in &segments {
        if segment.is_empty() {
            return Err(invalid("it is empty or has an empty segment".into()));
        }
        if FORBIDDEN.contains(segment) {
            return Err(invalid(format!("the segment '{segment}' is not allowed")));
        }
    }
    Ok(segments)
}

/// Checks a key without using it: what [`apply`] refuses before touching anything.
pub fn check_key(key: &str) -> Result<(), Error> {
    path(key).map(drop)
}

/// The value at `key` in `metadata`, if there is one.
pub fn get<'v>(metadata: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    let segments = path(key).ok()?;
    let (first, rest) = segments.split_first()?;
    let mut value = metadata.get(*first)?;
    for name in rest {
        value = match value {
            Value::Object(object) => object.get(*name)?,
            Value::Array(items) => items.get(name.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Applies `operations` in order to a copy of `metadata` and returns it, or the first error,
/// leaving `metadata` as it was. The result is not checked against [`MAX_BYTES`]; see
/// [`check_size`].
pub fn apply_all(metadata: &Map<String, Value>, operations: &[Operation]) -> Result<Map<String, Value>, Error> {
    let mut changed = metadata.clone();
    for operation in operations {
        apply(&mut changed, operation)?;
    }
    Ok(changed)
}

/// Applies one operation. On an error `metadata` is as it was: every check comes before the
/// change.
pub fn apply(metadata: &mut Map<String, Value>, operation: &Operation) -> Result<(), Error> {
    match operation {
        Operation::Update { value } => {
            *metadata = value.clone();
            Ok(())
        }
        Operation::Set { key, value } => set(metadata, key, value.clone()),
        Operation::Delete { key } => delete(metadata, key),
        Operation::Append { key, value } => {
            let appended = match get(metadata, key).cloned() {
                None => Value::Array(vec![value.clone()]),
                Some(Value::Array(mut items)) => {
                    items.push(value.clone());
                    Value::Array(items)
                }
                Some(other) => Value::Array(vec![other, value.clone()]),
            };
            set(metadata, key, appended)
        }
        Operation::Remove { key, value } => {
            check_key(key)?;
            match get(metadata, key) {
                Some(Value::Array(items)) => {
                    let kept = items.iter().filter(|item| !same(item, value)).cloned().collect();
                    set(metadata, key, Value::Array(kept))
                }
                _ => Ok(()),
            }
        }
        Operation::Increment { key, value } => {
            let current = get(metadata, key).and_then(Value::as_f64).unwrap_or(0.0);
            set(metadata, key, number(current + value))
        }
    }
}

/// Serialized size of `metadata`, or [`Error::TooLarge`] when it is over [`MAX_BYTES`].
pub fn check_size(metadata: &Map<String, Value>) -> Result<usize, Error> {
    let bytes = serde_json::to_vec(metadata).map(|text| text.len()).unwrap_or(usize::MAX);
    if bytes > MAX_BYTES {
        return Err(Error::TooLarge { bytes });
    }
    Ok(bytes)
}

/// Sets the value at `key`, creating the objects its path passes through.
fn set(metadata: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), Error> {
    let segments = path(key)?;
    let (last, parents) = segments.split_last().expect("a path has a segment");
    let Some((first, between)) = parents.split_first() else {
        metadata.insert((*last).to_string(), value);
        return Ok(());
    };
    let unreachable = |reason: String| Error::Unreachable { key: key.to_string(), reason };
    let mut walked = format!("$.{first}");
    let mut container = metadata.entry((*first).to_string()).or_insert_with(|| Value::Object(Map::new()));
    for name in between {
        container = match container {
            Value::Object(object) => object.entry((*name).to_string()).or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => {
                let len = items.len();
                let index = name.parse::<usize>().ok().filter(|index| *index < len).ok_or_else(|| {
                    unreachable(format!("{walked} is an array of {len} elements, with no element '{name}'"))
                })?;
                &mut items[index]
            }
            _ => return Err(unreachable(format!("{walked} is neither an object nor an array"))),
        };
        walked.push('.');
        walked.push_str(name);
    }
    match container {
        Value::Object(object) => {
            object.insert((*last).to_string(), value);
        }
        Value::Array(items) => {
            let len = items.len();
            match last.parse::<usize>() {
                Ok(index) if index < len => items[index] = value,
                Ok(index) if index == len => items.push(value),
                _ => {
                    return Err(unreachable(format!(
                        "{walked} is an array of {len} elements; '{last}' is neither one of them nor the next"
                    )));
                }
            }
        }
        _ => return Err(unreachable(format!("{walked} is neither an object nor an array"))),
    }
    Ok(())
}

/// Removes the value at `key`, if there is one.
fn delete(metadata: &mut Map<String, Value>, key: &str) -> Result<(), Error> {
    let segments = path(key)?;
    let (last, parents) = segments.split_last().expect("a path has a segment");
    let Some((first, between)) = parents.split_first() else {
        metadata.remove(*last);
        return Ok(());
    };
    let Some(mut container) = metadata.get_mut(*first) else { return Ok(()) };
    for name in between {
        let next = match container {
            Value::Object(object) => object.get_mut(*name),
            Value::Array(items) => name.parse::<usize>().ok().and_then(|index| items.get_mut(index)),
            _ => None,
        };
        let Some(next) = next else { return Ok(()) };
        container = next;
    }
    match container {
        Value::Object(object) => {
            object.remove(*last);
        }
        Value::Array(items) => {
            if let Some(index) = last.parse::<usize>().ok().filter(|index| *index < items.len()) {
                items.remove(index);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A number as JSON: whole numbers as integers, so counting by 1 gives 1, 2, 3 rather than 1.0.
fn number(n: f64) -> Value {
    // Whole numbers within ±2^53 are exact both as f64 and as i64.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// JSON equality as JavaScript's deep equality sees it: numbers are equal by value, so `1` and
/// `1.0` are the same element.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn ops(value: Value) -> Vec<Operation> {
        serde_json::from_value(value).unwrap()
    }

    /// Each case: the metadata before, the operations, the metadata after.
    #[test]
    fn operations_change_metadata_as_trigger_dev_does() {
        let cases = [
            (json!({}), json!([{"type": "set", "key": "a", "value": 1}]), json!({"a": 1})),
            (json!({"a": 1}), json!([{"type": "set", "key": "a", "value": {"b": 2}}]), json!({"a": {"b": 2}})),
            (json!({}), json!([{"type": "set", "key": "$.a.b.c", "value": true}]), json!({"a": {"b": {"c": true}}})),
            (
                json!({"a": {"x": 1}}),
                json!([{"type": "set", "key": "$.a.y", "value": 2}]),
                json!({"a": {"x": 1, "y": 2}}),
            ),
            (json!({"a": [1, 2]}), json!([{"type": "set", "key": "$.a.1", "value": 9}]), json!({"a": [1, 9]})),
            (json!({"a": [1]}), json!([{"type": "set", "key": "$.a.1", "value": 2}]), json!({"a": [1, 2]})),
            (json!({"a.b": 1}), json!([{"type": "set", "key": "a.b", "value": 2}]), json!({"a.b": 2})),
            (json!({"a": 1, "b": 2}), json!([{"type": "delete", "key": "a"}]), json!({"b": 2})),
            (json!({"a": {"b": 1, "c": 2}}), json!([{"type": "delete", "key": "$.a.b"}]), json!({"a": {"c": 2}})),
            (json!({"a": 1}), json!([{"type": "delete", "key": "$.x.y"}]), json!({"a": 1})),
            (json!({}), json!([{"type": "append", "key": "log", "value": "x"}]), json!({"log": ["x"]})),
            (
                json!({"log": ["x"]}),
                json!([{"type": "append", "key": "log", "value": "y"}]),
                json!({"log": ["x", "y"]}),
            ),
            (json!({"log": "x"}), json!([{"type": "append", "key": "log", "value": "y"}]), json!({"log": ["x", "y"]})),
            (json!({}), json!([{"type": "append", "key": "$.a.log", "value": 1}]), json!({"a": {"log": [1]}})),
            (
                json!({"l": [1, 2, 1.0, {"k": [1]}]}),
                json!([{"type": "remove", "key": "l", "value": 1}, {"type": "remove", "key": "l", "value": {"k": [1.0]}}]),
                json!({"l": [2]}),
            ),
            (json!({"l": 5}), json!([{"type": "remove", "key": "l", "value": 5}]), json!({"l": 5})),
            (json!({}), json!([{"type": "remove", "key": "$.a.l", "value": 5}]), json!({})),
            (json!({}), json!([{"type": "increment", "key": "n", "value": 1}]), json!({"n": 1})),
            (json!({"n": 2}), json!([{"type": "increment", "key": "n", "value": -3}]), json!({"n": -1})),
            (json!({"n": "x"}), json!([{"type": "increment", "key": "n", "value": 1.5}]), json!({"n": 1.5})),
            (
                json!({}),
                json!([{"type": "increment", "key": "$.progress.done", "value": 1}, {"type": "increment", "key": "$.progress.done", "value": 1}]),
                json!({"progress": {"done": 2}}),
            ),
            (json!({"a": 1}), json!([{"type": "update", "value": {"b": 2}}]), json!({"b": 2})),
            (
                json!({"a": 1}),
                json!([{"type": "update", "value": {"b": 2}}, {"type": "set", "key": "c", "value": 3}]),
                json!({"b": 2, "c": 3}),
            ),
        ];
        for (before, operations, after) in cases {
            let changed = apply_all(&object(before.clone()), &ops(operations.clone())).unwrap();
            assert_eq!(Value::Object(changed), after, "{before} with {operations}");
        }
    }

    #[test]
    fn prototype_segments_and_empty_keys_are_refused_and_change_nothing() {
        let before = object(json!({"a": 1}));
        for key in ["__proto__", "$.a.__proto__", "$.constructor.x", "$.x.prototype", "", "$.", "$.a..b"] {
            let operations =
                ops(json!([{"type": "set", "key": "ok", "value": 1}, {"type": "set", "key": key, "value": 1}]));
            let error = apply_all(&before, &operations).unwrap_err();
            assert!(matches!(error, Error::InvalidKey { .. }), "{key}: {error}");
            assert!(error.to_string().contains(&format!("'{key}'")), "{error}");
        }
        assert!(check_key("$.a.b").is_ok());
        assert!(check_key("$.a.__proto__").is_err());
    }

    #[test]
    fn paths_through_scalars_or_past_an_arrays_end_are_refused() {
        let before = object(json!({"a": 5, "l": [1]}));
        for key in ["$.a.b", "$.l.5", "$.l.x.y", "$.l.3.y"] {
            let error = apply_all(&before, &ops(json!([{"type": "set", "key": key, "value": 1}]))).unwrap_err();
            assert!(matches!(error, Error::Unreachable { .. }), "{key}: {error}");
        }
    }

    #[test]
    fn values_are_read_by_key_or_path() {
        let metadata = object(json!({"a": {"b": [10, {"c": 3}]}, "x.y": 1}));
        assert_eq!(get(&metadata, "$.a.b.1.c"), Some(&json!(3)));
        assert_eq!(get(&metadata, "x.y"), Some(&json!(1)));
        assert_eq!(get(&metadata, "$.a.z"), None);
        assert_eq!(get(&metadata, "$.__proto__"), None);
    }

    #[test]
    fn size_is_checked_against_the_limit() {
        let small = object(json!({"a": "x"}));
        assert_eq!(check_size(&small), Ok(9));
        let large = object(json!({"a": "x".repeat(MAX_BYTES)}));
        assert!(matches!(check_size(&large), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn operations_have_trigger_devs_wire_shape() {
        let set = Operation::Set { key: "a".into(), value: json!(1) };
        assert_eq!(serde_json::to_value(&set).unwrap(), json!({"type": "set", "key": "a", "value": 1}));
        let update: Operation = serde_json::from_value(json!({"type": "update", "value": {"a": 1}})).unwrap();
        assert_eq!(update.key(), None);
        assert!(serde_json::from_value::<Operation>(json!({"type": "explode", "key": "a"})).is_err());
    }
}
