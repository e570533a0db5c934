//! Wake-ups for workers waiting on an environment's queues.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use stint_types::EnvId;
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
