//! A circuit breaker in front of Smartico: after a run of failures it stops sending for a
//! while, then lets one trial request through; its state is shown in `/health`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The breaker's state, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; `failures` in a row so far.
    Closed { failures: u32 },
    /// No requests until the wait is over; `reason` is the last failure.
    Open { reason: String, retry_in: Duration },
    /// One trial request is allowed.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    opened_at: Option<Instant>,
    trial_in_flight: bool,
    last_failure: String,
}

/// Shared by every request to Smartico; cheap to clone.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    open_for: Duration,
    inner: Arc<Mutex<Inner>>,
}

impl CircuitBreaker {
    /// Opens after `threshold` failures in a row, for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            inner: Arc::new(Mutex::new(Inner {
                failures: 0,
                opened_at: None,
                trial_in_flight: false,
                last_failure: String::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Whether a request may go now. While half open, only one caller gets `true` until
    /// its outcome is recorded.
    pub fn allow(&self) -> bool {
        let mut inner = self.lock();
        let Some(opened_at) = inner.opened_at else {
            return true;
        };
        if opened_at.elapsed() < self.open_for || inner.trial_in_flight {
            return false;
        }
        inner.trial_in_flight = true;
        true
    }

    /// Records a request Smartico answered well.
    pub fn record_success(&self) {
        let mut inner = self.lock();
        inner.failures = 0;
        inner.opened_at = None;
        inner.trial_in_flight = false;
    }

    /// Records a failed request; opens (or reopens) the breaker at the threshold.
    pub fn record_failure(&self, reason: &str) {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        inner.last_failure = reason.to_owned();
        if inner.trial_in_flight || inner.failures >= self.threshold {
            if inner.opened_at.is_none() || inner.trial_in_flight {
                tracing::warn!(
                    failures = inner.failures,
                    reason,
                    "smartico keeps failing: circuit breaker open"
                );
            }
            inner.opened_at = Some(Instant::now());
            inner.trial_in_flight = false;
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match inner.opened_at {
            None => BreakerState::Closed {
                failures: inner.failures,
            },
            Some(opened_at) if opened_at.elapsed() < self.open_for => BreakerState::Open {
                reason: inner.last_failure.clone(),
                retry_in: self.open_for - opened_at.elapsed(),
            },
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_lets_one_trial_through_later() {
        let breaker = CircuitBreaker::new(3, Duration::ZERO);
        for _ in 0..2 {
            breaker.record_failure("500");
            assert!(matches!(breaker.state(), BreakerState::Closed { .. }));
        }
        breaker.record_failure("500");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.allow(), "the trial request");
        assert!(!breaker.allow(), "only one trial at a time");
        breaker.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
        assert!(breaker.allow());

        let slow = CircuitBreaker::new(1, Duration::from_secs(60));
        slow.record_failure("timeout");
        assert!(!slow.allow());
        assert!(matches!(slow.state(), BreakerState::Open { .. }));
    }
}
