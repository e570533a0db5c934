//! What a node keeps in memory about the workers waiting on it: the wake-ups of waiting
//! dequeues, the hand-off registry, and the workers that disconnected. Commits on this node feed
//! it directly; signals from other nodes sharing the database feed it through [`Local::apply`].

use std::collections::HashSet;

use parking_lot::Mutex;
use stint_store::Signal;
use stint_types::{EnvId, WorkerId};

use crate::handoff::Handoffs;
use crate::notify::{Notifier, RunWatch};

/// Workers kept in the disconnected set before it is emptied; only shutting-down workers are in
/// it, and a worker that finished shutting down does not call again.
const MAX_DISCONNECTED: usize = 10_000;

/// A node's in-memory coordination state.
#[derive(Default)]
pub(crate) struct Local {
    /// Wake-ups of dequeues waiting for work, per environment.
    pub(crate) notifier: Notifier,
    /// Dequeues waiting for a run to be handed to them.
    pub(crate) handoffs: Handoffs,
    /// Continue calls waiting for a run's waits to complete.
    pub(crate) runs: RunWatch,
    disconnected: Mutex<HashSet<WorkerId>>,
}

impl Local {
    /// Acts on a signal from another node.
    pub(crate) fn apply(&self, signal: &Signal) {
        match signal {
            Signal::Work(env) => self.notifier.wake(env),
            Signal::Disconnect(worker) => self.disconnect(worker, None),
            Signal::Continued(run) => self.runs.wake(run),
        }
    }

    /// Ends the worker's waiting dequeues and makes its later ones take nothing. `envs` are the
    /// environments it serves, when known.
    pub(crate) fn disconnect(&self, worker: &WorkerId, envs: Option<&[EnvId]>) {
        {
            let mut disconnected = self.disconnected.lock();
            if disconnected.len() >= MAX_DISCONNECTED {
                disconnected.clear();
            }
            disconnected.insert(worker.clone());
        }
        self.handoffs.remove_worker(worker);
        match envs {
            Some(envs) => envs.iter().for_each(|env| self.notifier.wake(env)),
            None => self.notifier.wake_all(),
        }
    }

    /// Whether the worker has disconnected.
    pub(crate) fn is_disconnected(&self, worker: &WorkerId) -> bool {
        self.disconnected.lock().contains(worker)
    }
}
