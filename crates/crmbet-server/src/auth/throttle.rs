//! Backoff after failed logins: per username (in this process, for every name asked
//! about, whether an account has it or not), per account (stored,
//! `accounts.failed_logins` and `locked_until`) and per client address (in this process).
//!
//! The username throttle counts an attempt before the password is checked, so parallel
//! guesses cannot all pass the lock check before any of them has failed; a successful
//! login clears the name's count. Unknown names are counted and locked like existing ones,
//! so the lockout does not tell an attacker which usernames exist.

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

/// Per username and per account: five tries, then 30 s, 1 min, 2 min, … up to 15 minutes.
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

/// An address's failures, or a username's attempts, are forgotten after this long without
/// a new one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked addresses, forgotten ones are dropped.
const PRUNE_ABOVE_ADDRESSES: usize = 10_000;
/// The most usernames tracked at once (about 100 bytes each), so a spray of made-up names
/// cannot grow memory without bound.
const MAX_TRACKED_USERNAMES: usize = 100_000;

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
    now.saturating_duration_since(entry.last_failure) > FORGET_AFTER
}

/// Login attempts per username, in this process, counted before the password check.
#[derive(Debug, Default)]
pub struct UsernameThrottle {
    entries: Mutex<HashMap<String, UsernameAttempts>>,
}

#[derive(Debug, Clone, Copy)]
struct UsernameAttempts {
    /// Attempts since the last success, the ones still running included.
    attempts: u32,
    last_attempt: Instant,
    locked_until: Option<Instant>,
}

impl UsernameThrottle {
    /// Counts an attempt to log in as `username` at `now`, before its password is checked;
    /// or, while the name is locked, how long it must still wait. The attempt that reaches
    /// the lock still runs; the ones after it wait.
    pub fn reserve(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if !entries.contains_key(username) {
            make_room(&mut entries, now);
        }
        let entry = entries
            .entry(username.to_owned())
            .or_insert(UsernameAttempts {
                attempts: 0,
                last_attempt: now,
                locked_until: None,
            });
        if let Some(wait) = entry
            .locked_until
            .and_then(|locked_until| locked_until.checked_duration_since(now))
            .filter(|wait| !wait.is_zero())
        {
            return Err(wait);
        }
        if now.saturating_duration_since(entry.last_attempt) > FORGET_AFTER {
            entry.attempts = 0;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last_attempt = now;
        entry.locked_until = ACCOUNT_BACKOFF
            .lock_after(entry.attempts)
            .map(|lock| now + lock);
        Ok(())
    }

    /// Forgets the attempts of `username` after a successful login.
    pub fn succeeded(&self, username: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(username);
    }
}

/// At the cap, drops forgotten names and, if that is not enough, the tenth of the names
/// idle longest: evicting in bulk keeps a sustained spray from scanning the map per login.
fn make_room(entries: &mut HashMap<String, UsernameAttempts>, now: Instant) {
    if entries.len() < MAX_TRACKED_USERNAMES {
        return;
    }
    entries.retain(|_, entry| now.saturating_duration_since(entry.last_attempt) <= FORGET_AFTER);
    if entries.len() < MAX_TRACKED_USERNAMES {
        return;
    }
    let mut last_attempts: Vec<Instant> =
        entries.values().map(|entry| entry.last_attempt).collect();
    let cut = last_attempts.len() / 10;
    let (_, newest_evicted, _) = last_attempts.select_nth_unstable(cut);
    let newest_evicted = *newest_evicted;
    entries.retain(|_, entry| entry.last_attempt > newest_evicted);
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
    fn a_username_is_locked_once_its_free_attempts_are_reserved() {
        let throttle = UsernameThrottle::default();
        let start = Instant::now();
        for _ in 0..ACCOUNT_BACKOFF.free_failures {
            assert_eq!(throttle.reserve("nobody", start), Ok(()));
        }
        assert_eq!(
            throttle.reserve("nobody", start),
            Err(Duration::from_secs(30)),
            "attempts still running count, so a parallel burst stops at the allowance"
        );
        assert_eq!(throttle.reserve("somebody", start), Ok(()));
        let later = start + Duration::from_secs(31);
        assert_eq!(throttle.reserve("nobody", later), Ok(()));
        assert_eq!(
            throttle.reserve("nobody", later),
            Err(Duration::from_secs(60)),
            "each attempt after the lock doubles it"
        );
        throttle.succeeded("nobody");
        assert_eq!(throttle.reserve("nobody", later), Ok(()));
    }

    #[test]
    fn tracked_usernames_stay_bounded() {
        let throttle = UsernameThrottle::default();
        let start = Instant::now();
        for index in 0..MAX_TRACKED_USERNAMES + 10 {
            let at = start + Duration::from_millis(u64::try_from(index).unwrap());
            assert_eq!(throttle.reserve(&format!("name{index}"), at), Ok(()));
        }
        let entries = throttle.entries.lock().unwrap();
        assert!(entries.len() < MAX_TRACKED_USERNAMES, "{}", entries.len());
        assert!(
            !entries.contains_key("name0"),
            "the names idle longest go first"
        );
        assert!(entries.contains_key(&format!("name{}", MAX_TRACKED_USERNAMES + 9)));
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
        let much_later = start + FORGET_AFTER + Duration::from_secs(1);
        throttle.record_failure(address, much_later);
        assert_eq!(throttle.retry_after(address, much_later), None);
    }
}
