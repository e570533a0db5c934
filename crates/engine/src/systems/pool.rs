//! Fair selection across the environments of a worker pool: one worker process serving several
//! environments takes their runs in turn, so one environment's backlog never starves another.
//!
//! A dequeue of `n` runs gives each of the pool's `k` environments an even share, `⌊n / k⌋`,
//! and one more to the first `n mod k` in turn order; the turn order starts one environment
//! further along each dequeue that took runs. An environment that has fewer ready runs than its
//! share leaves the rest to the others, which are read again for it. Within an environment the
//! dequeue is the one-environment dequeue: its limits, its queues oldest head first, the
//! concurrency keys of a queue in turn. See `docs/fair-queue.md` for the bound.

use std::collections::HashMap;

use parking_lot::Mutex;
use stint_store::{RunRow, Tx, WorkerRow};
use stint_types::{EnvId, WorkerId};

use crate::Error;
use crate::shell::Ctx;
use crate::state::Changes;
use crate::systems::dequeue::{self, Dequeued};
use crate::systems::lanes::Rotation;

/// The environment each pool worker's turn order started with last, per node.
#[derive(Default)]
pub(crate) struct EnvRotation {
    first: Mutex<HashMap<WorkerId, EnvId>>,
}

impl EnvRotation {
    /// The environment the worker's last dequeue that took runs started with.
    pub(crate) fn first(&self, worker: &WorkerId) -> Option<EnvId> {
        self.first.lock().get(worker).cloned()
    }

    /// Records where the worker's turn order started, once the dequeue committed.
    pub(crate) fn set_first(&self, worker: &WorkerId, env: EnvId) {
        let mut first = self.first.lock();
        if first.len() >= 100_000 {
            first.clear();
        }
        first.insert(worker.clone(), env);
    }
}

/// The environments in turn order: starting with the one after `previous` (the one the last
/// dequeue started with), wrapping round.
pub(crate) fn turn_order(envs: &[EnvId], previous: Option<&EnvId>) -> Vec<EnvId> {
    let start = previous.and_then(|p| envs.iter().position(|e| e == p)).map_or(0, |at| at + 1);
    envs.iter().cycle().skip(start).take(envs.len()).cloned().collect()
}

/// Each environment's share of a dequeue of `want`, in turn order: an even share, and one more
/// for the first `want mod envs`.
pub(crate) fn shares(want: u32, envs: usize) -> Vec<u32> {
    let count = u32::try_from(envs).unwrap_or(u32::MAX).max(1);
    let (base, extra) = (want / count, want % count);
    (0..count).map(|at| base + u32::from(at < extra)).collect()
}

/// What a pool dequeue took, and the environment its turn order started with.
pub(crate) struct PoolDequeued {
    /// The runs taken, the environments' runs in turn.
    pub(crate) taken: Dequeued,
    /// The first environment of the turn order, to start after next time; `None` when nothing
    /// was taken.
    pub(crate) first: Option<EnvId>,
}

