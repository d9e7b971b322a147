//! The listener's connection limits: how many client connections may be open, how long a
//! connection may wait before its first request and between requests, and which connection
//! gives way when the cap is reached.
//!
//! Invariant: the listener never holds more than `max_connections` client connections that
//! it has not already told to close (and never more than [`CLOSING_ALLOWANCE`] beyond that
//! in all); at the cap a new connection closes the longest-idle one (no request in flight),
//! and is itself closed at once when every connection is busy. So a
//! flood of silent sockets cannot use up the file descriptors, and a health probe still gets
//! in. The per-request cost is two uncontended atomic operations on the connection's own
//! [`Activity`]; the table is locked once per connection, never per request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crmbet_core::Config;
use tokio::sync::Notify;

/// Descriptors kept back from [`ConnectionLimits::max_connections`] for everything that is
/// not a client connection: the database pool, Redis, the listener, log and lake files.
const RESERVED_DESCRIPTORS: usize = 128;

/// Connections told to close that may still hold their descriptor beyond the cap; past
/// that, new connections are closed at once until they are gone.
pub(crate) const CLOSING_ALLOWANCE: usize = 16;

/// How many checks a connection's idle timeout is split into: an idle connection is closed
/// between one and one and a quarter timeouts after its last request ended.
pub(crate) const IDLE_CHECKS: u32 = 4;

/// The limits the listener enforces on every client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Client connections open at once at most.
    pub max_connections: usize,
    /// How long a new connection may take to start its first request.
    pub first_request_timeout: Duration,
    /// How long a connection may stay without a request in flight.
    pub idle_timeout: Duration,
    /// How often HTTP/2 connections are pinged; `None` for never.
    pub http2_ping_interval: Option<Duration>,
    /// How long a request body may take to arrive once the server waits for it.
    pub request_body_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits `config` sets, with the connection cap lowered to fit the process's
    /// open-file limit when that is lower (with a warning).
    pub fn from_config(config: &Config) -> Self {
        let configured = Self {
            max_connections: config.max_connections,
            first_request_timeout: Duration::from_secs(config.first_request_timeout_seconds),
            idle_timeout: Duration::from_secs(config.idle_timeout_seconds),
            http2_ping_interval: (config.http2_ping_interval_seconds > 0)
                .then(|| Duration::from_secs(config.http2_ping_interval_seconds)),
            request_body_timeout: Duration::from_secs(config.request_body_timeout_seconds),
        };
        match open_file_limit() {
            Some(limit) => configured.fitted_to(limit),
            None => configured,
        }
    }

    /// These limits with at most `open_file_limit` minus a reserve as the connection cap.
    fn fitted_to(mut self, open_file_limit: u64) -> Self {
        let usable = usize::try_from(open_file_limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(RESERVED_DESCRIPTORS)
            .max(1);
        if self.max_connections > usable {
            tracing::warn!(
                configured = self.max_connections,
                open_file_limit,
                max_connections = usable,
                "CRMBET_MAX_CONNECTIONS is above what the open-file limit (ulimit -n) allows; \
                 using the lower cap"
            );
            self.max_connections = usable;
        }
        self
    }
}

/// The soft limit on open file descriptors of this process (Linux), `None` when unknown.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

/// The soft limit in the `Max open files` line of `/proc/<pid>/limits`.
fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What one connection is doing, as its requests and its watchdog see it.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    in_flight: AtomicU32,
    started_a_request: AtomicBool,
    /// Consecutive watchdog checks that found no request in flight and none started since.
    idle_checks: AtomicU32,
    /// Set once the connection was chosen to make room; it is then closing.
    evicted: AtomicBool,
    /// Wakes the connection's task to close it.
    close: Notify,
}

impl Activity {
    /// Marks a request as started; the guard marks it finished when dropped.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestInFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        // Loads before stores: the common case (already set, already zero) writes nothing.
        if !self.started_a_request.load(Ordering::Relaxed) {
            self.started_a_request.store(true, Ordering::Relaxed);
        }
        if self.idle_checks.load(Ordering::Relaxed) != 0 {
            self.idle_checks.store(0, Ordering::Relaxed);
        }
        RequestInFlight(Arc::clone(self))
    }

    /// Whether any request was ever started on this connection.
    pub(crate) fn started_a_request(&self) -> bool {
        self.started_a_request.load(Ordering::Relaxed)
    }

    /// One watchdog check: the number of consecutive checks, this one included, that found
    /// the connection idle (0 when a request is in flight).
    pub(crate) fn check_idle(&self) -> u32 {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            self.idle_checks.store(0, Ordering::Relaxed);
            return 0;
        }
        self.idle_checks.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// Resolves when the connection was chosen to make room for a new one.
    pub(crate) async fn evicted(&self) {
        self.close.notified().await;
    }
}

/// A request in flight on a connection; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct RequestInFlight(Arc<Activity>);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every open client connection, for the cap and for `/health`; cheap to share.
#[derive(Debug)]
pub struct Connections {
    limits: ConnectionLimits,
    table: Mutex<Table>,
    next_id: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    /// By id, which is the order of acceptance.
    open: BTreeMap<u64, Arc<Activity>>,
    /// Entries of `open` told to close that have not closed yet.
    closing: usize,
}

