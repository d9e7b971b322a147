//! Request budgets per route class, per client IP and per principal, shared by every
//! instance through Redis.
//!
//! Every RPC belongs to one route class (`auth`, `segment`, `webhook`, `write`, `read`; the
//! permission table says which). A client IP may make `CRMBET_RATE_LIMIT_PER_HOUR` requests
//! in a fixed one-hour window and an authenticated principal
//! `CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR`, from whatever IPs, over all the classes
//! together; a class listed in `CRMBET_RATE_LIMIT_CLASSES` has budgets of its own instead,
//! so a flood of it neither starves nor is limited by the others. With `REDIS_URL`
//! the counts live in Redis, so instances share them: each instance takes tokens from a
//! budget in leases (one atomic script call for all the budgets a request spends; a lease
//! is a small share of what is left, one token when little is, see `leases.rs`); without
//! it, or while Redis fails, each instance counts locally and `/health` says the shared
//! limiter is degraded. The principal
//! is the subject of an access token whose signature and expiry the middleware verified;
//! revocation is left to the access layer, which refuses such a request anyway.

mod layer;
mod leases;
mod local;
mod shared;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crmbet_core::Config;
use crmbet_core::config::HourlyLimits;
use crmbet_core::rate_limit_classes::RouteClass;

pub use layer::RateLimitState;
pub(crate) use layer::{Admission, add_headers, admit};
pub(crate) use shared::{call_options, within_timeout};

use self::leases::Leases;
use self::local::LocalWindows;
use self::shared::SharedWindows;

/// The length of one budget window.
pub const WINDOW: Duration = Duration::from_secs(60 * 60);
/// How long one Redis call may take before the request is counted locally instead.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

/// The outcome of counting one request against one budget.
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

    /// Whether this is the budget to report rather than `current`: a refusal over an
    /// allowance, else the one with fewer requests left.
    pub fn is_tighter_than(&self, current: &Decision) -> bool {
        match (self.allowed(), current.allowed()) {
            (false, true) => true,
            (true, false) => false,
            _ => self.remaining() < current.remaining(),
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
    /// The part of the key in Redis and in the local counter after the class.
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

/// Counts requests per class, client IP and principal; cheap to clone.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: ClassLimits,
    local: LocalWindows,
    shared: Option<SharedWindows>,
    /// Tokens taken from the shared budgets ahead of use.
    leases: Leases,
    /// Why the last Redis call failed, until one succeeds again.
    degraded_reason: Mutex<Option<String>>,
}

/// The budget classes without one of their own share.
const SHARED_BUDGET: &str = "all";

/// Requests allowed per window, by class and kind of subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLimits {
    /// Indexed like [`RouteClass::ALL`].
    by_class: [HourlyLimits; RouteClass::ALL.len()],
    /// Whether the class has budgets of its own; the others count in [`SHARED_BUDGET`].
    own_budget: [bool; RouteClass::ALL.len()],
}

impl ClassLimits {
    /// One budget with these limits for every class together.
    pub fn uniform(limits: HourlyLimits) -> Self {
        Self {
            by_class: [limits; RouteClass::ALL.len()],
            own_budget: [false; RouteClass::ALL.len()],
        }
    }

    /// The limits the configuration gives: the listed classes their own, the others the
    /// general ones, together.
    pub fn from_config(config: &Config) -> Self {
        Self {
            by_class: RouteClass::ALL.map(|class| config.rate_limits(class)),
            own_budget: RouteClass::ALL
                .map(|class| config.rate_limit_classes.budget(class).is_some()),
        }
    }

    /// These limits with `class` given budgets of its own, of `limits`.
    pub fn with(mut self, class: RouteClass, limits: HourlyLimits) -> Self {
        self.by_class[class_index(class)] = limits;
        self.own_budget[class_index(class)] = true;
        self
    }

