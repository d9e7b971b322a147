//! Request budgets per client IP and per principal, shared by every instance through Redis.
//!
//! Each client IP may make `rate_limit_per_hour` requests in a fixed one-hour window, and
//! each authenticated principal `rate_limit_per_principal_per_hour`, from whatever IPs. With
//! `REDIS_URL` the count lives in Redis (one atomic script per request), so instances share
//! one budget; without it, or while Redis fails, each instance counts locally and `/health`
//! says the shared limiter is degraded. The principal is the subject of an access token
//! whose signature and expiry the middleware verified; revocation is left to the access
//! layer, which refuses such a request anyway.

mod layer;
mod local;
mod shared;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crmbet_core::Config;

pub use layer::{RateLimitState, rate_limit};

use self::local::LocalWindows;
use self::shared::SharedWindows;

/// The length of one budget window.
pub const WINDOW: Duration = Duration::from_secs(60 * 60);
/// How long one Redis call may take before the request is counted locally instead.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests counted in the current window, this one included.
    pub count: u64,
    /// Time until the window starts over.
    pub reset_after: Duration,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.count <= u64::from(self.limit)
    }

    pub fn remaining(&self) -> u64 {
        u64::from(self.limit).saturating_sub(self.count)
    }

    /// Whole seconds until the window starts over, rounded up so a client that waits this
    /// long is never refused again for the same window.
    pub fn reset_seconds(&self) -> u64 {
        let seconds = self.reset_after.as_secs();
        if self.reset_after.subsec_nanos() > 0 {
            seconds + 1
        } else {
            seconds
        }
    }
}

/// Whose budget a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The peer address of the connection.
    ClientIp(IpAddr),
    /// The verified subject of the access token.
    Principal(String),
}

impl fmt::Display for Subject {
    /// The key suffix in Redis and in the local counter.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientIp(address) => write!(formatter, "ip:{address}"),
            Self::Principal(subject) => write!(formatter, "principal:{subject}"),
        }
    }
}

/// Where the budgets are kept, as `/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimiterHealth {
    /// No `REDIS_URL`: each instance counts on its own.
    InProcess,
    /// Redis answered the last call.
    Shared,
    /// Redis is configured but failed; requests are counted locally meanwhile.
    Degraded { reason: String },
}

/// Counts requests per client IP and per principal; cheap to clone.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    local: LocalWindows,
    shared: Option<SharedWindows>,
    /// Why the last Redis call failed, until one succeeds again.
    degraded_reason: Mutex<Option<String>>,
}

/// Requests allowed per window, by kind of subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_client_ip: u32,
    pub per_principal: u32,
}

impl Limits {
    fn of(&self, subject: &Subject) -> u32 {
        match subject {
            Subject::ClientIp(_) => self.per_client_ip,
            Subject::Principal(_) => self.per_principal,
        }
    }
}

impl RateLimiter {
    /// A limiter counted in process only.
    pub fn local(limits: Limits) -> Self {
        Self::with_shared(limits, None)
    }

    /// The limiter the configuration asks for. A Redis URL that cannot be parsed is an
    /// error; a Redis that does not answer is not: the client keeps reconnecting in the
    /// background while requests are counted locally.
    ///
    /// Must be called inside a tokio runtime (the Redis client starts its connection task).
    pub fn from_config(config: &Config) -> crmbet_core::Result<Self> {
        let limits = Limits {
            per_client_ip: config.rate_limit_per_hour,
            per_principal: config.rate_limit_per_principal_per_hour,
        };
        let Some(url) = config.redis_url.as_deref() else {
            return Ok(Self::local(limits));
        };
        let shared = SharedWindows::connect(url, &config.redis_key_prefix).map_err(|error| {
            crmbet_core::Error::invalid_argument("REDIS_URL", format!("{error}"))
        })?;
        Ok(Self::with_shared(limits, Some(shared)))
    }