/// The counts `/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCounts {
    pub open: usize,
    pub max: usize,
    /// Connections closed at accept because every slot was busy, since startup.
    pub refused: u64,
    /// Idle connections closed to make room for a new one, since startup.
    pub evicted: u64,
}

/// Whether a newly accepted connection may be served.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Served; dropping the registration removes it from the table.
    Admitted(Registration),
    /// Every slot is busy: close it at once.
    Refused,
}

impl Connections {
    /// An empty table enforcing `limits`.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Open connections and the cap.
    pub fn counts(&self) -> ConnectionCounts {
        let table = self.table();
        ConnectionCounts {
            open: table.open.len(),
            max: self.limits.max_connections,
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// Registers a new connection, closing the longest-idle one first when at the cap.
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        let mut table = self.table();
        let counted = table.open.len() - table.closing;
        // Connections told to close take a moment to do so; a flood must not outrun them.
        let over_hard_limit = table.open.len() >= self.limits.max_connections + CLOSING_ALLOWANCE;
        if over_hard_limit
            || (counted >= self.limits.max_connections && !self.evict_idlest(&mut table))
        {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Admission::Refused;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::default());
        table.open.insert(id, Arc::clone(&activity));
        Admission::Admitted(Registration {
            id,
            activity,
            connections: Arc::clone(self),
        })
    }

    /// Tells the idle connection with the most idle checks (the oldest among equals) to
    /// close; `false` when every connection has a request in flight.
    fn evict_idlest(&self, table: &mut Table) -> bool {
        let mut idlest: Option<&Arc<Activity>> = None;
        for activity in table.open.values() {
            if activity.evicted.load(Ordering::Relaxed) || !activity.is_idle() {
                continue;
            }
            let more_idle = idlest.is_none_or(|current| {
                activity.idle_checks.load(Ordering::Relaxed)
                    > current.idle_checks.load(Ordering::Relaxed)
            });
            if more_idle {
                idlest = Some(activity);
            }
        }
        let Some(idlest) = idlest else {
            return false;
        };
        idlest.evicted.store(true, Ordering::Relaxed);
        // A stored permit: the task sees it even if it is not waiting right now.
        idlest.close.notify_one();
        table.closing += 1;
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table stays consistent between statements: a panic cannot leave it half-done.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One admitted connection's place in the table; removed when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    id: u64,
    activity: Arc<Activity>,
    connections: Arc<Connections>,
}

impl Registration {
    pub(crate) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut table = self.connections.table();
        if let Some(activity) = table.open.remove(&self.id)
            && activity.evicted.load(Ordering::Relaxed)
        {
            table.closing -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            first_request_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            http2_ping_interval: None,
            request_body_timeout: Duration::from_secs(1),
        }
    }

    fn admitted(admission: Admission) -> Registration {
        match admission {
            Admission::Admitted(registration) => registration,
            Admission::Refused => panic!("the connection was refused"),
        }
    }

    #[test]
    fn at_the_cap_the_idlest_connection_makes_room_and_busy_ones_never_do() {
        let connections = Arc::new(Connections::new(limits(2)));
        let first = admitted(connections.admit());
        let second = admitted(connections.admit());
        // The second has been idle longer (two checks against one).
        first.activity().check_idle();
        second.activity().check_idle();
        second.activity().check_idle();
        let third = admitted(connections.admit());
        assert!(second.activity().evicted.load(Ordering::Relaxed));
        assert!(!first.activity().evicted.load(Ordering::Relaxed));
        assert_eq!(
            connections.counts().open,
            3,
            "the evicted one is still closing"
        );

        // Busy connections are never chosen: with both counted ones busy, a newcomer is
        // refused.
        let first_request = first.activity().begin_request();
        let _third_request = third.activity().begin_request();
        assert!(matches!(connections.admit(), Admission::Refused));
        assert_eq!(connections.counts().refused, 1);

        // Once the evicted one has closed, its slot is not counted twice.
        drop(second);
        assert!(matches!(connections.admit(), Admission::Refused));
        drop(first_request);
        let fourth = admitted(connections.admit());
        assert!(first.activity().evicted.load(Ordering::Relaxed));
        drop(fourth);
        assert_eq!(connections.counts().evicted, 2);
    }

    #[test]
    fn a_request_resets_the_idle_checks() {
        let activity = Arc::new(Activity::default());
        assert!(!activity.started_a_request());
        assert_eq!(activity.check_idle(), 1);
        assert_eq!(activity.check_idle(), 2);
        let request = activity.begin_request();
        assert!(activity.started_a_request());
        assert_eq!(activity.check_idle(), 0, "busy");
        drop(request);
        assert_eq!(activity.check_idle(), 1);
    }

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        let limits_text = "Limit                     Soft Limit           Hard Limit           Units\n\
                           Max cpu time              unlimited            unlimited            seconds\n\
                           Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_file_limit(limits_text), Some(1024));
        assert_eq!(parse_open_file_limit("nothing here"), None);
        assert_eq!(limits(4096).fitted_to(1024).max_connections, 1024 - 128);
        assert_eq!(limits(100).fitted_to(1024).max_connections, 100);
        assert_eq!(limits(100).fitted_to(10).max_connections, 1);
    }
}
