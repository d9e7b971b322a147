//! Password hashes (argon2id, PHC strings), generated passwords, and the rule every
//! password must meet.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use crmbet_core::{Error, Result};
use rand::Rng;
use rand::distr::Alphanumeric;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted: argon2 takes any length, but a bound keeps requests small.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Length of a generated password: 20 alphanumerics, about 119 bits.
const GENERATED_PASSWORD_CHARS: usize = 20;

/// Checks a new password against the length rule.
pub fn check_new_password(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(Error::invalid_argument(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters, got {length}"),
        ));
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(Error::invalid_argument(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters, got {length}"),
        ));
    }
    Ok(())
}

/// A random password of letters and digits.
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(GENERATED_PASSWORD_CHARS)
        .map(char::from)
        .collect()
}

/// The argon2id PHC string of `password`, with a random salt and the default cost.
/// CPU-heavy: call it off the async runtime.
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| Error::Internal(format!("hashing a password: {error}")))
}

/// Whether `password` matches the PHC string `stored`. With `stored` absent (no such
/// account) the password is checked against a fixed dummy hash of the same cost, so an
/// unknown username takes as long as a wrong password. CPU-heavy: call it off the async
/// runtime.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let matches = |hash: &str| {
        Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
    };
    match stored {
        Some(hash) => matches(hash),
        None => {
            let _ = matches(dummy_hash());
            false
        }
    }
}

/// A hash of a random password nobody knows, made once per process with the same cost as
/// real hashes.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&generate_password()).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot make the dummy password hash");
            String::new()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("correct horse batterY", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
        assert!(!verify_password("x", Some("not a phc string")));
    }

    /// The cost of a check is set by the stored hash's parameters; the dummy hash must
    /// carry the same as real ones (wall-clock timing would be flaky on a busy machine).
    #[test]
    fn unknown_users_cost_as_much_as_wrong_passwords() {
        let cost = |phc: &str| {
            let parsed = argon2::PasswordHash::new(phc).unwrap();
            (parsed.algorithm.to_string(), parsed.params.to_string())
        };
        let real = hash_password("correct horse battery").unwrap();
        assert_eq!(cost(dummy_hash()), cost(&real));
        assert!(dummy_hash().starts_with("$argon2id$"), "{}", dummy_hash());
    }

    #[test]
    fn password_rule_and_generated_passwords() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(&"x".repeat(300)).is_err());
        let generated = generate_password();
        assert_eq!(generated.len(), 20);
        assert!(check_new_password(&generated).is_ok());
        assert_ne!(generated, generate_password());
    }
}
