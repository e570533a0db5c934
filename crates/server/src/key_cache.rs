//! Resolving a request's credential to what it opens, through a small cache in front of the store.
//!
//! Several servers can share one database, so a key created or revoked through one of them must
//! work, or stop working, on the others. Every node therefore looks a credential up in the store
//! on a cache miss and keeps the answer, found or not, for a short time only: a key revoked
//! elsewhere stops working here within that time, and one created elsewhere works at once (its
//! hash cannot be cached as missing unless it was presented before it existed). The node that
//! revokes a key forgets it at once. Credentials are looked up by the SHA-256 of their text, so
//! the comparison never touches the text.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use stint_engine::Engine;
use stint_store::{EnvironmentRow, ProjectRow};

use crate::auth::{ACCESS_TOKEN_PREFIX, hash_key};

/// How long an answer is kept: a key revoked on another node opens nothing after this time.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Most answers kept at once.
pub const CAPACITY: usize = 10_000;

/// What a credential opens.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// A secret key: one environment.
    Environment(EnvironmentRow),
    /// A personal access token: its project's project-level endpoints.
    Project(ProjectRow),
}

struct Entry {
    found: Option<Credential>,
    at: Instant,
}

/// Answers by credential hash, each kept for the time to live.
pub struct Keys {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Keys {
    /// An empty cache whose answers last `ttl`.
    pub fn new(ttl: Duration) -> Keys {
        Keys { ttl, entries: Mutex::default() }
    }

    /// What `text` opens, from the cache when it answered within the time to live, else from the
    /// store. Text that is neither a secret key (`tr_…`) nor a personal access token (`tr_pat_…`)
    /// opens nothing and is not looked up.
    pub async fn resolve(&self, engine: &Engine, text: &str) -> Result<Option<Credential>, stint_engine::Error> {
        if !text.starts_with("tr_") {
            return Ok(None);
        }
        let hash = hash_key(text);
        if let Some(entry) = self.entries.lock().get(&hash)
            && entry.at.elapsed() < self.ttl
        {
            return Ok(entry.found.clone());
        }
        let found = if text.starts_with(ACCESS_TOKEN_PREFIX) {
            engine.token_project(&hash).await?.map(Credential::Project)
        } else {
            engine.key_environment(&hash).await?.map(Credential::Environment)
        };
        self.remember(hash, found.clone());
        Ok(found)
    }

    /// The environment the secret key `key` opens.
    pub async fn environment(&self, engine: &Engine, key: &str) -> Result<Option<EnvironmentRow>, stint_engine::Error> {
        Ok(match self.resolve(engine, key).await? {
            Some(Credential::Environment(env)) => Some(env),
            _ => None,
        })
    }

    /// The project the personal access token `token` opens.
    pub async fn project(&self, engine: &Engine, token: &str) -> Result<Option<ProjectRow>, stint_engine::Error> {
        Ok(match self.resolve(engine, token).await? {
            Some(Credential::Project(project)) => Some(project),
            _ => None,
        })
    }

    /// Drops the answer for the credential hashed as `hash`, so this node asks the store next
    /// time: after it revokes or creates a credential.
    pub fn forget(&self, hash: &str) {
        self.entries.lock().remove(hash);
    }

    /// Keeps an answer. A full cache first drops its expired answers, then, if that freed nothing,
    /// all of them: the cache is bounded, and an empty one only costs lookups.
    fn remember(&self, hash: String, found: Option<Credential>) {
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(&hash) {
            entries.retain(|_, entry| entry.at.elapsed() < self.ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(hash, Entry { found, at: Instant::now() });
    }

    /// How many answers are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_bounded() {
        let keys = Keys::new(Duration::from_secs(60));
        for n in 0..CAPACITY + 5 {
            keys.remember(format!("{n:064x}"), None);
            assert!(keys.len() <= CAPACITY);
        }
        assert!(keys.len() < CAPACITY, "a full cache makes room");
        keys.remember("known".into(), None);
        keys.forget("known");
        assert!(!keys.entries.lock().contains_key("known"));
    }
}
