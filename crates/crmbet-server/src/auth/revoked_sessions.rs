//! Login sessions (refresh-token families) revoked lately, so that Logout, a reused refresh
//! token or a revoked family also stops the access tokens issued in that session, not only
//! its refresh tokens. An access token names its session in the `sid` claim.
//!
//! The set is read from the store at most every [`RevokedSessions::MAX_AGE`], so a revocation through
//! another instance reaches this one within that time; one through this instance is
//! recorded here at once. Only sessions revoked within an access token's lifetime (plus
//! the expiry leeway) matter: older ones have no live access token left. While the store
//! cannot be read, the last set stays in use and the read is retried after [`RevokedSessions::MAX_AGE`]: the
//! calls that need the store fail on their own, and a revocation needs the store too. Tokens
//! without a `sid` (issued outside a session, or before sessions were named) cannot be
//! revoked this way and live until they expire.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use crmbet_store::Store;

use crate::auth::tokens::{ACCESS_TOKEN_LIFETIME, LEEWAY_SECONDS};

/// The revoked sessions one instance knows of.
/// The longest wait for the store's list of revoked sessions.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);

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

    /// Whether `session` was revoked, as of about [`RevokedSessions::MAX_AGE`] ago. Once
    /// the set was read, a stale set is refreshed by one caller while the others answer
    /// from it, so a slow store delays no call but the refreshing one.
    pub async fn is_revoked(&self, session: &str) -> bool {
        let (fresh, read_before, revoked) = {
            let known = self.lock();
            (
                known
                    .read_at
                    .is_some_and(|read_at| read_at.elapsed() < Self::MAX_AGE),
                known.read_at.is_some(),
                known.sessions.contains_key(session),
            )
        };
        if fresh {
            return revoked;
        }
        if read_before {
            let Ok(_refreshing) = self.refresh.try_lock() else {
                return revoked;
            };
            self.read_store().await;
        } else {
            let _refreshing = self.refresh.lock().await;
            if self.lock().read_at.is_none() {
                self.read_store().await;
            }
        }
        self.lock().sessions.contains_key(session)
    }

    /// Merges the sessions the store says were revoked lately into the set.
    async fn read_store(&self) {
        // Timed from before the query, so the set is never older than it says.
        let read_at = Instant::now();
        let since = Utc::now() - chrono::Duration::from_std(window()).unwrap_or_default();
        let read = tokio::time::timeout(STORE_TIMEOUT, self.store.families_revoked_since(since));
        match read.await {
            Ok(Ok(families)) => {
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
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read revoked sessions; using the last known set");
                self.lock().read_at = Some(read_at);
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = STORE_TIMEOUT.as_millis(),
                    "reading revoked sessions timed out; using the last known set"
                );
                self.lock().read_at = Some(read_at);
            }
        }
    }

    /// Records that this instance revoked `session` (after the store committed it).
    pub fn revoked_here(&self, session: &str) {
        self.lock()
            .sessions
            .insert(session.to_owned(), Instant::now());
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
