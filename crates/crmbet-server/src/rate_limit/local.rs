//! The in-process counter: used alone without Redis, and as the fallback while Redis fails.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Past this many tracked clients, windows that have ended are dropped on the next hit.
const PRUNE_AT_CLIENTS: usize = 10_000;

/// Fixed windows per key.
#[derive(Debug)]
pub(super) struct LocalWindows {
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u64,
}

impl LocalWindows {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one hit for `key` at `now`; returns the count in the current window and the
    /// time until it ends.
    pub(super) fn hit(&self, key: &str, now: Instant) -> (u64, Duration) {
        // A panic elsewhere while holding the lock leaves valid counts behind.
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= PRUNE_AT_CLIENTS {
            windows.retain(|_, window| now.duration_since(window.started) < self.window);
        }
        let fresh = Window {
            started: now,
            count: 0,
        };
        let window = windows.entry(key.to_owned()).or_insert(fresh);
        if now.duration_since(window.started) >= self.window {
            *window = fresh;
        }
        window.count += 1;
        let elapsed = now.duration_since(window.started);
        (window.count, self.window.saturating_sub(elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_starts_over_when_it_ends() {
        let windows = LocalWindows::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(windows.hit("a", start), (1, Duration::from_secs(60)));
        assert_eq!(
            windows.hit("a", start + Duration::from_secs(59)),
            (2, Duration::from_secs(1))
        );
        assert_eq!(windows.hit("b", start), (1, Duration::from_secs(60)));
        assert_eq!(
            windows.hit("a", start + Duration::from_secs(60)),
            (1, Duration::from_secs(60))
        );
    }
}
