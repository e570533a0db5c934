//! Credentials: making them, hashing them, and the extractors that resolve a request's
//! credential to what it opens: a secret key to its environment ([`Env`]), a personal access
//! token to its project ([`ProjectAccess`]), the instance's admin token to the admin API
//! ([`Admin`]). Each opens only its own endpoints; any other credential is a 401.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use rand::RngExt;
use sha2::{Digest, Sha256};
use stint_store::{EnvironmentRow, ProjectRow};
use stint_types::EnvironmentType;

use crate::AppState;
use crate::error::ApiError;

/// Characters after a key's prefix, as Trigger.dev makes them.
const KEY_BODY_LEN: usize = 24;
/// Characters after a personal access token's prefix, as Trigger.dev makes them.
const TOKEN_BODY_LEN: usize = 40;
/// Characters after the admin token's prefix.
const ADMIN_TOKEN_BODY_LEN: usize = 32;
const KEY_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The prefix of personal access tokens.
pub const ACCESS_TOKEN_PREFIX: &str = "tr_pat_";
/// The prefix of the instance's admin token.
pub const ADMIN_TOKEN_PREFIX: &str = "stint_admin_";

/// `len` random characters `[0-9a-zA-Z]`.
fn random_body(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| KEY_ALPHABET[rng.random_range(0..KEY_ALPHABET.len())] as char).collect()
}

/// A new random secret key for an environment kind: its prefix and 24 characters `[0-9a-zA-Z]`.
pub fn generate_key(kind: EnvironmentType) -> String {
    format!("{}{}", kind.secret_key_prefix(), random_body(KEY_BODY_LEN))
}

/// A new random additional secret key, as Trigger.dev shapes them: `sk_` after the kind's prefix
/// (`tr_prod_sk_…`), then 24 characters `[0-9a-zA-Z]`.
pub fn generate_additional_key(kind: EnvironmentType) -> String {
    format!("{}sk_{}", kind.secret_key_prefix(), random_body(KEY_BODY_LEN))
}

/// A new random personal access token: `tr_pat_` and 40 characters `[0-9a-zA-Z]`.
pub fn generate_access_token() -> String {
    format!("{ACCESS_TOKEN_PREFIX}{}", random_body(TOKEN_BODY_LEN))
}

/// A new random admin token: `stint_admin_` and 32 characters `[0-9a-zA-Z]`.
pub fn generate_admin_token() -> String {
    format!("{ADMIN_TOKEN_PREFIX}{}", random_body(ADMIN_TOKEN_BODY_LEN))
}

/// Checks that an admin token given by the operator has the shape of a generated one.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    let fits = token
        .strip_prefix(ADMIN_TOKEN_PREFIX)
        .is_some_and(|body| body.len() == ADMIN_TOKEN_BODY_LEN && body.chars().all(|c| c.is_ascii_alphanumeric()));
    if !fits {
        return Err(format!(
            "an admin token is '{ADMIN_TOKEN_PREFIX}' followed by {ADMIN_TOKEN_BODY_LEN} letters or digits"
        ));
    }
    Ok(())
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

/// The environment of the request's secret key (`Authorization: Bearer <key>`). A revoked key,
/// a personal access token or the admin token is a 401.
pub struct Env(pub EnvironmentRow);

impl FromRequestParts<Arc<AppState>> for Env {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        // The rate limit resolved the key already when one is in force.
        if let Some(env) = parts.extensions.get::<EnvironmentRow>() {
            return Ok(Env(env.clone()));
        }
        let key = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        state.keys.environment(&state.engine, key).await?.map(Env).ok_or_else(ApiError::unauthorized)
    }
}

/// The project of the request's personal access token (`Authorization: Bearer tr_pat_…`), for
/// project-level endpoints. A secret key, a revoked token or the admin token is a 401, as
/// Trigger.dev answers.
pub struct ProjectAccess(pub ProjectRow);

impl FromRequestParts<Arc<AppState>> for ProjectAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "Invalid or Missing Access Token");
        let token = bearer(&parts.headers).ok_or_else(refused)?;
        state.keys.project(&state.engine, token).await?.map(ProjectAccess).ok_or_else(refused)
    }
}

/// The request carries the instance's admin token: the only credential the admin API accepts.
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "Invalid or Missing admin token");
        let token = bearer(&parts.headers).ok_or_else(refused)?;
        // Hashes are compared, so the time taken says nothing about the token's text.
        if token.starts_with(ADMIN_TOKEN_PREFIX) && hash_key(token) == state.admin_hash {
            Ok(Admin)
        } else {
            Err(refused())
        }
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
    fn additional_keys_tokens_and_admin_tokens_have_their_shapes() {
        let key = generate_additional_key(EnvironmentType::Production);
        assert!(key.starts_with("tr_prod_sk_") && key.len() == "tr_prod_sk_".len() + KEY_BODY_LEN, "{key}");
        assert_eq!(key_prefix(&key), format!("tr_prod_sk_{}", &key[11..15]));
        let token = generate_access_token();
        assert!(token.starts_with("tr_pat_") && token.len() == "tr_pat_".len() + TOKEN_BODY_LEN, "{token}");
        let admin = generate_admin_token();
        assert_eq!(admin.len(), ADMIN_TOKEN_PREFIX.len() + ADMIN_TOKEN_BODY_LEN);
        assert!(check_admin_token(&admin).is_ok());
        assert_ne!(generate_admin_token(), admin);
        for bad in ["", "stint_admin_short", "tr_prod_abcdefghijklmnopqrstuvwxyzabcdef", &format!("{admin}x")] {
            assert!(check_admin_token(bad).unwrap_err().contains("stint_admin_"), "{bad}");
        }
        assert!(check_admin_token(&admin.replace(&admin[12..13], "-")).is_err());
    }

    #[test]
    fn prefix_shows_the_kind_and_four_characters() {
        assert_eq!(key_prefix("tr_prod_abcdefgh"), "tr_prod_abcd");
        assert_eq!(key_prefix("tr_dev_1234567"), "tr_dev_1234");
    }
}
