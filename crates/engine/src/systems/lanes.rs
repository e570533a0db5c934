//! Fair selection across the concurrency keys of a queue.
//!
//! A queue's runs with one concurrency key form a lane, and its runs without a key one more.
//! A dequeue from a queue with keyed runs serves its lanes round robin, one run per lane per
//! round, starting after the lane it served last: a flood under one key delays another key's
//! next run by at most one run per other lane with ready runs (see `docs/fair-queue.md`).
//! Within a lane, runs come out by score (queued time minus priority), as in the whole queue.

use std::collections::HashMap;

use parking_lot::Mutex;
use stint_store::{Lane, RunRow, Tx};
use stint_types::QueueId;

use crate::Error;
use crate::systems::limits::LaneRoom;
use crate::systems::rates::QueueRate;

/// A lane of a queue: `None` for the runs without a concurrency key.
pub type LaneKey = Option<String>;

/// The lane each queue served last, so the next dequeue starts after it. Kept per node: nodes
/// sharing a database each go round the lanes, which is as fair taken together.
#[derive(Default)]
pub(crate) struct Rotation {
    last: Mutex<HashMap<QueueId, LaneKey>>,
}

impl Rotation {
    /// The lane the queue served last, if it took turns before.
    pub(crate) fn last(&self, queue: &QueueId) -> Option<LaneKey> {
        self.last.lock().get(queue).cloned()
    }

    /// Records the lane the queue served last, once the dequeue that served it committed.
    pub(crate) fn set_last(&self, queue: &QueueId, lane: LaneKey) {
        let mut last = self.last.lock();
        if last.len() >= 100_000 {
            last.clear();
        }
        last.insert(queue.clone(), lane);
    }
}

/// Whether a queue holds runs with a concurrency key that are ready at `max_score` and that a
/// worker of `version` may take, so its lanes need taking turns.
pub(crate) async fn has_lanes(
    tx: &mut dyn Tx,
    queue: &QueueId,
    version: Option<&str>,
    max_score: i64,
) -> Result<bool, Error> {
    Ok(!tx.queue_lanes(queue, None, version, max_score, 1).await?.is_empty())
}

/// Most keys a dequeue reads beyond what it wants when the keys it listed first may start nothing
/// for their rate limits; see `docs/fair-queue.md`.
pub(crate) const RATE_LOOKAHEAD: u32 = 1_000;

/// Takes up to `want` ready runs of `task_ids` that a worker of `version` may take (see
/// `QueueTable::queue_take`) from a queue with keyed runs, round robin over its lanes from the one
/// after `last`, each lane no more than `room` leaves it and, when the queue's rate is per key, no
/// more than `rate` allows it; and the lane served last by this take.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn take(
    tx: &mut dyn Tx,
    queue: &QueueId,
    last: Option<LaneKey>,
    room: &LaneRoom,
    mut rate: Option<&mut QueueRate>,
    task_ids: &[String],
    version: Option<&str>,
    max_score: i64,
    want: u32,
) -> Result<(Vec<RunRow>, Option<LaneKey>), Error> {
    // Lanes at their limit are passed over; reading as many more keys as there are full lanes
    // still finds `want` lanes with room when the queue has them.
    let extra = u32::try_from(room.full()).unwrap_or(u32::MAX);
    let first = want.saturating_add(extra);
    let mut asked = first;
    let mut listed = turn_order(tx, queue, last.clone(), version, max_score, asked).await?;
    // Lanes that may start nothing for their rate are not known before their times are read: while
    // too few of the keys listed may start runs and there are more, list more keys, up to
    // `RATE_LOOKAHEAD` more than at first.
    while let Some(rate) = rate.as_deref_mut() {
        rate.load(tx, &listed).await?;
        let keys = listed.iter().filter(|lane| lane.is_some()).count();
        let open = listed.iter().filter(|lane| lane.is_some() && free(room, Some(rate), lane) > 0).count();
        let most = first.saturating_add(RATE_LOOKAHEAD);
        if open >= want as usize || keys < asked as usize || asked >= most {
            break;
        }
        let held = u32::try_from(keys - open).unwrap_or(u32::MAX);
        asked = asked.saturating_mul(2).max(first.saturating_add(held)).min(most);
        listed = turn_order(tx, queue, last.clone(), version, max_score, asked).await?;
    }
    let rate = rate.as_deref();
    let held_back = rate.is_some_and(|rate| listed.iter().any(|lane| room.free(lane) > 0 && rate.allowed(lane) == 0));
    let mut lanes = listed.clone();
    lanes.retain(|lane| free(room, rate, lane) > 0);
    // An even share from each lane; when some lanes have less, the lanes that had their share
    // are read again for the whole dequeue, so that a short lane leaves its room to the others.
    let per_lane = share(want, lanes.len());
    let mut taken = Vec::with_capacity(lanes.len());
    for lane in &lanes {
        let asked = per_lane.min(free(room, rate, lane));
        taken.push(tx.queue_take(queue, filter(lane), task_ids, version, max_score, asked).await?);
    }
    if taken.iter().map(Vec::len).sum::<usize>() < want as usize {
        for (lane, runs) in lanes.iter().zip(taken.iter_mut()) {
            let asked = per_lane.min(free(room, rate, lane));
            let more = want.min(free(room, rate, lane));
            if runs.len() == asked as usize && more > asked {
                *runs = tx.queue_take(queue, filter(lane), task_ids, version, max_score, more).await?;
            }
        }
    }
    let (runs, mut served) = interleave(&lanes, taken, want as usize);
    // A take that came up short with lanes held back by their rate has served every lane it
    // listed that could start a run: the next one starts after the last lane listed, so that keys
    // further along are reached even while the first ones wait for their rate.
    if held_back && runs.len() < want as usize {
        served = listed.last().cloned();
    }
    Ok((runs, served))
}

