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
    /// The windows, and the size at which ended ones are dropped next: it grows with the
    /// live ones, so many live clients do not make every hit scan the map.
    windows: Mutex<(HashMap<String, Window>, usize)>,
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
            windows: Mutex::new((HashMap::new(), PRUNE_AT_CLIENTS)),
        }
    }

    /// Counts one hit for `key` at `now`; returns the count in the current window and the
    /// time until it ends.
    pub(super) fn hit(&self, key: &str, now: Instant) -> (u64, Duration) {
        // A panic elsewhere while holding the lock leaves valid counts behind.
        let mut guard = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let (windows, prune_at) = &mut *guard;
        if windows.len() >= *prune_at {
            windows.retain(|_, window| now.duration_since(window.started) < self.window);
            *prune_at = (windows.len() * 2).max(PRUNE_AT_CLIENTS);
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
