//! Opaque refresh tokens: 32 random bytes as base64url, stored only as a SHA-256 digest, so
//! a copy of the database does not hand out sessions.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// How long a refresh token stays usable (each use rotates it).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// Longest refresh token accepted in a request; ours are 43 characters.
pub const MAX_REFRESH_TOKEN_CHARS: usize = 128;

/// A new refresh token, to hand to the client once.
pub fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The digest stored for `token`: lowercase hex of its SHA-256.
pub fn refresh_token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let token = new_refresh_token();
        assert_eq!(token.len(), 43);
        assert_ne!(token, new_refresh_token());
        let digest = refresh_token_digest(&token);
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains(&token));
        assert_eq!(
            refresh_token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
