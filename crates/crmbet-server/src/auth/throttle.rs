//! Backoff after failed logins: per account (stored, `accounts.failed_logins` and
//! `locked_until`) and per client address (in this process).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How failures turn into a lock: the first `free_failures` cost nothing, then each one
/// doubles the lock, from `first_lock` up to `longest_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub free_failures: u32,
    pub first_lock: Duration,
    pub longest_lock: Duration,
}

/// Per account: five tries, then 30 s, 1 min, 2 min, … up to 15 minutes.
pub const ACCOUNT_BACKOFF: BackoffPolicy = BackoffPolicy {
    free_failures: 5,
    first_lock: Duration::from_secs(30),
    longest_lock: Duration::from_secs(15 * 60),
};

/// Per client address: more tries, since offices and NATs share one address.
pub const ADDRESS_BACKOFF: BackoffPolicy = BackoffPolicy {
    free_failures: 20,
    first_lock: Duration::from_secs(30),
    longest_lock: Duration::from_secs(15 * 60),
};

/// An address's failures are forgotten after this long without a new one.
const FORGET_ADDRESS_AFTER: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked addresses, forgotten ones are dropped.
const PRUNE_ABOVE_ADDRESSES: usize = 10_000;

impl BackoffPolicy {
    /// The lock that `failures` consecutive failures earn, if any.
    pub fn lock_after(self, failures: u32) -> Option<Duration> {
        let doublings = failures.checked_sub(self.free_failures)?;
        let factor = 2u32.checked_pow(doublings).unwrap_or(u32::MAX);
        Some(
            self.first_lock
                .checked_mul(factor)
                .unwrap_or(self.longest_lock)
                .min(self.longest_lock),
        )
    }
}

/// Failed logins per client address, in this process.
#[derive(Debug, Default)]
pub struct AddressThrottle {
    entries: Mutex<HashMap<IpAddr, AddressFailures>>,
}

#[derive(Debug, Clone, Copy)]
struct AddressFailures {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl AddressThrottle {
    /// How long `address` must still wait before its next login, if it must.
    pub fn retry_after(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let locked_until = entries.get(&address)?.locked_until?;
        locked_until
            .checked_duration_since(now)
            .filter(|remaining| !remaining.is_zero())
    }

    /// Counts a failed login from `address`.
    pub fn record_failure(&self, address: IpAddr, now: Instant) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if entries.len() > PRUNE_ABOVE_ADDRESSES {
            entries.retain(|_, entry| !is_forgotten(entry, now));
        }
        let entry = entries.entry(address).or_insert(AddressFailures {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if is_forgotten(entry, now) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        entry.locked_until = ADDRESS_BACKOFF
            .lock_after(entry.failures)
            .map(|lock| now + lock);
    }
}

fn is_forgotten(entry: &AddressFailures, now: Instant) -> bool {
    now.saturating_duration_since(entry.last_failure) > FORGET_ADDRESS_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_after_the_free_failures_up_to_the_cap() {
        let policy = ACCOUNT_BACKOFF;
        assert_eq!(policy.lock_after(0), None);
        assert_eq!(policy.lock_after(4), None);
        assert_eq!(policy.lock_after(5), Some(Duration::from_secs(30)));
        assert_eq!(policy.lock_after(6), Some(Duration::from_secs(60)));
        assert_eq!(policy.lock_after(8), Some(Duration::from_secs(240)));
        assert_eq!(policy.lock_after(10), Some(Duration::from_secs(900)));
        assert_eq!(policy.lock_after(30), Some(Duration::from_secs(900)));
        assert_eq!(policy.lock_after(u32::MAX), Some(Duration::from_secs(900)));
    }

    #[test]
    fn an_address_is_locked_after_its_free_failures_and_forgiven_later() {
        let throttle = AddressThrottle::default();
        let address: IpAddr = [10, 0, 0, 7].into();
        let other: IpAddr = [10, 0, 0, 8].into();
        let start = Instant::now();
        for _ in 0..ADDRESS_BACKOFF.free_failures - 1 {
            throttle.record_failure(address, start);
        }
        assert_eq!(throttle.retry_after(address, start), None);
        throttle.record_failure(address, start);
        assert_eq!(
            throttle.retry_after(address, start),
            Some(Duration::from_secs(30))
        );
        assert_eq!(throttle.retry_after(other, start), None);
        let later = start + Duration::from_secs(31);
        assert_eq!(throttle.retry_after(address, later), None);
        let much_later = start + FORGET_ADDRESS_AFTER + Duration::from_secs(1);
        throttle.record_failure(address, much_later);
        assert_eq!(throttle.retry_after(address, much_later), None);
    }
}
