//! Queues as the API shows and controls them: listing, pausing and resuming, and overriding a
//! queue's concurrency limit, as Trigger.dev's queues API does; and overriding its rate limit.

use stint_store::{EnvironmentRow, LimitOverride, QueueRow, RateLimit, RateOverride, Tx};
use stint_types::{QueueId, Timestamp};

use crate::Error;
use crate::state::Changes;
use crate::systems::rates;

/// The highest concurrency limit an override may set, as Trigger.dev allows.
pub const MAX_LIMIT_OVERRIDE: u32 = 100_000;

/// How the API names a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueRef {
    /// By id, `queue_…`.
    Id(String),
    /// A task's own queue, by the task's id (a leading `task/` is accepted too).
    Task(String),
    /// A queue declared by name.
    Custom(String),
}

/// A queue with how many runs wait in it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueView {
    /// The queue.
    pub queue: QueueRow,
    /// Runs waiting in it, ready or not.
    pub waiting: u64,
}

/// A page of the environment's queues, by name, and how many it has in all.
pub(crate) async fn list(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    page: u32,
    per_page: u32,
) -> Result<(Vec<QueueView>, u64), Error> {
    let total = tx.queue_count(&env.id).await?;
    let offset = u64::from(page.saturating_sub(1)) * u64::from(per_page);
    let mut views = Vec::new();
    for queue in tx.queue_list(&env.id, offset, per_page).await? {
        views.push(view(tx, queue).await?);
    }
    Ok((views, total))
}

/// One queue of the environment.
pub(crate) async fn get(tx: &mut dyn Tx, env: &EnvironmentRow, queue: &QueueRef) -> Result<QueueView, Error> {
    let queue = find(tx, env, queue).await?;
    view(tx, queue).await
}

/// Pauses a queue, so it starts no run, or resumes it.
pub(crate) async fn set_paused(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    queue: &QueueRef,
    paused: bool,
    changes: &mut Changes,
) -> Result<QueueView, Error> {
    let mut queue = find(tx, env, queue).await?;
    if queue.paused != paused {
        tx.queue_set_paused(&queue.id, paused).await?;
        queue.paused = paused;
    }
    if !paused {
        changes.wake.insert(env.id.clone());
    }
    view(tx, queue).await
}

/// Puts `limit` in force instead of the declared limit, until it is reset.
pub(crate) async fn override_limit(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    queue: &QueueRef,
    limit: u32,
    now: Timestamp,
    changes: &mut Changes,
) -> Result<QueueView, Error> {
    if limit > MAX_LIMIT_OVERRIDE {
        return Err(Error::Invalid(format!("concurrencyLimit must be between 0 and {MAX_LIMIT_OVERRIDE}")));
    }
    let mut queue = find(tx, env, queue).await?;
    let limit_override = Some(LimitOverride { limit, at: now });
    tx.queue_set_override(&queue.id, limit_override).await?;
    queue.limit_override = limit_override;
    changes.wake.insert(env.id.clone());
    view(tx, queue).await
}

/// Puts the declared limit back in force.
pub(crate) async fn reset_limit(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    queue: &QueueRef,
    changes: &mut Changes,
) -> Result<QueueView, Error> {
    let mut queue = find(tx, env, queue).await?;
    if queue.limit_override.is_some() {
        tx.queue_set_override(&queue.id, None).await?;
        queue.limit_override = None;
        changes.wake.insert(env.id.clone());
    }
    view(tx, queue).await
}

/// Puts `rate` in force instead of the declared rate limit, until it is reset. The lanes keep
/// their state: a slower rate than before holds their next starts back by at most one of its
/// periods, a faster one lets them start sooner.
pub(crate) async fn override_rate(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    queue: &QueueRef,
    rate: RateLimit,
    now: Timestamp,
    changes: &mut Changes,
) -> Result<QueueView, Error> {
    rates::check(&rate, "rateLimit")?;
    let mut queue = find(tx, env, queue).await?;
    let rate_override = Some(RateOverride { rate, at: now });
    tx.rate_set_override(&queue.id, rate_override).await?;
    queue.rate_override = rate_override;
    changes.wake.insert(env.id.clone());
    view(tx, queue).await
}

/// Puts the declared rate limit (or none) back in force.
pub(crate) async fn reset_rate(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    queue: &QueueRef,
    changes: &mut Changes,
) -> Result<QueueView, Error> {
    let mut queue = find(tx, env, queue).await?;
    if queue.rate_override.is_some() {
        tx.rate_set_override(&queue.id, None).await?;
        queue.rate_override = None;
        changes.wake.insert(env.id.clone());
    }
    view(tx, queue).await
}

/// The environment's queue named by `queue`; another environment's is not found, like a
/// missing one.
async fn find(tx: &mut dyn Tx, env: &EnvironmentRow, queue: &QueueRef) -> Result<QueueRow, Error> {
    let found = match queue {
        QueueRef::Id(id) => match QueueId::parse(id) {
            Ok(id) => tx.queue_get(&id).await?.filter(|q| q.env_id == env.id),
            Err(_) => None,
        },
        QueueRef::Task(task) => {
            tx.queue_by_name(&env.id, &format!("task/{}", task.trim_start_matches("task/"))).await?
        }
        QueueRef::Custom(name) => tx.queue_by_name(&env.id, name).await?,
    };
    found.ok_or_else(|| Error::NotFound(format!("no queue {}", describe(queue))))
}

fn describe(queue: &QueueRef) -> String {
    match queue {
        QueueRef::Id(id) => format!("with id '{id}'"),
        QueueRef::Task(task) => format!("of task '{task}'"),
        QueueRef::Custom(name) => format!("named '{name}'"),
    }
}

async fn view(tx: &mut dyn Tx, queue: QueueRow) -> Result<QueueView, Error> {
    let waiting = tx.queue_waiting(&queue.id).await?;
    Ok(QueueView { queue, waiting })
}
