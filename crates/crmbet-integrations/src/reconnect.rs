//! Keeping a broker session alive: run it again after every failure, with backoff.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::error::Result;

/// How long a session must last for the next failure to back off from the first delay
/// again: a new outage after a healthy stretch is not the old one going on.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Runs `session` until `shutdown` resolves: again at once when it ended well after a
/// healthy stretch, after a backoff delay (logged with `what`) when it failed or ended at
/// once.
pub(crate) async fn keep_running<T, Session, Fut>(
    what: &'static str,
    backoff: Backoff,
    shutdown: impl Future<Output = ()>,
    mut session: Session,
) where
    Session: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    tokio::pin!(shutdown);
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let ended = tokio::select! {
            () = &mut shutdown => return,
            ended = session() => ended,
        };
        let healthy = started.elapsed() >= HEALTHY_SESSION;
        if healthy {
            failures = 0;
        }
        // Ended well after a healthy stretch: again at once. Ended at once (a broker that
        // cancels every consumer, say): back off as from a failure, or this would loop
        // against the broker.
        if ended.is_ok() && healthy {
            continue;
        }
        failures = failures.saturating_add(1);
        let wait = backoff.delay(failures);
        let retry_in_ms = wait.as_millis() as u64;
        match ended {
            Ok(_) => tracing::warn!(retry_in_ms, "{what}: the session ended at once"),
            Err(error) => tracing::warn!(%error, retry_in_ms, "{what}"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
