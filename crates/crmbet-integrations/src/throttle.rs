//! Smartico's limits on this client: requests in flight and requests per minute.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// At most `max_in_flight` requests at once, started at most `per_minute` a minute (evenly
/// spaced, so a burst never exceeds the rate either).
#[derive(Debug, Clone)]
pub struct Throttle {
    in_flight: Arc<Semaphore>,
    spacing: Duration,
    next_start: Arc<Mutex<Instant>>,
}

impl Throttle {
    /// A throttle for `max_in_flight` concurrent requests and `per_minute` starts a minute.
    pub fn new(max_in_flight: usize, per_minute: u32) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            spacing: Duration::from_secs(60) / per_minute.max(1),
            next_start: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Waits for a slot and for the rate; the request may start while the permit lives.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        let permit = Arc::clone(&self.in_flight)
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable_closed());
        let start = {
            let mut next_start = self.next_start.lock().await;
            let now = Instant::now();
            let start = (*next_start).max(now);
            *next_start = start + self.spacing;
            start
        };
        tokio::time::sleep_until(start).await;
        permit
    }
}

/// The semaphore is never closed.
fn unreachable_closed() -> OwnedSemaphorePermit {
    panic!("the throttle's semaphore is never closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_are_spaced_by_the_rate() {
        let throttle = Throttle::new(12, 6000);
        let began = Instant::now();
        for _ in 0..11 {
            drop(throttle.acquire().await);
        }
        // 6000 a minute is one every 10 ms: the 11th starts 100 ms after the first.
        let elapsed = began.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
}