/// Runs a lane may start: its free slots, capped by what its rate allows when the queue's rate is
/// per key.
fn free(room: &LaneRoom, rate: Option<&QueueRate>, lane: &LaneKey) -> u32 {
    let slots = room.free(lane);
    rate.map_or(slots, |rate| slots.min(rate.allowed(lane)))
}

/// The lanes of the queue in the order they take turns: up to `want` keys with ready runs a
/// worker of `version` may take, those after `last` first, then from the first key; and the lane
/// without a key in its place before every key, whatever it holds.
async fn turn_order(
    tx: &mut dyn Tx,
    queue: &QueueId,
    last: Option<LaneKey>,
    version: Option<&str>,
    max_score: i64,
    want: u32,
) -> Result<Vec<LaneKey>, Error> {
    let mut order: Vec<LaneKey> = Vec::new();
    match last {
        // A key served last: the keys after it, the lane without a key, then the keys from the
        // first up to it.
        Some(Some(key)) => {
            let after = tx.queue_lanes(queue, Some(&key), version, max_score, want).await?;
            let found = after.len();
            order.extend(after.into_iter().map(Some));
            order.push(None);
            if found < want as usize {
                let remaining = want - u32::try_from(found).unwrap_or(want);
                // From the first key up to the one served last; when that one has no ready run
                // any more, up to the first key already in the order.
                for first in tx.queue_lanes(queue, None, version, max_score, remaining).await? {
                    let first = Some(first);
                    if order.contains(&first) {
                        break;
                    }
                    let reached = first.as_deref() == Some(key.as_str());
                    order.push(first);
                    if reached {
                        break;
                    }
                }
            }
        }
        // The lane without a key served last: the keys, then that lane again.
        Some(None) => {
            order.extend(tx.queue_lanes(queue, None, version, max_score, want).await?.into_iter().map(Some));
            order.push(None);
        }
        None => {
            order.push(None);
            order.extend(tx.queue_lanes(queue, None, version, max_score, want).await?.into_iter().map(Some));
        }
    }
    Ok(order)
}

/// How many runs to read from each of `lanes` lanes for a dequeue of `want`: an even share.
fn share(want: u32, lanes: usize) -> u32 {
    want.div_ceil(u32::try_from(lanes).unwrap_or(u32::MAX).max(1))
}

/// The runs a lane holds.
fn filter(lane: &LaneKey) -> Lane<'_> {
    match lane {
        None => Lane::Unkeyed,
        Some(key) => Lane::Key(key),
    }
}

/// The runs in round-robin order — each lane's first, then each lane's second, … — cut at
/// `want`, and the lane of the last run kept.
fn interleave<T>(lanes: &[LaneKey], taken: Vec<Vec<T>>, want: usize) -> (Vec<T>, Option<LaneKey>) {
    let mut queues: Vec<std::vec::IntoIter<T>> = taken.into_iter().map(Vec::into_iter).collect();
    let mut runs = Vec::with_capacity(want);
    let mut last = None;
    while runs.len() < want {
        let before = runs.len();
        for (lane, queue) in lanes.iter().zip(queues.iter_mut()) {
            if runs.len() == want {
                break;
            }
            if let Some(run) = queue.next() {
                runs.push(run);
                last = Some(lane.clone());
            }
        }
        if runs.len() == before {
            break;
        }
    }
    (runs, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> LaneKey {
        Some(k.to_string())
    }

    #[test]
    fn each_lane_reads_an_even_share_rounded_up() {
        assert_eq!(share(50, 1), 50);
        assert_eq!(share(50, 2), 25);
        assert_eq!(share(50, 3), 17);
        assert_eq!(share(50, 50), 1);
        assert_eq!(share(1, 3), 1);
    }

    #[test]
    fn lanes_take_turns_and_short_lanes_leave_room_for_the_others() {
        let lanes = vec![key("a"), key("b"), None];
        let taken = vec![vec![1, 2, 3, 4], vec![10], vec![20, 21]];
        assert_eq!(interleave(&lanes, taken.clone(), 6), (vec![1, 10, 20, 2, 21, 3], Some(key("a"))));
        assert_eq!(interleave(&lanes, taken.clone(), 2), (vec![1, 10], Some(key("b"))));
        let (runs, last) = interleave(&lanes, taken, 100);
        assert_eq!(runs, vec![1, 10, 20, 2, 21, 3, 4]);
        assert_eq!(last, Some(key("a")), "a has the most runs, so it goes last");
        assert_eq!(interleave::<i64>(&lanes, vec![vec![], vec![], vec![]], 5), (Vec::new(), None));
    }
}