/// Takes up to `max_runs` ready runs for a pool worker from its environments in turn.
///
/// Every environment is looked at first, in id order — limited environments are locked before
/// any queue, the one lock order — and the runs asked for are split between those with ready
/// runs, by the turn order. Then each takes its share, in id order. An environment with fewer
/// ready runs than its share leaves the rest of this dequeue unused: the worker asks again for its
/// free slots at once.
pub(crate) async fn dequeue(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    rotation: &Rotation,
    previous: Option<&EnvId>,
    worker: &WorkerRow,
    max_runs: u32,
    changes: &mut Changes,
) -> Result<PoolDequeued, Error> {
    let mut by_id = worker.env_ids.clone();
    by_id.sort();
    let mut ready = Vec::with_capacity(by_id.len());
    for env in &by_id {
        let member = WorkerRow { env_id: env.clone(), ..worker.clone() };
        let found = dequeue::look(tx, ctx, &member).await?;
        ready.push((member, found));
    }
    let with_work: Vec<EnvId> = turn_order(&worker.env_ids, previous)
        .into_iter()
        .filter(|env| ready.iter().any(|(member, found)| &member.env_id == env && found.has_work()))
        .collect();
    let share: HashMap<EnvId, u32> = with_work.iter().cloned().zip(shares(max_runs, with_work.len())).collect();
    let mut taken = Dequeued { runs: Vec::new(), next_ready_at: None, turns: Vec::new() };
    let mut runs: HashMap<EnvId, Vec<RunRow>> = HashMap::new();
    for (member, found) in ready {
        taken.next_ready_at = [taken.next_ready_at, found.next_ready_at()].into_iter().flatten().min();
        let want = share.get(&member.env_id).copied().unwrap_or(0);
        if want == 0 {
            continue;
        }
        let got = dequeue::take(tx, ctx, rotation, &member, found, want, changes).await?;
        taken.next_ready_at = [taken.next_ready_at, got.next_ready_at].into_iter().flatten().min();
        taken.turns.extend(got.turns);
        runs.insert(member.env_id, got.runs);
    }
    taken.runs = interleave(&with_work, runs);
    let first = with_work.first().filter(|_| !taken.runs.is_empty()).cloned();
    Ok(PoolDequeued { taken, first })
}

/// The runs of each environment in turn: each one's first, then each one's second, …
fn interleave(order: &[EnvId], mut runs: HashMap<EnvId, Vec<RunRow>>) -> Vec<RunRow> {
    let mut queues: Vec<std::vec::IntoIter<RunRow>> =
        order.iter().map(|env| runs.remove(env).unwrap_or_default().into_iter()).collect();
    let mut all = Vec::new();
    loop {
        let before = all.len();
        all.extend(queues.iter_mut().filter_map(Iterator::next));
        if all.len() == before {
            return all;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: u64) -> EnvId {
        EnvId::from_parts(n, 0)
    }

    #[test]
    fn the_turn_order_starts_after_the_previous_first_and_wraps() {
        let envs = vec![env(1), env(2), env(3)];
        assert_eq!(turn_order(&envs, None), envs);
        assert_eq!(turn_order(&envs, Some(&env(1))), vec![env(2), env(3), env(1)]);
        assert_eq!(turn_order(&envs, Some(&env(3))), envs);
        assert_eq!(turn_order(&envs, Some(&env(9))), envs, "an unknown previous starts from the first");
    }

    #[test]
    fn shares_are_even_and_the_remainder_goes_first_in_turn() {
        assert_eq!(shares(50, 2), vec![25, 25]);
        assert_eq!(shares(50, 3), vec![17, 17, 16]);
        assert_eq!(shares(2, 3), vec![1, 1, 0]);
        assert_eq!(shares(7, 1), vec![7]);
    }

    /// Over many dequeues of generated sizes with every environment backlogged, each of `k`
    /// environments gets `1/k` of the runs within 5 %, and within one run of its share of every
    /// dequeue.
    #[test]
    fn backlogged_environments_share_dequeues_evenly_over_generated_sizes() {
        let mut seed = 0x5eed_u64;
        let mut below = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for k in 2..=6u64 {
            let envs: Vec<EnvId> = (1..=k).map(env).collect();
            let mut got: HashMap<EnvId, u64> = HashMap::new();
            let mut previous: Option<EnvId> = None;
            let mut total = 0;
            for _ in 0..2_000 {
                let want = 1 + below(100) as u32;
                let order = turn_order(&envs, previous.as_ref());
                let given = shares(want, order.len());
                assert!(given.iter().max().unwrap() - given.iter().min().unwrap() <= 1);
                for (env, share) in order.iter().zip(&given) {
                    *got.entry(env.clone()).or_default() += u64::from(*share);
                }
                total += u64::from(want);
                previous = Some(order[0].clone());
            }
            for env in &envs {
                let fraction = got[env] as f64 / total as f64;
                let fair = 1.0 / k as f64;
                assert!((fraction - fair).abs() <= 0.05 * fair, "k={k}: {env} got {fraction:.4}, fair {fair:.4}");
            }
        }
    }
}
