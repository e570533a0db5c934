//! Rate limits on a queue's starts: GCRA (the generic cell rate algorithm, a token bucket kept as
//! one time per lane).
//!
//! A rate of `limit` starts per `period` spaces starts by the emission interval `T = period /
//! limit` and tolerates a burst of `limit`: the tolerance is `τ = (limit − 1)·T`. Each lane keeps a
//! theoretical arrival time `tat` (in µs, in `rate_slots`); at time `now` it may start
//! `k = ⌊(now + τ − max(tat, now)) / T⌋ + 1` runs, capped at `limit` (none when that is below 1),
//! and after starting `j` of them `tat = max(tat, now) + j·T`. So `limit` runs start at once after
//! a quiet period, then one every `T`; any `n > limit` consecutive starts span at least
//! `(n − limit)·T`. `T` is rounded up to a whole µs, which never lets more through.
//!
//! The lane is the whole queue (stored under the key `""`) when the rate is not per key; with a
//! rate per key, each concurrency key is a lane and the runs without a key one more (also `""`).
//! A dequeue reads and writes the times under the queue's lock, so the rate holds across nodes.

use std::collections::HashMap;

use stint_store::{RateLimit, Tx};
use stint_types::{QueueId, Timestamp};

use crate::Error;
use crate::systems::lanes::LaneKey;

/// The smallest and largest number of starts a rate limit may allow per period.
pub const RATE_LIMITS: std::ops::RangeInclusive<u32> = 1..=100_000;
/// The shortest and longest period of a rate limit, in ms: one second to one day.
pub const RATE_PERIODS_MS: std::ops::RangeInclusive<u64> = 1_000..=86_400_000;
/// Expired rows of a queue a dequeue deletes, besides as many as it wrote.
const PRUNE_EXTRA: u32 = 64;

/// Checks a rate limit, saying which field of `what` is wrong.
pub(crate) fn check(rate: &RateLimit, what: &str) -> Result<(), Error> {
    if !RATE_LIMITS.contains(&rate.limit) {
        return Err(Error::Invalid(format!(
            "{what}.limit must be between {} and {}, got {}",
            RATE_LIMITS.start(),
            RATE_LIMITS.end(),
            rate.limit
        )));
    }
    if !RATE_PERIODS_MS.contains(&rate.period_ms) {
        return Err(Error::Invalid(format!(
            "{what}.periodMs must be between {} and {} (one second to one day), got {}",
            RATE_PERIODS_MS.start(),
            RATE_PERIODS_MS.end(),
            rate.period_ms
        )));
    }
    Ok(())
}

/// The GCRA arithmetic of one rate, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// The emission interval `T`, rounded up to a whole µs.
    interval: i64,
    /// Most starts at once.
    limit: u32,
}

impl Gcra {
    /// The arithmetic of `rate`.
    pub(crate) fn new(rate: &RateLimit) -> Gcra {
        let period_us = i64::try_from(rate.period_ms).unwrap_or(i64::MAX / 2_000).saturating_mul(1_000);
        let limit = rate.limit.max(1);
        Gcra { interval: period_us.div_euclid(i64::from(limit)) + i64::from(period_us % i64::from(limit) != 0), limit }
    }

    /// The burst tolerance `τ = (limit − 1)·T`.
    fn tolerance(&self) -> i64 {
        i64::from(self.limit - 1) * self.interval
    }

    /// Where the lane's next starts count from: its time, but never before `now`.
    fn base(&self, tat: Option<i64>, now_us: i64) -> i64 {
        tat.map_or(now_us, |tat| tat.max(now_us))
    }

    /// A lane's time brought within one full burst (`limit·T`) of `now_ms`. Under one rate a time
    /// is never further ahead; after the rate is changed, this keeps a slow old rate from holding
    /// the new one back for longer than one of its periods. `None` when the time needs no change.
    pub(crate) fn clamp(&self, tat: Option<i64>, now_ms: i64) -> Option<i64> {
        let cap = now_ms * 1_000 + i64::from(self.limit) * self.interval;
        tat.filter(|tat| *tat > cap).map(|_| cap)
    }

    /// How many runs the lane may start at `now_ms`.
    pub(crate) fn allowed(&self, tat: Option<i64>, now_ms: i64) -> u32 {
        let now_us = now_ms * 1_000;
        let slack = now_us + self.tolerance() - self.base(tat, now_us);
        if slack < 0 {
            return 0;
        }
        u32::try_from(slack / self.interval + 1).unwrap_or(u32::MAX).min(self.limit)
    }

    /// The lane's time after starting `started` runs at `now_ms`.
    pub(crate) fn after(&self, tat: Option<i64>, now_ms: i64, started: u32) -> i64 {
        self.base(tat, now_ms * 1_000) + i64::from(started) * self.interval
    }

    /// When the lane may start a run again: `tat − τ`, in whole ms rounded up.
    pub(crate) fn next_allowed(&self, tat: Option<i64>, now_ms: i64) -> Timestamp {
        let at = self.base(tat, now_ms * 1_000) - self.tolerance();
        Timestamp(at.div_euclid(1_000) + i64::from(at.rem_euclid(1_000) != 0))
    }
}