    fn with_shared(limits: Limits, shared: Option<SharedWindows>) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                local: LocalWindows::new(WINDOW),
                shared,
                degraded_reason: Mutex::new(None),
            }),
        }
    }

    /// Waits at most `timeout` for Redis, so the first requests after startup are counted
    /// in the shared budget; on timeout the limiter starts degraded and keeps reconnecting.
    pub async fn wait_for_redis(&self, timeout: Duration) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        if !shared.wait_until_connected(timeout).await {
            self.set_degraded(Some(format!(
                "redis did not accept a connection within {timeout:?}"
            )));
        }
    }

    /// The Redis connection, when `REDIS_URL` is set, for other shared state (the read
    /// cache) to use the same client and settings.
    pub fn redis_client(&self) -> Option<fred::prelude::Client> {
        self.inner
            .shared
            .as_ref()
            .map(|shared| shared.client().clone())
    }

    /// Counts one request against `subject`. The local count is kept even while Redis
    /// answers, so a fallback starts from this instance's share of the window, not zero.
    pub async fn hit(&self, subject: &Subject) -> Decision {
        let key = subject.to_string();
        let limit = self.inner.limits.of(subject);
        let (local_count, local_reset) = self.inner.local.hit(&key, Instant::now());
        let local = Decision {
            limit,
            count: local_count,
            reset_after: local_reset,
        };
        let Some(shared) = &self.inner.shared else {
            return local;
        };
        match shared.hit(&key, WINDOW).await {
            Ok((count, reset_after)) => {
                self.set_degraded(None);
                Decision {
                    limit,
                    count,
                    reset_after,
                }
            }
            Err(reason) => {
                self.set_degraded(Some(reason));
                local
            }
        }
    }

    /// Where budgets are kept right now. With Redis configured, this pings it, so `/health`
    /// notices an outage (and a recovery) even before the next counted request.
    pub async fn health(&self) -> LimiterHealth {
        let Some(shared) = &self.inner.shared else {
            return LimiterHealth::InProcess;
        };
        match shared.ping().await {
            Ok(()) => self.set_degraded(None),
            Err(reason) => self.set_degraded(Some(reason)),
        }
        match self.degraded_reason().clone() {
            None => LimiterHealth::Shared,
            Some(reason) => LimiterHealth::Degraded { reason },
        }
    }

    fn degraded_reason(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // A panic elsewhere while holding the lock leaves a valid Option behind.
        self.inner
            .degraded_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records whether Redis works, logging only the changes so an outage does not log
    /// once per request.
    fn set_degraded(&self, reason: Option<String>) {
        let mut current = self.degraded_reason();
        match (current.is_some(), &reason) {
            (false, Some(reason)) => {
                tracing::warn!(%reason, "rate limits are counted per instance until redis answers");
            }
            (true, None) => tracing::info!("redis answers again: rate limits are shared"),
            _ => {}
        }
        *current = reason;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_seconds_round_up() {
        let decision = Decision {
            limit: 10,
            count: 3,
            reset_after: Duration::from_millis(1500),
        };
        assert_eq!(decision.reset_seconds(), 2);
        assert_eq!(decision.remaining(), 7);
        assert!(decision.allowed());
    }

    #[tokio::test]
    async fn the_request_after_the_limit_is_refused() {
        let limiter = RateLimiter::local(Limits {
            per_client_ip: 2,
            per_principal: 1,
        });
        let client = Subject::ClientIp(IpAddr::from([10, 0, 0, 1]));
        assert!(limiter.hit(&client).await.allowed());
        assert!(limiter.hit(&client).await.allowed());
        let refused = limiter.hit(&client).await;
        assert!(!refused.allowed());
        assert_eq!(refused.remaining(), 0);
        let other = limiter
            .hit(&Subject::ClientIp(IpAddr::from([10, 0, 0, 2])))
            .await;
        assert!(other.allowed(), "another client has its own budget");
        let principal = Subject::Principal("mia".to_owned());
        assert_eq!(limiter.hit(&principal).await.limit, 1);
        assert!(!limiter.hit(&principal).await.allowed());
        assert_eq!(limiter.health().await, LimiterHealth::InProcess);
    }
}
