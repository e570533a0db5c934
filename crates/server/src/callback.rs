//! Callback URLs of waitpoint tokens: `{base}/api/v1/waitpoints/tokens/{id}/callback/{hash}`,
//! where `hash` is the hex HMAC-SHA256 of the token's id keyed by the instance's signing secret.
//! Whoever holds the URL may complete the token without a credential, as in Trigger.dev (which
//! keys the HMAC with the environment's API key; Stint's secret is the instance's own, so
//! revoking a key does not change the URLs already handed out).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::HOST;
use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stint_types::WaitpointId;

use crate::AppState;
use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// The instance's signing secret, read from the engine once and kept for the server's life.
pub async fn secret(state: &AppState) -> Result<&str, ApiError> {
    let secret = state.signing_secret.get_or_try_init(|| state.engine.signing_secret()).await?;
    Ok(secret.as_str())
}

/// The hex HMAC-SHA256 of `id` keyed by `secret`.
pub fn sign(secret: &str, id: &WaitpointId) -> String {
    hex::encode(mac(secret, id).finalize().into_bytes())
}

/// Whether `hash` is the hex HMAC-SHA256 of `id` keyed by `secret`, compared in constant time.
pub fn verify(secret: &str, id: &WaitpointId, hash: &str) -> bool {
    let Ok(given) = hex::decode(hash) else { return false };
    mac(secret, id).verify_slice(&given).is_ok()
}

fn mac(secret: &str, id: &WaitpointId) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(id.as_str().as_bytes());
    mac
}

/// The callback URL of token `id` under `base`.
pub fn url(base: &str, secret: &str, id: &WaitpointId) -> String {
    format!("{base}/api/v1/waitpoints/tokens/{id}/callback/{}", sign(secret, id))
}

/// Where clients reach this server, for the callback URLs shown in a response: `http://` and the
/// request's `Host` header (or, over HTTP/2, the URI's authority).
pub struct Base(pub String);

impl FromRequestParts<Arc<AppState>> for Base {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<AppState>) -> Result<Self, ApiError> {
        let host = match parts.headers.get(HOST) {
            Some(value) => value.to_str().ok().map(str::to_string),
            None => parts.uri.authority().map(ToString::to_string),
        };
        let host = host.filter(|h| !h.is_empty() && !h.contains(['/', ' '])).ok_or_else(|| {
            ApiError::bad_request("The request needs a Host header: it makes the token's callback URL")
        })?;
        Ok(Base(format!("http://{host}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_ids() {
        let id = WaitpointId::from_parts(1_700_000_000_000, 7);
        let other = WaitpointId::from_parts(1_700_000_000_000, 8);
        let hash = sign("secret", &id);
        assert_eq!(hash.len(), 64);
        assert!(verify("secret", &id, &hash));
        assert!(!verify("secret", &other, &hash));
        assert!(!verify("another secret", &id, &hash));
        assert!(!verify("secret", &id, &hash[..62]));
        assert!(!verify("secret", &id, "not hex"));
        assert!(verify("secret", &id, &hash.to_uppercase()), "hex is read in either case");
        assert_eq!(
            url("http://h:1", "secret", &id),
            format!("http://h:1/api/v1/waitpoints/tokens/{id}/callback/{hash}")
        );
    }

    #[test]
    fn matches_a_known_hmac_sha256() {
        // RFC 4231, test case 2.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
