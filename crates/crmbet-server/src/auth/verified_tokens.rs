//! Access tokens already verified by this process, so a client that sends the same token
//! with every call pays for the signature check and claims parsing once, not per call (on
//! the bet-time read it was the largest cost of the request after the network).
//!
//! Only tokens that passed the full verification are kept, under their whole text (so a
//! changed byte is a different token), with the claims that verification produced. Expiry
//! is checked again on every hit by the same rule the verification applies, so a token
//! leaves the memo exactly when it stops verifying. The keys never change while the
//! process runs, so nothing else can turn a verified token invalid.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::auth::tokens::Claims;
use crate::bounded_map::make_room;
use crmbet_core::Role;

/// The most tokens kept: about 400 bytes each. Access tokens live 15 minutes, so this
/// covers many thousands of active clients; past it the expired ones are dropped, and
/// everything if that was not enough.
const CAPACITY: usize = 10_000;

/// Verified tokens by their text.
#[derive(Debug, Default)]
pub(crate) struct VerifiedTokens {
    by_token: Mutex<HashMap<Box<str>, (Claims, Role)>>,
}

impl VerifiedTokens {
    /// The claims and role of `token` if it was verified before and, `now` (seconds since
    /// the epoch), is still within its expiry plus `leeway_seconds`.
    pub(crate) fn get(&self, token: &str, now: i64, leeway_seconds: i64) -> Option<(Claims, Role)> {
        let by_token = self.lock();
        let (claims, role) = by_token.get(token)?;
        is_live(claims, now, leeway_seconds).then(|| (claims.clone(), *role))
    }

    /// Remembers `token` as verified with `claims` and `role`.
    pub(crate) fn remember(
        &self,
        token: &str,
        claims: &Claims,
        role: Role,
        now: i64,
        leeway_seconds: i64,
    ) {
        let mut by_token = self.lock();
        make_room(&mut by_token, CAPACITY, |(claims, _)| {
            is_live(claims, now, leeway_seconds)
        });
        by_token.insert(token.into(), (claims.clone(), role));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, (Claims, Role)>> {
        // A panic elsewhere while holding the lock leaves a valid map behind.
        self.by_token.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The verification's expiry rule: a token verifies until `exp + leeway` has passed.
fn is_live(claims: &Claims, now: i64, leeway_seconds: i64) -> bool {
    claims.exp >= now.saturating_sub(leeway_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "crmbet".to_owned(),
            aud: "crmbet-api".to_owned(),
            sub: "svc".to_owned(),
            role: "service".to_owned(),
            exp,
            iat: exp - 900,
            jti: "id".to_owned(),
            sid: String::new(),
        }
    }

    #[test]
    fn a_remembered_token_is_served_until_expiry_plus_leeway() {
        let memo = VerifiedTokens::default();
        memo.remember("a.b.c", &claims(1_000), Role::Service, 900, 30);
        assert_eq!(
            memo.get("a.b.c", 1_030, 30)
                .map(|(claims, role)| (claims.exp, role)),
            Some((1_000, Role::Service))
        );
        assert!(
            memo.get("a.b.c", 1_031, 30).is_none(),
            "expired past leeway"
        );
        assert!(memo.get("a.b.x", 900, 30).is_none(), "another token");
    }

    #[test]
    fn a_full_memo_drops_expired_tokens_first() {
        let memo = VerifiedTokens::default();
        for index in 0..CAPACITY {
            memo.remember(&format!("old{index}"), &claims(100), Role::Analyst, 50, 0);
        }
        memo.remember("live", &claims(1_000), Role::Admin, 500, 0);
        assert_eq!(
            memo.lock().len(),
            1,
            "expired tokens dropped, the new one kept"
        );
        assert!(memo.get("live", 500, 0).is_some());
    }
}
