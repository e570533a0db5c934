//! Worker versions, as Trigger.dev's deployments: each distinct registration of an environment's
//! workers is a version `YYYYMMDD.N`, and a run runs on one version only.
//!
//! A registration's content — its build label and its tasks with their queues and settings — is
//! fingerprinted; the first registration of a fingerprint in an environment makes the
//! environment's next version, and later ones (more processes of the same build) share it. The
//! environment's current version is the one made last. A run locks to the version of the worker
//! that first starts it (`dequeue::plan_start`), or to the one `lockToVersion` names at trigger;
//! a replay locks to the current version. Only workers of that version take it afterwards: takes
//! pass over runs locked to other versions (`QueueTable::queue_take`).

use serde::Serialize;
use sha2::{Digest, Sha256};
use stint_store::{Tx, WorkerVersionRow};
use stint_types::{EnvId, Timestamp, Version};

use crate::Error;
use crate::systems::workers::{TaskSpec, queue_name};

/// Times a registration looks for its version again after another node made one first.
const ATTEMPTS: usize = 8;

/// The fingerprint of a registration: the SHA-256, in hex, of a canonical JSON form of its build
/// label and its tasks by id, each with its queue and settings as they apply (defaults filled in,
/// so that leaving a default out and spelling it are the same content).
pub(crate) fn fingerprint(label: &str, tasks: &[TaskSpec]) -> String {
    let mut sorted: Vec<&TaskSpec> = tasks.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let content = Content {
        label,
        tasks: sorted
            .into_iter()
            .map(|task| {
                let retry = task.retry.unwrap_or_default();
                TaskContent {
                    id: &task.id,
                    queue: queue_name(task),
                    concurrency_limit: task.concurrency_limit,
                    combined_limit: task.combined_limit,
                    rate_limit: task.rate_limit.map(|r| (r.limit, r.period_ms, r.per_key)),
                    retry: (
                        retry.max_attempts,
                        retry.factor,
                        retry.min_timeout_in_ms,
                        retry.max_timeout_in_ms,
                        retry.randomize,
                    ),
                    max_duration: task.max_duration,
                    ttl: task.ttl_secs,
                    schedule: task
                        .schedule
                        .as_ref()
                        .map(|s| (s.cron.as_str(), s.timezone.as_deref(), s.environments.as_slice())),
                }
            })
            .collect(),
    };
    let text = serde_json::to_vec(&content).expect("a registration's content serializes");
    hex::encode(Sha256::digest(&text))
}

/// What a fingerprint covers. Structs, not maps, so the text is the same whatever features
/// `serde_json` is built with; fields are never reordered, or every fingerprint would change.
#[derive(Serialize)]
struct Content<'a> {
    label: &'a str,
    tasks: Vec<TaskContent<'a>>,
}

#[derive(Serialize)]
struct TaskContent<'a> {
    id: &'a str,
    queue: String,
    concurrency_limit: Option<u32>,
    combined_limit: Option<u32>,
    rate_limit: Option<(u32, u64, bool)>,
    retry: (u32, f64, u64, u64, bool),
    max_duration: Option<u32>,
    /// Added after the others: left out when unset, so fingerprints made before it stay.
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    /// The declared schedule (cron, time zone, environments), left out when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<(&'a str, Option<&'a str>, &'a [String])>,
}

/// The environment's version with this fingerprint, made at `now` when there is none: the next
/// after the current one (see [`Version::next`]).
///
/// Nodes registering at once settle on one row through the table's unique keys: the one whose
/// insert loses reads the winner's version, or, when the winner made a version of other content,
/// makes the one after it.
pub(crate) async fn version_for(
    tx: &mut dyn Tx,
    env_id: &EnvId,
    fingerprint: &str,
    now: Timestamp,
) -> Result<String, Error> {
    for _ in 0..ATTEMPTS {
        if let Some(found) = tx.worker_version_by_fingerprint(env_id, fingerprint).await? {
            return Ok(found.version);
        }
        let current = tx.worker_version_current(env_id).await?;
        let latest = match &current {
            Some(row) => Some(Version::parse(&row.version).map_err(stint_store::Error::Corrupt)?),
            None => None,
        };
        let row = WorkerVersionRow {
            env_id: env_id.clone(),
            version: Version::next(latest, now).to_string(),
            fingerprint: fingerprint.to_string(),
            seq: current.map_or(1, |row| row.seq + 1),
            created_at: now,
        };
        match tx.worker_version_insert(&row).await {
            Ok(()) => return Ok(row.version),
            Err(stint_store::Error::Duplicate(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(stint_store::Error::Unavailable(format!(
        "other registrations kept making versions of environment {env_id} first; register again"
    ))
    .into())
}

/// The environment's current version, the one made last, if its workers have registered.
pub(crate) async fn current(tx: &mut dyn Tx, env_id: &EnvId) -> Result<Option<String>, Error> {
    Ok(tx.worker_version_current(env_id).await?.map(|row| row.version))
}

/// Checks a `lockToVersion`: a version of the environment.
pub(crate) async fn check_lock(tx: &mut dyn Tx, env_id: &EnvId, version: &str) -> Result<(), Error> {
    Version::parse(version).map_err(|e| Error::Invalid(format!("lockToVersion: {e}")))?;
    if tx.worker_version_get(env_id, version).await?.is_none() {
        return Err(Error::Invalid(format!("lockToVersion: no version '{version}' in this environment")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stint_store::RateLimit;
    use stint_types::RetryOptions;

    fn task(id: &str) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            queue: None,
            concurrency_limit: None,
            combined_limit: None,
            rate_limit: None,
            retry: None,
            max_duration: None,
            ttl_secs: None,
            schedule: None,
        }
    }

    #[test]
    fn the_same_content_in_any_order_has_one_fingerprint() {
        let (a, b) = (task("a"), task("b"));
        let spelled = TaskSpec { queue: Some("task/a".into()), retry: Some(RetryOptions::default()), ..task("a") };
        let one = fingerprint("1.0.0", &[a.clone(), b.clone()]);
        assert_eq!(one.len(), 64);
        assert_eq!(fingerprint("1.0.0", &[b.clone(), a.clone()]), one);
        assert_eq!(fingerprint("1.0.0", &[spelled, b.clone()]), one, "defaults spelled out are the same content");
    }

    #[test]
    fn any_change_of_content_changes_the_fingerprint() {
        let base = fingerprint("1.0.0", &[task("a")]);
        let changed = [
            fingerprint("1.0.1", &[task("a")]),
            fingerprint("1.0.0", &[task("a"), task("b")]),
            fingerprint("1.0.0", &[TaskSpec { queue: Some("q".into()), ..task("a") }]),
            fingerprint("1.0.0", &[TaskSpec { concurrency_limit: Some(2), ..task("a") }]),
            fingerprint("1.0.0", &[TaskSpec { combined_limit: Some(2), ..task("a") }]),
            fingerprint(
                "1.0.0",
                &[TaskSpec { rate_limit: Some(RateLimit { limit: 1, period_ms: 1_000, per_key: false }), ..task("a") }],
            ),
            fingerprint(
                "1.0.0",
                &[TaskSpec { retry: Some(RetryOptions { max_attempts: 4, ..RetryOptions::default() }), ..task("a") }],
            ),
            fingerprint("1.0.0", &[TaskSpec { max_duration: Some(5), ..task("a") }]),
        ];
        for (n, other) in changed.iter().enumerate() {
            assert_ne!(other, &base, "change {n}");
        }
    }
}
