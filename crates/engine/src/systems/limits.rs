//! Concurrency limits beyond a queue's own count: the environment's limit with its burst factor
//! and pausing, the queue's limit applied to each concurrency key on its own, as Trigger.dev does,
//! and a queue's optional cap on all its keys together.
//!
//! A run holds a slot of its queue, of its key (or of the queue's runs without a key) and of its
//! environment exactly while a worker holds it. Starts read the counts under the locks of the
//! environment and the queue when they are limited, so limits hold across nodes.

use std::collections::HashMap;

use stint_store::{EnvLimits, QueueRow, Tx};
use stint_types::EnvId;

use crate::Error;
use crate::state::Changes;
use crate::systems::lanes::LaneKey;
use crate::systems::queues::MAX_LIMIT_OVERRIDE;

/// What an environment leaves for the next starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EnvRoom {
    /// The environment's base limit, which caps every queue's limit.
    pub(crate) base: Option<u32>,
    /// Slots free under the limit times the burst factor.
    pub(crate) free: u32,
}

/// The environment's room for starts, or `None` when it is paused. A limited environment's row
/// is locked first, so that its running count cannot change under another node's starts.
pub(crate) async fn env_room(tx: &mut dyn Tx, env_id: &EnvId) -> Result<Option<EnvRoom>, Error> {
    let limits = tx.env_limits(env_id).await?.unwrap_or_default();
    if limits.paused {
        return Ok(None);
    }
    if limits.concurrency_limit.is_none() {
        return Ok(Some(EnvRoom { base: None, free: u32::MAX }));
    }
    let limits = tx.env_lock(env_id).await?.unwrap_or(limits);
    if limits.paused {
        return Ok(None);
    }
    let running = tx.env_running(env_id).await?;
    Ok(Some(EnvRoom { base: limits.concurrency_limit, free: burst_free(&limits, running) }))
}

/// An environment's limits and how many of its runs hold a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvUsage {
    /// Its limits.
    pub limits: EnvLimits,
    /// Runs holding a slot now.
    pub running: u64,
}

/// The environment's limits and running count.
pub(crate) async fn env_usage(tx: &mut dyn Tx, env_id: &EnvId) -> Result<EnvUsage, Error> {
    let limits = tx.env_limits(env_id).await?.ok_or_else(|| Error::NotFound(format!("no environment {env_id}")))?;
    Ok(EnvUsage { limits, running: tx.env_running(env_id).await? })
}

/// Sets an environment's limits, after checking them; waking its workers, since a raised limit
/// or a resume may let runs start.
pub(crate) async fn set_env_limits(
    tx: &mut dyn Tx,
    env_id: &EnvId,
    limits: EnvLimits,
    changes: &mut Changes,
) -> Result<EnvUsage, Error> {
    if limits.concurrency_limit.is_some_and(|limit| limit > MAX_LIMIT_OVERRIDE) {
        return Err(Error::Invalid(format!("concurrencyLimit must be between 0 and {MAX_LIMIT_OVERRIDE}")));
    }
    if !(1.0..=MAX_BURST_FACTOR).contains(&limits.burst_factor) {
        return Err(Error::Invalid(format!("burstFactor must be between 1 and {MAX_BURST_FACTOR}")));
    }
    env_usage(tx, env_id).await?;
    tx.env_set_limits(env_id, &limits).await?;
    changes.wake.insert(env_id.clone());
    env_usage(tx, env_id).await
}

/// The largest burst factor an environment may have.
pub const MAX_BURST_FACTOR: f64 = 100.0;

/// Slots free in an environment running `running` runs.
fn burst_free(limits: &EnvLimits, running: u64) -> u32 {
    limits
        .burst_limit()
        .map_or(u32::MAX, |cap| u32::try_from(u64::from(cap).saturating_sub(running)).unwrap_or(u32::MAX))
}

/// The limit of each lane of a queue (each concurrency key, and the runs without one): the
/// queue's limit in force, capped by the environment's base limit.
pub(crate) fn lane_limit(queue: &QueueRow, env_base: Option<u32>) -> Option<u32> {
    match (queue.limit(), env_base) {
        (Some(queue), Some(env)) => Some(queue.min(env)),
        (queue, env) => queue.or(env),
    }
}

/// Slots the queue has free as a whole: none while paused, else up to its cap on all keys.
pub(crate) fn queue_room(queue: &QueueRow) -> u32 {
    if queue.paused {
        return 0;
    }
    queue.combined_limit.map_or(u32::MAX, |cap| cap.saturating_sub(queue.running))
}

