//! Tags added to a run after it was triggered.

use stint_store::{EnvironmentRow, Tx};
use stint_types::{RunId, Timestamp, names};

use crate::Error;
use crate::shell::visible_run;

/// Adds `tags` to a run of `env`, whatever its state: they are merged with its tags, normalised
/// and limited as at trigger (at most 10, each at most 128 characters). Returns how many were new.
pub(crate) async fn add(
    tx: &mut dyn Tx,
    now: Timestamp,
    env: &EnvironmentRow,
    run_id: &RunId,
    tags: Vec<String>,
) -> Result<usize, Error> {
    visible_run(tx, env, run_id).await?;
    // Locked, so two additions at once both count against the limit and neither is lost.
    let run = tx.run_lock(run_id).await?.ok_or_else(|| Error::NotFound(format!("Run {run_id} not found")))?;
    let before = run.tags.len();
    let merged = names::normalize_tags(run.tags.into_iter().chain(tags).collect())
        .map_err(|reason| Error::Invalid(format!("tags: {reason}")))?;
    let added = merged.len() - before;
    if added > 0 {
        tx.run_set_tags(run_id, &merged, now).await?;
    }
    Ok(added)
}
