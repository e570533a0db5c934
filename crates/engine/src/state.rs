//! Moving runs between states: the one place a run's next state is written.
//!
//! Every system builds the next state with [`Changes::next`], edits it, and writes it with
//! [`Changes::apply`], which fences on the snapshot the run was read at, appends the snapshot,
//! and keeps the queues' running counts in step with the slots runs hold. Counts are written
//! once per queue when the job ends ([`Changes::flush`]).

use std::collections::{BTreeMap, BTreeSet};

use stint_store::{RunRow, SnapshotRow, Transition, Tx};
use stint_types::{BatchId, EnvId, ExecutionStatus, QueueId, RunId, RunStatus, Timestamp};

use crate::Error;
use crate::ids::Ids;
use crate::systems::attempt::Completed;

/// A run's next state, worked out from the state it was read in, and what making the move
/// means for the caller.
#[derive(Debug, Clone)]
pub(crate) struct Plan<T = Completed> {
    /// The run as read; its snapshot is the one the move is fenced on.
    pub(crate) from: RunRow,
    /// The next state.
    pub(crate) next: RunRow,
    /// Why the run moves, in words, for its snapshot.
    pub(crate) description: String,
    /// The answer once the move is made.
    pub(crate) answer: T,
}

impl<T> Plan<T> {
    /// A plan.
    pub(crate) fn new(from: RunRow, next: RunRow, description: String, answer: T) -> Plan<T> {
        Plan { from, next, description, answer }
    }
}

/// What a job changed beyond the runs themselves.
#[derive(Default)]
pub(crate) struct Changes {
    /// Per queue: the change of its running count, and of its running runs with a key.
    running: BTreeMap<QueueId, (i64, i64)>,
    /// The change of the running count of each concurrency key of a queue.
    lanes: BTreeMap<(QueueId, String), i64>,
    /// Environments whose waiting workers should look again after the commit.
    pub(crate) wake: BTreeSet<EnvId>,
    /// Runs started for a waiting worker, to deliver to its ticket after the commit.
    pub(crate) handoffs: Vec<(u64, RunRow)>,
    /// Runs that finished: the waitpoints of those waited on are completed before the commit.
    pub(crate) finished: Vec<(RunId, Option<BatchId>)>,
    /// Runs whose waits completed while their attempt was alive: their workers' continue calls
    /// are woken after the commit.
    pub(crate) continued: Vec<RunId>,
}

impl Changes {
    /// A copy of `run` moved to `status`/`run_status` with a new snapshot id, out of its queue,
    /// ready to edit. A run waits in its queue only while its current snapshot says so: putting
    /// it back is the caller's explicit choice (`queue_score`), and so are its TTL's deadline and
    /// its debounce key, which apply only while it waits for its first attempt or its delay.
    pub(crate) fn next(
        run: &RunRow,
        ids: &Ids,
        now: Timestamp,
        status: ExecutionStatus,
        run_status: RunStatus,
    ) -> RunRow {
        let mut next = run.clone();
        next.snapshot_id = ids.snapshot(now);
        next.execution_status = status;
        next.status = run_status;
        next.updated_at = now;
        next.queue_score = None;
        next.ttl_expires_at = None;
        next.debounce_key = None;
        next.resuming = false;
        next
    }

    /// Writes `next` over `from`, fenced on `from`'s snapshot, with a snapshot saying
    /// `description`.
    pub(crate) async fn apply(
        &mut self,
        tx: &mut dyn Tx,
        from: &RunRow,
        next: &RunRow,
        description: &str,
    ) -> Result<(), Error> {
        let snapshot = snapshot_of(next, description);
        tx.run_transition(&from.snapshot_id, next, &snapshot).await.map_err(|e| match e {
            stint_store::Error::Stale { run_id, current } => Error::Stale { run_id, current },
            other => Error::Store(other),
        })?;
        self.record(from, next);
        Ok(())
    }

