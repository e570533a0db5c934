//! Run metadata: read, replaced and changed by operations, through the API, by the worker running
//! the run, and with an attempt's completion.
//!
//! Metadata is read and written under the run's lock (`RunTable::run_lock`) and written only by
//! `RunTable::run_set_metadata`, never by a transition, so changes made here and moves of the run
//! made at the same time on other nodes never undo each other.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};
use stint_store::{EnvironmentRow, RunRow, Tx, WorkerRow};
use stint_types::metadata::{self, Operation};
use stint_types::{ExecutionStatus, RunId, SnapshotId, Timestamp};

use crate::Error;
use crate::shell::visible_run;

/// How long after it finished a run's metadata can still change through the API, as in
/// Trigger.dev (late flushes from a task land within it).
pub const UPDATABLE_AFTER_FINISH: Duration = Duration::from_secs(3600);

/// A change of a run's metadata through the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataChange {
    /// Replaces the metadata before the operations apply.
    pub metadata: Option<Map<String, Value>>,
    /// Operations on the run's metadata, in order.
    pub operations: Vec<Operation>,
    /// Operations on the parent run's metadata; ignored for a run without a parent.
    pub parent_operations: Vec<Operation>,
    /// Operations on the root run's metadata; ignored for a run without a root.
    pub root_operations: Vec<Operation>,
}

/// What became of a metadata change the worker holding a run sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldUpdate {
    /// The metadata changed.
    Updated,
    /// The worker no longer holds the run at that snapshot; nothing changed.
    Stale,
    /// No such run among the worker's environments; nothing changed.
    NotFound,
    /// The operations cannot apply (a bad key, a result over the size limit); nothing changed.
    Invalid(String),
}

/// A run's metadata as an object; a run without metadata has an empty one.
pub(crate) fn parse(run: &RunRow) -> Map<String, Value> {
    match run.metadata.as_deref().map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(map))) => map,
        _ => Map::new(),
    }
}

/// `changed` as stored text, if it is within the size limit.
fn encode(changed: &Map<String, Value>) -> Result<String, metadata::Error> {
    metadata::check_size(changed)?;
    Ok(Value::Object(changed.clone()).to_string())
}

/// Changes the metadata of a run of `env` (and of its parent and root), and returns the run's
/// new metadata. Each run changes entirely or not at all; a run that finished more than
/// [`UPDATABLE_AFTER_FINISH`] ago does not change.
pub(crate) async fn update(
    tx: &mut dyn Tx,
    now: Timestamp,
    env: &EnvironmentRow,
    run_id: &RunId,
    change: MetadataChange,
) -> Result<Map<String, Value>, Error> {
    let run = visible_run(tx, env, run_id).await?;
    if run.finished_at.is_some_and(|at| at.plus(UPDATABLE_AFTER_FINISH) < now) {
        return Err(Error::Invalid(format!(
            "metadata: run {run_id} finished more than an hour ago; its metadata can no longer change"
        )));
    }
    // Each run's operations in turn; the parent and the root may be one run.
    let mut steps: Vec<(&'static str, RunId, Vec<Operation>)> = vec![("operations", run.id.clone(), change.operations)];
    if let Some(parent) = run.parent_run_id.clone().filter(|_| !change.parent_operations.is_empty()) {
        steps.push(("parentOperations", parent, change.parent_operations));
    }
    if let Some(root) = run.root_run_id.clone().filter(|_| !change.root_operations.is_empty()) {
        steps.push(("rootOperations", root, change.root_operations));
    }
    // Locked in id order, as every transaction changing several runs locks them.
    let mut read: BTreeMap<RunId, Map<String, Value>> =
        steps.iter().map(|(_, id, _)| (id.clone(), Map::new())).collect();
    for (id, metadata) in &mut read {
        let locked = tx.run_lock(id).await?.ok_or_else(|| Error::NotFound(format!("Run {id} not found")))?;
        *metadata = parse(&locked);
    }
    let mut changed = read.clone();
    if let Some(replacement) = change.metadata {
        changed.insert(run.id.clone(), replacement);
    }
    for (field, id, operations) in &steps {
        let metadata = changed.get_mut(id).expect("every step's run was read");
        *metadata = metadata::apply_all(metadata, operations).map_err(|e| Error::Invalid(format!("{field}: {e}")))?;
    }
    for (id, metadata) in &changed {
        if read.get(id) == Some(metadata) {
            continue;
        }
        let field = steps.iter().find(|(_, step, _)| step == id).map_or("metadata", |(field, ..)| *field);
        let field = if id == &run.id { "metadata" } else { field };
        let text = encode(metadata).map_err(|e| Error::Invalid(format!("{field}: {e}")))?;
        tx.run_set_metadata(id, Some(&text), now).await?;
    }
    Ok(changed.remove(&run.id).unwrap_or_default())
}

/// Applies `operations` sent by `worker` to the metadata of a run it holds at `snapshot_id`. The
/// caller visits runs in id order.
pub(crate) async fn update_held(
    tx: &mut dyn Tx,
    now: Timestamp,
    worker: &WorkerRow,
    run_id: &RunId,
    snapshot_id: &SnapshotId,
    operations: &[Operation],
) -> Result<HeldUpdate, Error> {
    let Some(run) = tx.run_lock(run_id).await? else { return Ok(HeldUpdate::NotFound) };
    if !worker.serves(&run.env_id) {
        return Ok(HeldUpdate::NotFound);
    }
    let held = matches!(run.execution_status, ExecutionStatus::Executing | ExecutionStatus::ExecutingWithWaitpoints)
        && run.worker_id.as_ref() == Some(&worker.id);
    if &run.snapshot_id != snapshot_id || !held {
        return Ok(HeldUpdate::Stale);
    }
    let changed = match metadata::apply_all(&parse(&run), operations).and_then(|changed| encode(&changed)) {
        Ok(text) => text,
        Err(error) => return Ok(HeldUpdate::Invalid(error.to_string())),
    };
    tx.run_set_metadata(run_id, Some(&changed), now).await?;
    Ok(HeldUpdate::Updated)
}

/// Applies the operations an attempt's completion carried, once the completion has moved the run
/// (so the run is locked by this transaction already). Operations that cannot apply are logged
/// and dropped: the completion itself stands.
pub(crate) async fn apply_completed(
    tx: &mut dyn Tx,
    now: Timestamp,
    run_id: &RunId,
    operations: &[Operation],
) -> Result<(), Error> {
    let Some(run) = tx.run_lock(run_id).await? else { return Ok(()) };
    match metadata::apply_all(&parse(&run), operations).and_then(|changed| encode(&changed)) {
        Ok(text) => tx.run_set_metadata(run_id, Some(&text), now).await?,
        Err(error) => tracing::warn!(run_id = %run_id, %error, "metadata sent with a completion was not applied"),
    }
    Ok(())
}
