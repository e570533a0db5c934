//! Secret keys: making them, hashing them, and resolving a request's key to its environment.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use parking_lot::RwLock;
use rand::RngExt;
use sha2::{Digest, Sha256};
use stint_store::{ApiKeyRow, EnvironmentRow};
use stint_types::EnvironmentType;

use crate::AppState;
use crate::error::ApiError;

/// Characters after a key's prefix, as Trigger.dev makes them.
const KEY_BODY_LEN: usize = 24;
const KEY_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A new random secret key for an environment kind: its prefix and 24 characters `[0-9a-zA-Z]`.
pub fn generate_key(kind: EnvironmentType) -> String {
    let mut rng = rand::rng();
    let body: String =
        (0..KEY_BODY_LEN).map(|_| KEY_ALPHABET[rng.random_range(0..KEY_ALPHABET.len())] as char).collect();
    format!("{}{body}", kind.secret_key_prefix())
}

/// The hex SHA-256 under which a key is stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The part of a key shown in listings: its prefix and four characters.
pub fn key_prefix(key: &str) -> String {
    let shown = key.rfind('_').map_or(0, |i| i + 1) + 4;
    key.chars().take(shown).collect()
}

/// Checks that a key given by the operator looks like a key of `kind`.
pub fn check_key(kind: EnvironmentType, key: &str) -> Result<(), String> {
    let prefix = kind.secret_key_prefix();
    let body = key.strip_prefix(prefix).ok_or_else(|| format!("a {} key must start with '{prefix}'", kind.slug()))?;
    if body.len() < 16 || !body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("a {} key needs at least 16 letters or digits after '{prefix}'", kind.slug()));
    }
    Ok(())
}

/// Every key's environment, by the key's hash. Loaded at start; keys are looked up by hash, so
/// the comparison never touches the key text.
#[derive(Default)]
pub struct Keys {
    by_hash: RwLock<HashMap<String, EnvironmentRow>>,
}

impl Keys {
    /// Replaces the table.
    pub fn load(&self, environments: &[EnvironmentRow], keys: &[ApiKeyRow]) {
        let envs: HashMap<_, _> = environments.iter().map(|e| (e.id.clone(), e.clone())).collect();
        let table =
            keys.iter().filter_map(|k| envs.get(&k.env_id).map(|env| (k.key_hash.clone(), env.clone()))).collect();
        *self.by_hash.write() = table;
    }

    /// The environment a key opens.
    pub fn environment(&self, key: &str) -> Option<EnvironmentRow> {
        self.by_hash.read().get(&hash_key(key)).cloned()
    }
}

/// The environment of the request's secret key (`Authorization: Bearer <key>`).
pub struct Env(pub EnvironmentRow);

impl FromRequestParts<Arc<AppState>> for Env {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        // The rate limit resolved the key already when one is in force.
        if let Some(env) = parts.extensions.get::<EnvironmentRow>() {
            return Ok(Env(env.clone()));
        }
        let key = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        state.keys.environment(key).map(Env).ok_or_else(ApiError::unauthorized)
    }
}

/// The key of an `Authorization: Bearer <key>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_trigger_devs_shape() {
        let key = generate_key(EnvironmentType::Staging);
        assert!(key.starts_with("tr_stg_"));
        assert_eq!(key.len(), "tr_stg_".len() + KEY_BODY_LEN);
        assert!(check_key(EnvironmentType::Staging, &key).is_ok());
        assert!(check_key(EnvironmentType::Production, &key).is_err());
        assert_eq!(hash_key(&key).len(), 64);
        assert_ne!(generate_key(EnvironmentType::Staging), key);
    }

    #[test]
    fn prefix_shows_the_kind_and_four_characters() {
        assert_eq!(key_prefix("tr_prod_abcdefgh"), "tr_prod_abcd");
        assert_eq!(key_prefix("tr_dev_1234567"), "tr_dev_1234");
    }
}