    /// Makes several planned moves at once, each fenced and judged on its own; the answers are in
    /// the order of `plans`.
    pub(crate) async fn apply_many<T: Sync>(
        &mut self,
        tx: &mut dyn Tx,
        plans: &[&Plan<T>],
    ) -> Result<Vec<Result<(), Error>>, Error> {
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        let moves: Vec<Transition> = plans
            .iter()
            .map(|plan| Transition {
                expected: plan.from.snapshot_id.clone(),
                run: plan.next.clone(),
                snapshot: snapshot_of(&plan.next, &plan.description),
            })
            .collect();
        let results = tx.run_transition_many(&moves).await?;
        let mut answers = Vec::with_capacity(results.len());
        for (plan, result) in plans.iter().zip(results) {
            answers.push(match result {
                Ok(()) => {
                    self.record(&plan.from, &plan.next);
                    Ok(())
                }
                Err(stint_store::Error::Stale { run_id, current }) => Err(Error::Stale { run_id, current }),
                Err(other) => Err(Error::Store(other)),
            });
        }
        Ok(answers)
    }

    /// Keeps the running counts and wake-ups in step with a move that was made.
    fn record(&mut self, from: &RunRow, next: &RunRow) {
        debug_assert!(!from.status.is_final(), "terminal runs never move");
        debug_assert_eq!(
            next.queue_score.is_some(),
            next.execution_status == ExecutionStatus::Queued,
            "a run waits in its queue exactly while it is queued"
        );
        let delta = i64::from(next.execution_status.holds_slot()) - i64::from(from.execution_status.holds_slot());
        if delta != 0 {
            let counts = self.running.entry(from.queue_id.clone()).or_default();
            counts.0 += delta;
            if let Some(key) = &from.concurrency_key {
                counts.1 += delta;
                *self.lanes.entry((from.queue_id.clone(), key.clone())).or_default() += delta;
            }
        }
        if delta < 0 || next.execution_status == ExecutionStatus::Queued {
            self.wake.insert(from.env_id.clone());
        }
        if next.status.is_final() {
            self.finished.push((next.id.clone(), next.batch_id.clone()));
        }
        if from.execution_status == ExecutionStatus::ExecutingWithWaitpoints
            && next.execution_status == ExecutionStatus::Executing
        {
            self.continued.push(next.id.clone());
        }
    }

    /// Writes the running-count changes: the queues' in queue id order, then the keys' in
    /// queue and key order, so that transactions on several nodes lock rows in one order.
    pub(crate) async fn flush(&mut self, tx: &mut dyn Tx) -> Result<(), Error> {
        for (queue, (delta, keyed)) in std::mem::take(&mut self.running) {
            if delta != 0 || keyed != 0 {
                tx.queue_add_running(&queue, delta, keyed).await?;
            }
        }
        for ((queue, key), delta) in std::mem::take(&mut self.lanes) {
            if delta != 0 {
                tx.lane_add_running(&queue, &key, delta).await?;
            }
        }
        Ok(())
    }
}

/// The snapshot row of a run's new state.
fn snapshot_of(next: &RunRow, description: &str) -> SnapshotRow {
    SnapshotRow {
        id: next.snapshot_id.clone(),
        run_id: next.id.clone(),
        status: next.execution_status,
        run_status: next.status,
        attempt_number: next.attempt_number,
        description: description.to_string(),
        worker_id: next.worker_id.clone(),
        created_at: next.updated_at,
    }
}

/// `run` given up by its worker: no longer held, its attempt's time added to its duration.
pub(crate) fn released(
    run: &RunRow,
    ids: &Ids,
    now: Timestamp,
    status: ExecutionStatus,
    run_status: RunStatus,
) -> RunRow {
    let mut next = Changes::next(run, ids, now, status, run_status);
    if let Some(started) = run.attempt_started_at {
        next.duration_ms += (now.millis() - started.millis()).max(0);
    }
    next.heartbeat_deadline = None;
    next.attempt_started_at = None;
    next
}

/// `run` ended with `status`.
pub(crate) fn ended(run: &RunRow, ids: &Ids, now: Timestamp, status: RunStatus) -> RunRow {
    let mut next = released(run, ids, now, ExecutionStatus::Finished, status);
    next.finished_at = Some(now);
    next
}