/// The stored key of a lane: `""` for the whole queue or its runs without a key.
fn stored(lane: &LaneKey) -> &str {
    lane.as_deref().unwrap_or("")
}

/// A queue's rate limit during one dequeue: the times of the lanes read so far, and the starts
/// made in each, written back at the end.
#[derive(Debug)]
pub(crate) struct QueueRate {
    queue: QueueId,
    gcra: Gcra,
    per_key: bool,
    now_ms: i64,
    tats: HashMap<LaneKey, Option<i64>>,
    started: HashMap<LaneKey, u32>,
    /// Lanes whose time was clamped (see [`Gcra::clamp`]), to be written even without a start.
    clamped: Vec<LaneKey>,
}

impl QueueRate {
    /// The rate of `queue` as of `now`, when it has one in force.
    pub(crate) fn of(queue: &stint_store::QueueRow, now: Timestamp) -> Option<QueueRate> {
        let rate = queue.rate()?;
        Some(QueueRate {
            queue: queue.id.clone(),
            gcra: Gcra::new(&rate),
            per_key: rate.per_key,
            now_ms: now.millis(),
            tats: HashMap::new(),
            started: HashMap::new(),
            clamped: Vec::new(),
        })
    }

    /// Whether each concurrency key has the rate on its own.
    pub(crate) fn per_key(&self) -> bool {
        self.per_key
    }

    /// The lane a run with this key counts in.
    fn lane(&self, key: &LaneKey) -> LaneKey {
        if self.per_key { key.clone() } else { None }
    }

