//! Tokens an instance took from a shared budget in Redis ahead of use.
//!
//! Counting every request in Redis would cost a network round trip per request, more than
//! a bet-time lookup itself. Instead an instance takes a lease of tokens (numbers in the
//! shared count) at once and hands them out locally. A lease is a small share of what is
//! left of the budget ([`LEASE_SHARE`]), so a small budget is still counted in Redis
//! request by request (exact across instances: a limit of 20 is a lease of one), while a
//! large one costs one Redis call per many requests. Requests that find the lease empty at
//! the same moment each take a lease; every range they get is kept and handed out, so no
//! token is lost. An instance that goes quiet holds its unused tokens until the window
//! ends, a bounded overcount that only ever refuses early, never admits more than the
//! limit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A lease is at most this fraction (1/n) of the tokens left in the budget.
const LEASE_SHARE: u64 = 64;
/// The most tokens one lease holds.
const MAX_LEASE: u64 = 1000;
/// How long a refusal learnt from Redis is repeated locally before Redis is asked again.
const REFUSAL_RECHECK: Duration = Duration::from_secs(1);
/// Past this many tracked budgets, leases whose window has ended are dropped.
const PRUNE_AT_BUDGETS: usize = 10_000;

/// Ranges `next..=last` of the shared count, until the window ends at `expires_at`.
#[derive(Debug, Clone)]
struct Lease {
    ranges: VecDeque<(u64, u64)>,
    /// The highest count Redis answered in this window, and when it last answered.
    counted: u64,
    counted_at: Instant,
    expires_at: Instant,
}

/// The leases of one instance, by budget key.
#[derive(Debug)]
pub(super) struct Leases {
    leases: Mutex<LeaseMap>,
}

#[derive(Debug)]
struct LeaseMap {
    by_key: HashMap<String, Lease>,
    /// The size at which ended and used-up leases are dropped next; it grows with the live
    /// ones, so a map of many live budgets is not scanned on every grant.
    prune_at: usize,
}

impl Default for Leases {
    fn default() -> Self {
        Self {
            leases: Mutex::new(LeaseMap {
                by_key: HashMap::new(),
                prune_at: PRUNE_AT_BUDGETS,
            }),
        }
    }
}

impl Leases {
    /// The next token of `key`'s lease — its number in the shared count and the time until
    /// the window ends — or `None` when a lease must be taken from Redis. Once Redis counted
    /// past `limit` in this window, the answer is that count, a refusal, until the window
    /// ends, asking Redis again only every [`REFUSAL_RECHECK`]: the shared count only grows
    /// within a window, so asking for each refused request would cost a round trip (and let
    /// a client over its budget make Redis work for every request), while asking now and
    /// then notices an operator who reset the count.
    pub(super) fn take(&self, key: &str, limit: u32, now: Instant) -> Option<(u64, Duration)> {
        let mut leases = self.lock();
        let lease = leases.by_key.get_mut(key)?;
        if lease.expires_at <= now {
            return None;
        }
        let reset_after = lease.expires_at - now;
        let Some((next, last)) = lease.ranges.front_mut() else {
            let over = lease.counted > u64::from(limit)
                && now.saturating_duration_since(lease.counted_at) < REFUSAL_RECHECK;
            return over.then_some((lease.counted, reset_after));
        };
        let token = *next;
        *next += 1;
        if *next > *last {
            lease.ranges.pop_front();
        }
        Some((token, reset_after))
    }

    /// How many tokens to take for `key` next, given its `limit`: a share of what the last
    /// lease showed was left, at least one.
    pub(super) fn next_lease_size(&self, key: &str, limit: u32, now: Instant) -> u64 {
        let counted = self
            .lock()
            .by_key
            .get(key)
            .filter(|lease| lease.expires_at > now)
            .map_or(0, |lease| lease.counted);
        (u64::from(limit).saturating_sub(counted) / LEASE_SHARE).clamp(1, MAX_LEASE)
    }

