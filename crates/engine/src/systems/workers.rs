//! Registering workers and the tasks and queues they declare.

use std::collections::{HashMap, HashSet};

use stint_store::{EnvironmentRow, RateLimit, TaskRow, Tx, WorkerRow};
use stint_types::{RetryOptions, Timestamp, names};

use crate::Error;
use crate::ids::Ids;
use crate::state::Changes;
use crate::systems::trigger::{Declared, queue_for};
use crate::systems::{rates, schedules, versions};

/// A task as a worker declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The task's identifier.
    pub id: String,
    /// Its queue; `task/<id>` when absent.
    pub queue: Option<String>,
    /// The queue's concurrency limit, which each of its concurrency keys gets.
    pub concurrency_limit: Option<u32>,
    /// The queue's cap on all its concurrency keys together.
    pub combined_limit: Option<u32>,
    /// The queue's rate limit on starts.
    pub rate_limit: Option<RateLimit>,
    /// Retry settings; Trigger.dev's defaults when absent.
    pub retry: Option<RetryOptions>,
    /// Seconds an attempt may run.
    pub max_duration: Option<u32>,
    /// Seconds a run may wait for its first attempt once queued, when its trigger sets none.
    pub ttl_secs: Option<u32>,
    /// The schedule the task declares in this environment: registering the environment's current
    /// version makes, changes or removes its `DECLARATIVE` schedule to match.
    pub schedule: Option<DeclaredSchedule>,
}

/// A schedule a task declares in its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSchedule {
    /// A 5-field cron expression.
    pub cron: String,
    /// An IANA time zone; `UTC` when `None`.
    pub timezone: Option<String>,
    /// The environments it fires in, by slug (`dev`, `staging`, `prod`, `preview`); all when
    /// empty.
    pub environments: Vec<String>,
}

/// Checks a worker's declarations, stores its tasks and queues in each of the environments it
/// serves (one, or several for a worker pool), gives it its version in each (see
/// `systems/versions.rs`; `version` is its build label, part of what makes a version), and records
/// the worker.
pub(crate) async fn register(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    envs: &[EnvironmentRow],
    version: &str,
    tasks: &[TaskSpec],
    changes: &mut Changes,
) -> Result<WorkerRow, Error> {
    let limits = check(version, tasks)?;
    let Some(first) = envs.first() else {
        return Err(Error::Invalid("a worker must serve at least one environment".into()));
    };
    if envs.iter().enumerate().any(|(at, env)| envs[..at].iter().any(|e| e.id == env.id)) {
        return Err(Error::Invalid("environments must not repeat".into()));
    }
    // Versions are made in environment id order, the one lock order, so that pools registering
    // at once for the same environments in different orders never wait on each other in a cycle.
    let fingerprint = versions::fingerprint(version, tasks);
    let mut by_id: Vec<&EnvironmentRow> = envs.iter().collect();
    by_id.sort_by(|a, b| a.id.cmp(&b.id));
    let mut assigned = HashMap::with_capacity(envs.len());
    for env in by_id {
        assigned.insert(env.id.clone(), versions::version_for(tx, &env.id, &fingerprint, now).await?);
    }
    for env in envs {
        // The environment's schedules follow its newest version, not an older one registering.
        let assigned_version = assigned.get(&env.id).cloned();
        if assigned_version.is_some() && versions::current(tx, &env.id).await? == assigned_version {
            schedules::sync_declared(tx, ids, now, env, tasks, changes).await?;
        }
        for (queue, declared) in &limits {
            queue_for(tx, ids, now, env, queue, Some(*declared)).await?;
        }
        for task in tasks {
            tx.task_upsert(&TaskRow {
                env_id: env.id.clone(),
                task_id: task.id.clone(),
                queue_name: queue_name(task),
                retry: task.retry.unwrap_or_default(),
                max_duration: task.max_duration,
                ttl_secs: task.ttl_secs.filter(|secs| *secs > 0),
                updated_at: now,
            })
            .await?;
        }
    }
    let worker = WorkerRow {
        id: ids.worker(now),
        env_id: first.id.clone(),
        env_ids: envs.iter().map(|env| env.id.clone()).collect(),
        version: version.to_string(),
        versions: envs.iter().map(|env| assigned.remove(&env.id).unwrap_or_default()).collect(),
        task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
        created_at: now,
    };
    tx.worker_insert(&worker).await?;
    Ok(worker)
}

/// The queue a task runs in: the one it declares, else its own.
pub(crate) fn queue_name(task: &TaskSpec) -> String {
    task.queue.clone().unwrap_or_else(|| names::default_queue_name(&task.id))
}

/// Validates the declarations and returns each queue's limit, saying what is wrong if anything
/// is.
fn check(version: &str, tasks: &[TaskSpec]) -> Result<HashMap<String, Declared>, Error> {
    if version.trim().is_empty() || version.len() > 64 {
        return Err(Error::Invalid("version must be 1 to 64 characters".into()));
    }
    if tasks.is_empty() {
        return Err(Error::Invalid("a worker must declare at least one task".into()));
    }
    let mut seen = HashSet::new();
    let mut limits: HashMap<String, Declared> = HashMap::new();
    for task in tasks {
        names::check_task_id(&task.id).map_err(Error::Invalid)?;
        if !seen.insert(task.id.as_str()) {
            return Err(Error::Invalid(format!("task '{}' is declared twice", task.id)));
        }
        let queue = queue_name(task);
        names::check_queue_name(&queue).map_err(Error::Invalid)?;
        if let Some(retry) = &task.retry {
            retry.validate().map_err(|e| Error::Invalid(format!("task '{}': {e}", task.id)))?;
        }
        schedules::check_declared(task)?;
        if task.max_duration == Some(0) {
            return Err(Error::Invalid(format!("task '{}': maxDuration must be at least 1 second", task.id)));
        }
        if let Some(rate) = &task.rate_limit {
            rates::check(rate, &format!("queue '{queue}': rateLimit"))?;
        }
        let declared = Declared { limit: task.concurrency_limit, combined: task.combined_limit, rate: task.rate_limit };
        if let (Some(limit), Some(combined)) = (declared.limit, declared.combined)
            && combined < limit
        {
            return Err(Error::Invalid(format!(
                "queue '{queue}': combinedConcurrencyLimit ({combined}) is below concurrencyLimit ({limit})"
            )));
        }
        match limits.get(&queue) {
            Some(other) if other.rate != declared.rate => {
                return Err(Error::Invalid(format!(
                    "queue '{queue}' is declared with different rate limits by different tasks"
                )));
            }
            Some(other) if *other != declared => {
                return Err(Error::Invalid(format!(
                    "queue '{queue}' is declared with different concurrency limits by different tasks"
                )));
            }
            _ => {
                limits.insert(queue, declared);
            }
        }
    }
    Ok(limits)
}
