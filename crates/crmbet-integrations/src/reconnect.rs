//! Keeping a broker session alive: run it again after every failure, with backoff.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::error::Result;

/// How long a session must last for the next failure to back off from the first delay
/// again: a new outage after a healthy stretch is not the old one going on.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Runs `session` until `shutdown` resolves: again at once when it ends well, after a
/// backoff delay (logged with `what`) when it fails.
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
        let Err(error) = ended else {
            failures = 0;
            continue;
        };
        if started.elapsed() >= HEALTHY_SESSION {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let wait = backoff.delay(failures);
        tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "{what}");
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