    /// Records that Redis counted `size` tokens for `key`, reaching `count`, with
    /// `reset_after` left in the window; returns the first token (this request's).
    pub(super) fn granted(
        &self,
        key: &str,
        size: u64,
        count: u64,
        reset_after: Duration,
        now: Instant,
    ) -> u64 {
        let first = count.saturating_sub(size.saturating_sub(1)).max(1);
        let mut leases = self.lock();
        if leases.by_key.len() >= leases.prune_at {
            leases
                .by_key
                .retain(|_, lease| lease.expires_at > now && !lease.ranges.is_empty());
            leases.prune_at = (leases.by_key.len() * 2).max(PRUNE_AT_BUDGETS);
        }
        let expires_at = now + reset_after;
        let lease = leases
            .by_key
            .entry(key.to_owned())
            .or_insert_with(|| Lease {
                ranges: VecDeque::new(),
                counted: 0,
                counted_at: now,
                expires_at,
            });
        if lease.expires_at <= now {
            // A new window: the old tokens count for nothing.
            lease.ranges.clear();
            lease.counted = 0;
        }
        lease.expires_at = expires_at;
        lease.counted = lease.counted.max(count);
        lease.counted_at = now;
        if first < count {
            lease.ranges.push_back((first + 1, count));
        }
        first
    }

    /// Forgets every lease: after Redis failed, its counts are not known any more.
    pub(super) fn clear(&self) {
        self.lock().by_key.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseMap> {
        // A panic elsewhere while holding the lock leaves valid leases behind.
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_budgets_lease_one_token_and_large_ones_many() {
        let leases = Leases::default();
        let now = Instant::now();
        assert_eq!(leases.next_lease_size("a", 20, now), 1);
        assert_eq!(leases.next_lease_size("a", 1000, now), 15);
        assert_eq!(leases.next_lease_size("a", u32::MAX, now), MAX_LEASE);
    }

    #[test]
    fn a_lease_hands_out_its_tokens_in_order_then_asks_again() {
        let leases = Leases::default();
        let now = Instant::now();
        let window = Duration::from_secs(60);
        assert_eq!(leases.take("a", 1000, now), None);
        // Redis counted 3 tokens, reaching 10: this request is token 8, then 9 and 10.
        assert_eq!(leases.granted("a", 3, 10, window, now), 8);
        assert_eq!(leases.take("a", 1000, now).map(|(token, _)| token), Some(9));
        assert_eq!(
            leases.take("a", 1000, now).map(|(token, _)| token),
            Some(10)
        );
        assert_eq!(leases.take("a", 1000, now), None);
        assert_eq!(
            leases.next_lease_size("a", 1000, now),
            (1000 - 10) / LEASE_SHARE
        );
        // Two requests that found the lease empty together each took a lease: both ranges
        // are handed out, none is lost.
        assert_eq!(leases.granted("a", 2, 12, window, now), 11);
        assert_eq!(leases.granted("a", 2, 14, window, now), 13);
        assert_eq!(
            leases.take("a", 1000, now).map(|(token, _)| token),
            Some(12)
        );
        assert_eq!(
            leases.take("a", 1000, now).map(|(token, _)| token),
            Some(14)
        );
        assert_eq!(leases.take("a", 1000, now), None);
        // A window that ended makes the lease worthless.
        leases.granted("b", 5, 5, window, now);
        assert_eq!(leases.take("b", 1000, now + window), None);
        leases.clear();
        assert_eq!(leases.take("b", 1000, now), None);
    }

    #[test]
    fn a_budget_counted_past_its_limit_is_refused_here_until_the_window_ends() {
        let leases = Leases::default();
        let now = Instant::now();
        let window = Duration::from_secs(60);
        // A limit of 20: Redis answered 20, then 21 (another instance took tokens too).
        assert_eq!(leases.granted("c", 1, 20, window, now), 20);
        assert_eq!(leases.take("c", 20, now), None, "at the limit: ask Redis");
        assert_eq!(leases.granted("c", 1, 21, window, now), 21);
        let later = now + Duration::from_millis(500);
        assert_eq!(
            leases.take("c", 20, later),
            Some((21, window - Duration::from_millis(500))),
            "past the limit: refused without Redis"
        );
        assert_eq!(
            leases.take("c", 20, now + REFUSAL_RECHECK),
            None,
            "Redis is asked again now and then (its count may have been reset)"
        );
        assert_eq!(
            leases.take("c", 20, now + window),
            None,
            "a new window asks again"
        );
    }
}
