//! Making ids from the engine's clock and random bits, in increasing order.

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use stint_types::{
    BatchId, EnvId, KeyId, OrgId, ProjectId, QueueId, RunId, ScheduleId, SnapshotId, Timestamp, TokenId, WaitpointId,
    WorkerId,
};

/// Makes ids. Each id is later than the one before, even within one millisecond or when the
/// clock steps back, so a run's snapshots sort in the order they were made.
pub struct Ids {
    state: Mutex<State>,
}

struct State {
    rng: StdRng,
    last_millis: u64,
    last_random: u128,
}

/// Random bits in a ULID.
const RANDOM_BITS: u32 = 80;

impl Ids {
    /// An id maker seeded from the operating system.
    pub fn from_entropy() -> Ids {
        Ids::with_rng(rand::make_rng())
    }

    /// An id maker with a fixed seed, for tests.
    pub fn seeded(seed: u64) -> Ids {
        Ids::with_rng(StdRng::seed_from_u64(seed))
    }

    fn with_rng(rng: StdRng) -> Ids {
        Ids { state: Mutex::new(State { rng, last_millis: 0, last_random: 0 }) }
    }

    fn parts(&self, now: Timestamp) -> (u64, u128) {
        let mut state = self.state.lock();
        let millis = u64::try_from(now.millis()).unwrap_or(0);
        let limit = 1u128 << RANDOM_BITS;
        if millis > state.last_millis {
            // Leave headroom so increments within this millisecond cannot overflow.
            let random = state.rng.random::<u128>() % (limit >> 1);
            state.last_millis = millis;
            state.last_random = random;
        } else if state.last_random + 1 < limit {
            state.last_random += 1;
        } else {
            state.last_millis += 1;
            state.last_random = 0;
        }
        (state.last_millis, state.last_random)
    }

    /// A new run id.
    pub fn run(&self, now: Timestamp) -> RunId {
        let (millis, random) = self.parts(now);
        RunId::from_parts(millis, random)
    }

    /// A new batch id.
    pub fn batch(&self, now: Timestamp) -> BatchId {
        let (millis, random) = self.parts(now);
        BatchId::from_parts(millis, random)
    }

    /// A new snapshot id.
    pub fn snapshot(&self, now: Timestamp) -> SnapshotId {
        let (millis, random) = self.parts(now);
        SnapshotId::from_parts(millis, random)
    }

    /// A new worker id.
    pub fn worker(&self, now: Timestamp) -> WorkerId {
        let (millis, random) = self.parts(now);
        WorkerId::from_parts(millis, random)
    }

    /// A new queue id.
    pub fn queue(&self, now: Timestamp) -> QueueId {
        let (millis, random) = self.parts(now);
        QueueId::from_parts(millis, random)
    }

    /// A new environment id.
    pub fn env(&self, now: Timestamp) -> EnvId {
        let (millis, random) = self.parts(now);
        EnvId::from_parts(millis, random)
    }

    /// A new project id.
    pub fn project(&self, now: Timestamp) -> ProjectId {
        let (millis, random) = self.parts(now);
        ProjectId::from_parts(millis, random)
    }

    /// A new organization id.
    pub fn org(&self, now: Timestamp) -> OrgId {
        let (millis, random) = self.parts(now);
        OrgId::from_parts(millis, random)
    }

    /// A new secret key id.
    pub fn key(&self, now: Timestamp) -> KeyId {
        let (millis, random) = self.parts(now);
        KeyId::from_parts(millis, random)
    }

    /// A new personal access token id.
    pub fn token(&self, now: Timestamp) -> TokenId {
        let (millis, random) = self.parts(now);
        TokenId::from_parts(millis, random)
    }

    /// A new waitpoint id.
    pub fn waitpoint(&self, now: Timestamp) -> WaitpointId {
        let (millis, random) = self.parts(now);
        WaitpointId::from_parts(millis, random)
    }

    /// A new schedule id.
    pub fn schedule(&self, now: Timestamp) -> ScheduleId {
        let (millis, random) = self.parts(now);
        ScheduleId::from_parts(millis, random)
    }

    /// A random number in [0, 1), for retry jitter.
    pub fn unit(&self) -> f64 {
        self.state.lock().rng.random::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_within_a_millisecond_and_when_time_steps_back() {
        let ids = Ids::seeded(1);
        let a = ids.snapshot(Timestamp(1_000));
        let b = ids.snapshot(Timestamp(1_000));
        let c = ids.snapshot(Timestamp(900));
        let d = ids.snapshot(Timestamp(1_001));
        assert!(a < b && b < c && c < d);
    }

    #[test]
    fn seeded_ids_repeat() {
        assert_eq!(Ids::seeded(7).run(Timestamp(5)), Ids::seeded(7).run(Timestamp(5)));
    }
}