    /// Reads the times of those of `lanes` not read yet (the whole queue's when the rate is not per
    /// key). The queue must be locked.
    pub(crate) async fn load(&mut self, tx: &mut dyn Tx, lanes: &[LaneKey]) -> Result<(), Error> {
        let mut missing: Vec<LaneKey> = Vec::new();
        for lane in lanes {
            let lane = self.lane(lane);
            if !self.tats.contains_key(&lane) && !missing.contains(&lane) {
                missing.push(lane);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = missing.iter().map(stored).collect();
        let found: HashMap<String, i64> = tx.rate_tats(&self.queue, &keys).await?.into_iter().collect();
        for lane in missing {
            let mut tat = found.get(stored(&lane)).copied();
            if let Some(clamped) = self.gcra.clamp(tat, self.now_ms) {
                tat = Some(clamped);
                self.clamped.push(lane.clone());
            }
            self.tats.insert(lane, tat);
        }
        Ok(())
    }

    /// How many more runs the lane of `key` may start in this dequeue. A lane not read yet may
    /// start none.
    pub(crate) fn allowed(&self, key: &LaneKey) -> u32 {
        let lane = self.lane(key);
        let Some(tat) = self.tats.get(&lane) else { return 0 };
        let started = self.started.get(&lane).copied().unwrap_or(0);
        self.gcra.allowed(*tat, self.now_ms).saturating_sub(started)
    }

    /// Counts a start in the lane of `key`.
    pub(crate) fn record(&mut self, key: &LaneKey) {
        *self.started.entry(self.lane(key)).or_default() += 1;
    }

    /// The earliest time a lane read in this dequeue that may start nothing now may start again.
    pub(crate) fn next_allowed(&self) -> Option<Timestamp> {
        self.tats
            .iter()
            .filter(|(lane, _)| self.allowed(lane) == 0)
            .map(|(lane, tat)| {
                let started = self.started.get(lane).copied().unwrap_or(0);
                let tat = if started > 0 { Some(self.gcra.after(*tat, self.now_ms, started)) } else { *tat };
                self.gcra.next_allowed(tat, self.now_ms)
            })
            .min()
    }

    /// Writes the times of the lanes that started runs (or whose time was clamped), and deletes as
    /// many of the queue's rows whose time has passed, and a few more: they mean what no row means.
    pub(crate) async fn save(self, tx: &mut dyn Tx) -> Result<(), Error> {
        let mut written = Vec::with_capacity(self.started.len() + self.clamped.len());
        for (lane, started) in &self.started {
            let tat = self.tats.get(lane).copied().flatten();
            written.push((stored(lane), self.gcra.after(tat, self.now_ms, *started)));
        }
        for lane in &self.clamped {
            if !self.started.contains_key(lane)
                && let Some(Some(tat)) = self.tats.get(lane)
            {
                written.push((stored(lane), *tat));
            }
        }
        if written.is_empty() {
            return Ok(());
        }
        tx.rate_set_tats(&self.queue, &written).await?;
        if self.per_key {
            let limit = u32::try_from(written.len()).unwrap_or(u32::MAX).saturating_add(PRUNE_EXTRA);
            tx.rate_prune(&self.queue, self.now_ms * 1_000, limit).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(limit: u32, period_ms: u64) -> Gcra {
        Gcra::new(&RateLimit { limit, period_ms, per_key: false })
    }

    /// Starts as many as allowed at each of `times`, up to `demand` each, tracking the time as a
    /// dequeue does; returns the time of every start.
    fn greedy(gcra: &Gcra, times: &[(i64, u32)]) -> Vec<i64> {
        let mut tat = None;
        let mut starts = Vec::new();
        for &(now, demand) in times {
            let n = gcra.allowed(tat, now).min(demand);
            if n > 0 {
                tat = Some(gcra.after(tat, now, n));
                starts.extend(std::iter::repeat_n(now, n as usize));
            }
        }
        starts
    }

    /// Any `n > limit` consecutive starts span at least `(n − limit)·period / limit`: checked in
    /// integers as `(n − limit)·period ≤ span·limit`.
    fn assert_within_rate(starts: &[i64], limit: u32, period_ms: u64) {
        let (limit, period) = (i128::from(limit), i128::from(period_ms));
        for i in 0..starts.len() {
            for j in i..starts.len() {
                let n = (j - i + 1) as i128;
                let span = i128::from(starts[j] - starts[i]);
                assert!(
                    (n - limit) * period <= span * limit,
                    "{n} starts within {span} ms exceed {limit} per {period} ms: {starts:?}"
                );
            }
        }
    }

    #[test]
    fn a_full_burst_starts_at_once_then_one_per_interval() {
        let gcra = rate(3, 10_000);
        assert_eq!(gcra.allowed(None, 0), 3);
        let tat = Some(gcra.after(None, 0, 3));
        assert_eq!(gcra.allowed(tat, 0), 0);
        assert_eq!(gcra.allowed(tat, 3_333), 0, "T is 3,333.34 ms");
        assert_eq!(gcra.next_allowed(tat, 0), Timestamp(3_334));
        assert_eq!(gcra.allowed(tat, 3_334), 1);
        assert_eq!(gcra.allowed(tat, 6_666), 1);
        assert_eq!(gcra.allowed(tat, 6_667), 2);
        assert_eq!(gcra.allowed(tat, 10_000), 2, "3 intervals are 10,000.002 ms");
        assert_eq!(gcra.allowed(tat, 10_001), 3);
        assert_eq!(gcra.allowed(tat, 1_000_000), 3, "never more than the burst");
        assert_eq!(gcra.allowed(Some(-5), 0), 3, "a time in the past is no time");
    }

    #[test]
    fn starts_spread_over_a_lane_add_up() {
        let gcra = rate(2, 1_000);
        let tat = Some(gcra.after(None, 0, 1));
        assert_eq!(gcra.allowed(tat, 0), 1, "one of two used");
        let tat = Some(gcra.after(tat, 0, 1));
        assert_eq!(gcra.allowed(tat, 499), 0);
        assert_eq!(gcra.allowed(tat, 500), 1);
    }

    #[test]
    fn a_changed_rate_waits_at_most_one_of_its_bursts() {
        let slow = rate(1, 86_400_000);
        let tat = Some(slow.after(None, 0, 1));
        let fast = rate(10, 1_000);
        assert_eq!(fast.clamp(tat, 0), Some(1_000_000), "a day ahead is brought within one burst");
        let tat = fast.clamp(tat, 0);
        assert_eq!(fast.clamp(tat, 0), None, "once");
        assert_eq!(fast.allowed(tat, 0), 0);
        assert_eq!(fast.next_allowed(tat, 0), Timestamp(100), "one interval of the new rate");
        assert_eq!(fast.allowed(tat, 1_000), 10);
        assert_eq!(fast.clamp(Some(fast.after(None, 0, 10)), 0), None, "a full burst is within one");
    }

    #[test]
    fn the_interval_is_rounded_up_so_the_rate_is_never_exceeded() {
        assert_eq!(rate(3, 1_000).interval, 333_334);
        assert_eq!(rate(100_000, 1_000).interval, 10);
        assert_eq!(rate(1, 86_400_000).interval, 86_400_000_000);
        let gcra = rate(3, 1_000);
        let times: Vec<(i64, u32)> = (0..10_000).map(|ms| (ms, 1_000)).collect();
        let starts = greedy(&gcra, &times);
        assert_within_rate(&starts, 3, 1_000);
        assert_eq!(starts.len(), 3 + 29, "the burst, then 3 per second for the other 9.999 s");
    }

    #[test]
    fn generated_demand_never_exceeds_the_rate_and_gets_it() {
        let mut seed = 0x9e37_79b9_u64;
        let mut below = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..100 {
            let limit = 1 + below(20) as u32;
            let period = 1_000 + below(20_000);
            let gcra = rate(limit, period);
            let mut now = 0;
            let mut times = Vec::new();
            for _ in 0..60 {
                now += below(period / 3) as i64;
                times.push((now, 1 + below(u64::from(limit) * 2) as u32));
            }
            let starts = greedy(&gcra, &times);
            assert_within_rate(&starts, limit, period);
            // Asked for all it may, a lane gets its rate: a burst, then one per interval.
            let steady: Vec<(i64, u32)> = (0..(3 * period as i64)).step_by(7).map(|t| (t, u32::MAX)).collect();
            let got = greedy(&gcra, &steady).len() as u64;
            let span = steady.last().unwrap().0 as u64;
            assert!(got + 1 >= u64::from(limit) + span * u64::from(limit) / period, "limit {limit}/{period}: {got}");
        }
    }
}
