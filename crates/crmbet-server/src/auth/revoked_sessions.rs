//! Login sessions (refresh-token families) revoked lately, so that Logout, a reused refresh
//! token or a revoked family also stops the access tokens issued in that session, not only
//! its refresh tokens. An access token names its session in the `sid` claim.
//!
//! The set is read from the store at most every [`RevokedSessions::MAX_AGE`], so a revocation through
//! another instance reaches this one within that time; one through this instance is
//! recorded here at once. Only sessions revoked within an access token's lifetime (plus
//! the expiry leeway) matter: older ones have no live access token left. While the store
//! cannot be read, the last set stays in use and the read is retried after [`RevokedSessions::MAX_AGE`]: the
//! calls that need the store fail on their own, and a revocation needs the store too.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use crmbet_store::Store;

use crate::auth::tokens::{ACCESS_TOKEN_LIFETIME, LEEWAY_SECONDS};

/// The revoked sessions one instance knows of.
#[derive(Debug)]
pub struct RevokedSessions {
    store: Store,
    known: Mutex<Known>,
    /// One store read at a time refreshes `known`; the others wait for it.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Known {
    /// Each revoked session with when it was last seen revoked (in the store or here).
    sessions: HashMap<String, Instant>,
    read_at: Option<Instant>,
}

impl RevokedSessions {
    /// How old the set of revoked sessions may get before the store is asked again.
    pub const MAX_AGE: Duration = Duration::from_secs(1);

    /// Revocations as `store` records them.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            known: Mutex::default(),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether `session` was revoked, as of at most [`RevokedSessions::MAX_AGE`] ago.
    pub async fn is_revoked(&self, session: &str) -> bool {
        if let Some(revoked) = self.known_if_fresh(session) {
            return revoked;
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(revoked) = self.known_if_fresh(session) {
            return revoked;
        }
        // Timed from before the query, so the set is never older than it says.
        let read_at = Instant::now();
        let since = Utc::now() - chrono::Duration::from_std(window()).unwrap_or_default();
        match self.store.families_revoked_since(since).await {
            Ok(families) => {
                let mut known = self.lock();
                for family in families {
                    known.sessions.insert(family, read_at);
                }
                // Merged, not replaced: a session revoked here while the read ran may be
                // missing from its answer. Entries go once no live token can name them.
                known
                    .sessions
                    .retain(|_, seen| read_at.saturating_duration_since(*seen) < window());
                known.read_at = Some(read_at);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read revoked sessions; using the last known set");
                self.lock().read_at = Some(read_at);
            }
        }
        self.lock().sessions.contains_key(session)
    }

    /// Records that this instance revoked `session` (after the store committed it).
    pub fn revoked_here(&self, session: &str) {
        self.lock()
            .sessions
            .insert(session.to_owned(), Instant::now());
    }

    fn known_if_fresh(&self, session: &str) -> Option<bool> {
        let known = self.lock();
        let fresh = known
            .read_at
            .is_some_and(|read_at| read_at.elapsed() < Self::MAX_AGE);
        fresh.then(|| known.sessions.contains_key(session))
    }

    fn lock(&self) -> MutexGuard<'_, Known> {
        // A panic elsewhere while holding the lock leaves a valid set behind.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long a revoked session matters: an access token's lifetime plus the expiry leeway,
/// with a minute for clocks and slow commits.
fn window() -> Duration {
    ACCESS_TOKEN_LIFETIME + Duration::from_secs(LEEWAY_SECONDS + 60)
}
