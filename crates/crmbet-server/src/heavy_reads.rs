//! Turns for heavy reads: at most `CRMBET_HEAVY_READ_CONCURRENCY` calls whose rule says
//! [`Load::Heavy`](crate::auth::permissions::Load) run at once, so searches and analytics
//! never hold every connection of the database pool. A few more wait for a turn, for at
//! most `CRMBET_HEAVY_READ_QUEUE_MS`; the rest, and those that waited in vain, are answered
//! `UNAVAILABLE` (REST 503) with `Retry-After` at once instead of after the pool's timeout.
//!
//! Light calls (cached reads, logins, writes) never take a turn, so the hot segment read
//! costs nothing here.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crmbet_core::Config;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::metadata::MetadataValue;

/// Heavy reads allowed to wait, per turn.
const WAITING_PER_TURN: usize = 4;
/// What `Retry-After` tells a refused caller, in seconds.
const RETRY_AFTER_SECONDS: u64 = 1;
/// How long after a refusal `/health` still reports the heavy reads as saturated.
const SATURATION_MEMORY: Duration = Duration::from_secs(10);

/// The turns, the queue and the refusals; shared by every request.
#[derive(Debug)]
pub struct HeavyReads {
    turns: Arc<Semaphore>,
    concurrency: usize,
    max_waiting: usize,
    queue_time: Duration,
    waiting: AtomicUsize,
    refused: AtomicU64,
    last_refusal: Mutex<Option<Instant>>,
}

/// What `/health` reports about heavy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeavyReadLoad {
    pub running: usize,
    pub concurrency: usize,
    pub waiting: usize,
    /// Refused since startup.
    pub refused: u64,
    /// Every turn taken and callers waiting, or a refusal within the last ten seconds.
    pub saturated: bool,
}

impl HeavyReads {
    /// `concurrency` turns; a caller waits at most `queue_time` for one.
    pub fn new(concurrency: usize, queue_time: Duration) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            turns: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            max_waiting: concurrency * WAITING_PER_TURN,
            queue_time,
            waiting: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            last_refusal: Mutex::new(None),
        }
    }

    /// The turns `CRMBET_HEAVY_READ_CONCURRENCY` and `CRMBET_HEAVY_READ_QUEUE_MS` set.
    pub fn from_config(config: &Config) -> Self {
        Self::new(
            config.heavy_read_concurrency,
            Duration::from_millis(config.heavy_read_queue_ms),
        )
    }

    /// A turn, held until the permit is dropped; `UNAVAILABLE` with `retry-after` when none
    /// comes within the queue time or too many are waiting already.
    pub async fn take_turn(&self) -> Result<OwnedSemaphorePermit, Status> {
        if let Ok(permit) = Arc::clone(&self.turns).try_acquire_owned() {
            return Ok(permit);
        }
        let place = Waiting::join(&self.waiting);
        if place.ahead >= self.max_waiting {
            drop(place);
            return Err(self.refuse());
        }
        let waited =
            tokio::time::timeout(self.queue_time, Arc::clone(&self.turns).acquire_owned()).await;
        drop(place);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            // A closed semaphore cannot happen (it is never closed); refuse like a timeout.
            Ok(Err(_)) | Err(_) => Err(self.refuse()),
        }
    }

    fn refuse(&self) -> Status {
        self.refused.fetch_add(1, Ordering::Relaxed);
        *self
            .last_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let mut status = Status::unavailable(format!(
            "too many heavy reads at once ({} running, {} waiting); retry in {RETRY_AFTER_SECONDS} s",
            self.concurrency,
            self.waiting.load(Ordering::Relaxed),
        ));
        status
            .metadata_mut()
            .insert("retry-after", MetadataValue::from(RETRY_AFTER_SECONDS));
        status
    }

    /// The current load, for `/health`.
    pub fn load(&self) -> HeavyReadLoad {
        let running = self.concurrency - self.turns.available_permits();
        let waiting = self.waiting.load(Ordering::Relaxed);
        let refused_lately = self
            .last_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < SATURATION_MEMORY);
        HeavyReadLoad {
            running,
            concurrency: self.concurrency,
            waiting,
            refused: self.refused.load(Ordering::Relaxed),
            saturated: refused_lately || (running == self.concurrency && waiting > 0),
        }
    }
}

/// A place in the queue, left when dropped: also when the caller hangs up while waiting.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    /// Callers that were waiting before this one.
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn join(count: &'a AtomicUsize) -> Self {
        let ahead = count.fetch_add(1, Ordering::AcqRel);
        Self { count, ahead }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_excess_waits_its_queue_time_then_is_refused_with_retry_after() {
        let heavy_reads = HeavyReads::new(1, Duration::from_millis(50));
        let first = heavy_reads.take_turn().await.unwrap();
        assert_eq!(heavy_reads.load().running, 1);
        assert!(!heavy_reads.load().saturated);

        let started = Instant::now();
        let refused = heavy_reads.take_turn().await.unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert_eq!(refused.metadata().get("retry-after").unwrap(), "1");
        let load = heavy_reads.load();
        assert_eq!((load.refused, load.saturated), (1, true));

        drop(first);
        assert!(
            heavy_reads.take_turn().await.is_ok(),
            "a freed turn is taken"
        );
    }

    #[tokio::test]
    async fn beyond_the_queue_callers_are_refused_at_once() {
        let heavy_reads = Arc::new(HeavyReads::new(1, Duration::from_secs(30)));
        let _running = heavy_reads.take_turn().await.unwrap();
        let mut waiting = Vec::new();
        for _ in 0..WAITING_PER_TURN {
            let heavy_reads = Arc::clone(&heavy_reads);
            waiting.push(tokio::spawn(async move {
                heavy_reads.take_turn().await.is_ok()
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while heavy_reads.load().waiting < WAITING_PER_TURN {
            assert!(Instant::now() < deadline, "the waiters never queued");
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        let refused = heavy_reads.take_turn().await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            refused.message().contains("4 waiting"),
            "{}",
            refused.message()
        );
        for task in waiting {
            task.abort();
            assert!(task.await.is_err(), "the waiter was cancelled");
        }
        assert_eq!(
            heavy_reads.load().waiting,
            0,
            "cancelled waiters left the queue"
        );
    }
}
