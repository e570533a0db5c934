//! Wake-ups for workers waiting on an environment's queues, and on a run's waits.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use stint_types::{EnvId, RunId};
use tokio::sync::Notify;

/// One `Notify` per environment. A commit that may have made a run available (a trigger, a
/// retry, a freed concurrency slot) wakes every waiter of the environment.
#[derive(Default)]
pub struct Notifier {
    envs: Mutex<HashMap<EnvId, Arc<Notify>>>,
}

impl Notifier {
    /// The environment's `Notify`, created on first use.
    pub fn get(&self, env: &EnvId) -> Arc<Notify> {
        self.envs.lock().entry(env.clone()).or_default().clone()
    }

    /// Wakes everyone waiting on any environment.
    pub fn wake_all(&self) {
        for notify in self.envs.lock().values() {
            notify.notify_waiters();
        }
    }

    /// Wakes everyone waiting on the environment.
    pub fn wake(&self, env: &EnvId) {
        if let Some(notify) = self.envs.lock().get(env) {
            notify.notify_waiters();
        }
    }
}

/// One `Notify` per run whose worker waits on this node for the run's waits to complete; an
/// entry lives while someone watches it.
#[derive(Default)]
pub struct RunWatch {
    runs: Mutex<HashMap<RunId, Arc<Notify>>>,
}

impl RunWatch {
    /// The run's `Notify`, created when nobody watches it yet. Give it back with
    /// [`RunWatch::unwatch`].
    pub fn watch(&self, run: &RunId) -> Arc<Notify> {
        self.runs.lock().entry(run.clone()).or_default().clone()
    }

    /// Stops watching: the entry goes when its last watcher does.
    pub fn unwatch(&self, run: &RunId, notify: Arc<Notify>) {
        let mut runs = self.runs.lock();
        drop(notify);
        if runs.get(run).is_some_and(|n| Arc::strong_count(n) == 1) {
            runs.remove(run);
        }
    }

    /// Wakes whoever watches the run.
    pub fn wake(&self, run: &RunId) {
        if let Some(notify) = self.runs.lock().get(run) {
            notify.notify_waiters();
        }
    }
}
