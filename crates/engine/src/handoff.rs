//! Handing a new run straight to a worker that is waiting for one.
//!
//! A worker whose dequeue found nothing registers here while it waits. A trigger of one of its
//! tasks, into a queue with a free slot and nothing ready ahead of it, takes the waiting worker
//! and starts the run's attempt for it in the trigger's own transaction; once that commits, the
//! run is delivered to the waiting dequeue. The run reaches the worker after one commit instead
//! of two (the trigger's, then the dequeue's).

use std::collections::HashMap;

use parking_lot::Mutex;
use stint_store::{RunRow, WorkerRow};
use stint_types::{EnvId, WorkerId};
use tokio::sync::oneshot;

/// Workers waiting for a run, and those taken by a trigger that has not committed yet.
#[derive(Default)]
pub(crate) struct Handoffs {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// The waiting tickets of each environment; a pool worker's ticket waits in each of its
    /// environments, and leaves them all when one takes it.
    waiting: HashMap<EnvId, Vec<Waiting>>,
    /// Where each waiting ticket's run goes.
    delivers: HashMap<u64, oneshot::Sender<RunRow>>,
    taken: HashMap<u64, oneshot::Sender<RunRow>>,
}

impl State {
    /// Takes the ticket out of the waiting lists of `envs`.
    fn forget(&mut self, envs: &[EnvId], id: u64) {
        for env in envs {
            if let Some(waiting) = self.waiting.get_mut(env) {
                waiting.retain(|w| w.id != id);
            }
        }
    }
}

struct Waiting {
    id: u64,
    worker: WorkerRow,
}

/// A waiting dequeue's place in the registry.
pub(crate) struct Ticket {
    /// Its id.
    pub(crate) id: u64,
    /// Where a handed-off run arrives. Closed without a run when the trigger that took this
    /// ticket failed, or the worker was removed.
    pub(crate) run: oneshot::Receiver<RunRow>,
}

impl Handoffs {
    /// Registers `worker` as waiting, in each environment it serves.
    pub(crate) fn wait(&self, worker: &WorkerRow) -> Ticket {
        let (deliver, run) = oneshot::channel();
        let mut state = self.state.lock();
        state.next += 1;
        let id = state.next;
        state.delivers.insert(id, deliver);
        for env in &worker.env_ids {
            state.waiting.entry(env.clone()).or_default().push(Waiting { id, worker: worker.clone() });
        }
        Ticket { id, run }
    }

    /// Takes the ticket off the registry. False when a trigger has taken it already, in which case
    /// its run (or its closing) follows shortly.
    pub(crate) fn leave(&self, worker: &WorkerRow, id: u64) -> bool {
        let mut state = self.state.lock();
        if state.delivers.remove(&id).is_none() {
            return false;
        }
        state.forget(&worker.env_ids, id);
        true
    }

    /// Takes the longest-waiting worker of `env` that runs `task`.
    pub(crate) fn take(&self, env: &EnvId, task: &str) -> Option<(u64, WorkerRow)> {
        let mut state = self.state.lock();
        let waiting = state.waiting.get_mut(env)?;
        let at = waiting.iter().position(|w| w.worker.task_ids.iter().any(|t| t == task))?;
        let Waiting { id, worker } = waiting.remove(at);
        state.forget(&worker.env_ids, id);
        let deliver = state.delivers.remove(&id)?;
        state.taken.insert(id, deliver);
        Some((id, worker))
    }

    /// Delivers a committed run to the ticket a trigger took.
    pub(crate) fn deliver(&self, id: u64, run: RunRow) {
        let Some(deliver) = self.state.lock().taken.remove(&id) else { return };
        if let Err(run) = deliver.send(run) {
            tracing::warn!(run = %run.id, "the worker handed this run left before it arrived; it is retried after its heartbeat timeout");
        }
    }

    /// Closes a taken ticket whose trigger did not commit, so its dequeue looks again.
    pub(crate) fn release(&self, id: u64) {
        self.state.lock().taken.remove(&id);
    }

    /// How many dequeues of `env` are waiting.
    pub(crate) fn waiting(&self, env: &EnvId) -> usize {
        self.state.lock().waiting.get(env).map_or(0, Vec::len)
    }

    /// Closes every waiting ticket of a worker.
    pub(crate) fn remove_worker(&self, worker: &WorkerId) {
        let mut state = self.state.lock();
        let mut closed = Vec::new();
        for waiting in state.waiting.values_mut() {
            waiting.retain(|w| {
                let keep = &w.worker.id != worker;
                if !keep {
                    closed.push(w.id);
                }
                keep
            });
        }
        for id in closed {
            state.delivers.remove(&id);
        }
    }
}