    /// The name of the budget `class` counts in: its own, or the shared one.
    fn budget_name(&self, class: RouteClass) -> &'static str {
        if self.own_budget[class_index(class)] {
            class.name()
        } else {
            SHARED_BUDGET
        }
    }

    fn of(&self, class: RouteClass, subject: &Subject) -> u32 {
        let limits = self.by_class[class_index(class)];
        match subject {
            Subject::ClientIp(_) => limits.per_client_ip,
            Subject::Principal(_) => limits.per_principal,
        }
    }
}

/// `RouteClass::ALL` lists the variants in declaration order, so the discriminant is the
/// position.
fn class_index(class: RouteClass) -> usize {
    class as usize
}

impl RateLimiter {
    /// A limiter counted in process only.
    pub fn local(limits: ClassLimits) -> Self {
        Self::with_shared(limits, None)
    }

    /// The limiter the configuration asks for. A Redis URL that cannot be parsed is an
    /// error; a Redis that does not answer is not: the client keeps reconnecting in the
    /// background while requests are counted locally.
    ///
    /// Must be called inside a tokio runtime (the Redis client starts its connection task).
    pub fn from_config(config: &Config) -> crmbet_core::Result<Self> {
        let limits = ClassLimits::from_config(config);
        let Some(url) = config.redis_url.as_deref() else {
            return Ok(Self::local(limits));
        };
        let shared = SharedWindows::connect(url, &config.redis_key_prefix).map_err(|error| {
            crmbet_core::Error::invalid_argument("REDIS_URL", format!("{error}"))
        })?;
        Ok(Self::with_shared(limits, Some(shared)))
    }

    fn with_shared(limits: ClassLimits, shared: Option<SharedWindows>) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                local: LocalWindows::new(WINDOW),
                shared,
                leases: Leases::default(),
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