/// Slots free for the queue's runs without a concurrency key.
pub(crate) fn unkeyed_room(queue: &QueueRow, lane_limit: Option<u32>) -> u32 {
    let running = queue.running.saturating_sub(queue.keyed_running);
    lane_limit.map_or(u32::MAX, |limit| limit.saturating_sub(running))
}

/// Whether starting runs in the queue must lock it first: some limit applies to it, a rate limit
/// included (its state is read and written under the lock).
pub(crate) fn is_limited(queue: &QueueRow, env_base: Option<u32>) -> bool {
    lane_limit(queue, env_base).is_some() || queue.combined_limit.is_some() || queue.rate().is_some()
}

/// The running counts of a queue's lanes against the limit each lane has.
#[derive(Debug, Clone, Default)]
pub(crate) struct LaneRoom {
    limit: Option<u32>,
    running: HashMap<LaneKey, u32>,
}

impl LaneRoom {
    /// Reads the running count of each lane of `queue` that has a running run, when its lanes
    /// are limited.
    pub(crate) async fn read(tx: &mut dyn Tx, queue: &QueueRow, limit: Option<u32>) -> Result<LaneRoom, Error> {
        let mut running = HashMap::new();
        if limit.is_some() {
            for (key, count) in tx.lane_running(&queue.id).await? {
                running.insert(Some(key), count);
            }
            running.insert(None, queue.running.saturating_sub(queue.keyed_running));
        }
        Ok(LaneRoom { limit, running })
    }

    /// Lanes with the running counts given, each limited to `limit`.
    #[cfg(test)]
    pub(crate) fn new(limit: Option<u32>, running: HashMap<LaneKey, u32>) -> LaneRoom {
        LaneRoom { limit, running }
    }

    /// Slots free in a lane.
    pub(crate) fn free(&self, lane: &LaneKey) -> u32 {
        self.limit.map_or(u32::MAX, |limit| limit.saturating_sub(self.running.get(lane).copied().unwrap_or(0)))
    }

    /// How many lanes are at their limit.
    pub(crate) fn full(&self) -> usize {
        self.running.keys().filter(|lane| self.free(lane) == 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_admits_its_limit_times_the_burst_factor() {
        let limits = EnvLimits { concurrency_limit: Some(10), burst_factor: 1.5, paused: false };
        assert_eq!(burst_free(&limits, 0), 15);
        assert_eq!(burst_free(&limits, 14), 1);
        assert_eq!(burst_free(&limits, 20), 0);
        assert_eq!(burst_free(&EnvLimits::default(), 1_000_000), u32::MAX);
    }

    #[test]
    fn lanes_get_the_queue_limit_capped_by_the_environment_base() {
        let mut queue = QueueRow {
            id: stint_types::QueueId::from_stored("queue_1".into()),
            env_id: EnvId::from_stored("env_1".into()),
            name: "q".into(),
            concurrency_limit: None,
            limit_override: None,
            combined_limit: None,
            paused: false,
            running: 0,
            keyed_running: 0,
            created_at: stint_types::Timestamp(0),
            rate_limit: None,
            rate_override: None,
        };
        assert_eq!(lane_limit(&queue, None), None);
        assert_eq!(lane_limit(&queue, Some(5)), Some(5));
        queue.concurrency_limit = Some(3);
        assert_eq!(lane_limit(&queue, Some(5)), Some(3));
        assert_eq!(lane_limit(&queue, Some(2)), Some(2));
        queue.running = 4;
        queue.keyed_running = 3;
        assert_eq!(unkeyed_room(&queue, Some(3)), 2, "one running run has no key");
        queue.combined_limit = Some(6);
        assert_eq!(queue_room(&queue), 2);
        queue.paused = true;
        assert_eq!(queue_room(&queue), 0);
    }

    #[test]
    fn full_lanes_are_counted() {
        let running = HashMap::from([(None, 2), (Some("a".to_string()), 1), (Some("b".to_string()), 3)]);
        let room = LaneRoom::new(Some(2), running);
        assert_eq!(room.full(), 2);
        assert_eq!(room.free(&Some("a".into())), 1);
        assert_eq!(room.free(&Some("c".into())), 2);
        assert_eq!(LaneRoom::default().free(&None), u32::MAX);
    }
}