    /// Counts one request of `class` against each of `subjects`; returns a decision per
    /// subject, in order. With Redis, a budget's token comes from this instance's lease
    /// when it has one left, and the budgets without one take a new lease in one Redis
    /// round trip. The local count is kept even while Redis answers, so a fallback starts
    /// from this instance's share of the window, not zero.
    pub async fn hit(&self, class: RouteClass, subjects: &[Subject]) -> Vec<Decision> {
        let keys: Vec<String> = subjects
            .iter()
            .map(|subject| format!("{}:{subject}", self.inner.limits.budget_name(class)))
            .collect();
        let limits: Vec<u32> = subjects
            .iter()
            .map(|subject| self.inner.limits.of(class, subject))
            .collect();
        let now = Instant::now();
        let local: Vec<Decision> = keys
            .iter()
            .zip(&limits)
            .map(|(key, limit)| {
                let (count, reset_after) = self.inner.local.hit(key, now);
                Decision {
                    limit: *limit,
                    count,
                    reset_after,
                }
            })
            .collect();
        let Some(shared) = &self.inner.shared else {
            return local;
        };
        let mut decisions: Vec<Option<Decision>> = keys
            .iter()
            .zip(&limits)
            .map(|(key, limit)| {
                self.inner
                    .leases
                    .take(key, *limit, now)
                    .map(|(count, reset_after)| Decision {
                        limit: *limit,
                        count,
                        reset_after,
                    })
            })
            .collect();
        let missing: Vec<usize> = (0..keys.len())
            .filter(|index| decisions[*index].is_none())
            .collect();
        if missing.is_empty() {
            return decisions.into_iter().flatten().collect();
        }
        let missing_keys: Vec<String> = missing.iter().map(|index| keys[*index].clone()).collect();
        let sizes: Vec<u64> = missing
            .iter()
            .map(|index| {
                self.inner
                    .leases
                    .next_lease_size(&keys[*index], limits[*index], now)
            })
            .collect();
        // Boxed: Redis's call state is large and needed only when a lease runs out, while
        // every request's future would carry it.
        match Box::pin(shared.take(&missing_keys, &sizes, WINDOW)).await {
            Ok(counts) => {
                self.set_degraded(None);
                for ((index, size), (count, reset_after)) in missing.iter().zip(&sizes).zip(counts)
                {
                    let first =
                        self.inner
                            .leases
                            .granted(&keys[*index], *size, count, reset_after, now);
                    decisions[*index] = Some(Decision {
                        limit: limits[*index],
                        count: first,
                        reset_after,
                    });
                }
                decisions
                    .into_iter()
                    .zip(local)
                    .map(|(decision, local)| decision.unwrap_or(local))
                    .collect()
            }
            Err(reason) => {
                self.set_degraded(Some(reason));
                self.inner.leases.clear();
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

    async fn hit_one(limiter: &RateLimiter, class: RouteClass, subject: &Subject) -> Decision {
        let decisions = limiter.hit(class, std::slice::from_ref(subject)).await;
        assert_eq!(decisions.len(), 1);
        decisions[0]
    }

    #[tokio::test]
    async fn the_request_after_the_limit_is_refused() {
        let limiter = RateLimiter::local(ClassLimits::uniform(HourlyLimits {
            per_client_ip: 2,
            per_principal: 1,
        }));
        let read = RouteClass::Read;
        let client = Subject::ClientIp(IpAddr::from([10, 0, 0, 1]));
        assert!(hit_one(&limiter, read, &client).await.allowed());
        assert!(hit_one(&limiter, read, &client).await.allowed());
        let refused = hit_one(&limiter, read, &client).await;
        assert!(!refused.allowed());
        assert_eq!(refused.remaining(), 0);
        let other = Subject::ClientIp(IpAddr::from([10, 0, 0, 2]));
        assert!(
            hit_one(&limiter, read, &other).await.allowed(),
            "another client has its own budget"
        );
        let principal = Subject::Principal("mia".to_owned());
        assert_eq!(hit_one(&limiter, read, &principal).await.limit, 1);
        assert!(!hit_one(&limiter, read, &principal).await.allowed());
        assert_eq!(limiter.health().await, LimiterHealth::InProcess);
    }

    #[tokio::test]
    async fn each_class_has_its_own_budget_and_limits() {
        let defaults = HourlyLimits {
            per_client_ip: 5,
            per_principal: 5,
        };
        let limits = ClassLimits::uniform(defaults).with(
            RouteClass::Auth,
            HourlyLimits {
                per_client_ip: 1,
                per_principal: 5,
            },
        );
        let limiter = RateLimiter::local(limits);
        let client = Subject::ClientIp(IpAddr::from([10, 0, 0, 1]));
        let principal = Subject::Principal("mia".to_owned());
        let subjects = [client.clone(), principal];
        let first = limiter.hit(RouteClass::Auth, &subjects).await;
        assert_eq!(
            first
                .iter()
                .map(|decision| decision.count)
                .collect::<Vec<_>>(),
            [1, 1]
        );
        assert_eq!(first[0].limit, 1);
        assert_eq!(first[1].limit, 5);
        assert!(!hit_one(&limiter, RouteClass::Auth, &client).await.allowed());
        let read = hit_one(&limiter, RouteClass::Read, &client).await;
        assert!(read.allowed(), "an exhausted class leaves the others alone");
        assert_eq!((read.limit, read.count), (5, 1));
        let write = hit_one(&limiter, RouteClass::Write, &client).await;
        assert_eq!(
            (write.limit, write.count),
            (5, 2),
            "classes without budgets of their own share one"
        );
    }

    #[test]
    fn class_indexes_follow_the_list_of_classes() {
        for (position, class) in RouteClass::ALL.into_iter().enumerate() {
            assert_eq!(class_index(class), position, "{class}");
        }
    }

    #[test]
    fn a_refusal_is_tighter_than_an_allowance_and_else_fewer_remaining_is() {
        let decision = |limit, count| Decision {
            limit,
            count,
            reset_after: Duration::from_secs(1),
        };
        assert!(decision(3, 4).is_tighter_than(&decision(100, 2)));
        assert!(!decision(100, 2).is_tighter_than(&decision(3, 4)));
        assert!(decision(3, 2).is_tighter_than(&decision(100, 2)));
        assert!(!decision(100, 2).is_tighter_than(&decision(3, 2)));
    }
}
