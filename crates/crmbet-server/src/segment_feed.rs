//! The feed behind `WatchSegmentChanges`: watchers read the recorded changes after their
//! cursor from the store, and wait, when they have read everything, until a newer change
//! exists. One task per server learns of newer changes (a `MAX(id)` every
//! [`POLL_INTERVAL`], at once when this process's live intake recorded some), so idle
//! watchers cost the database nothing each.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::time::Duration;

use crmbet_store::{REASON_ACTIVATION, REASON_LIVE, RecordedSegmentChange, Store};
use futures::Stream;
use tokio::sync::{Notify, watch};
use tonic::Status;

use crmbet_proto::v1::{SegmentChange, SegmentChangeReason, WatchSegmentChangesResponse};

use crate::convert::{campaign_type, timestamp};
use crate::status::status_from_error;

/// How often the newest change is looked up while anyone watches (changes recorded by
/// other processes reach watchers within this).
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often it is looked up while nobody watches.
const IDLE_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Changes read per query.
const PAGE: u64 = 500;

/// The stream of one watcher.
pub type SegmentChanges =
    Pin<Box<dyn Stream<Item = Result<WatchSegmentChangesResponse, Status>> + Send>>;

/// The newest recorded change, followed for every watcher of this server.
#[derive(Debug)]
pub struct SegmentFeed {
    store: Store,
    newest: watch::Sender<i64>,
    wake: Notify,
    started: Once,
}

impl SegmentFeed {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            newest: watch::Sender::new(0),
            wake: Notify::new(),
            started: Once::new(),
        })
    }

    /// Looks for new changes now (this process just recorded some).
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// The changes after `cursor` (`None`: after the newest one now), as they come.
    pub async fn watch(
        self: &Arc<Self>,
        cursor: Option<i64>,
    ) -> crmbet_core::Result<SegmentChanges> {
        self.start();
        let cursor = match cursor {
            Some(cursor) => cursor,
            None => self.store.last_segment_change().await?,
        };
        let watcher = Watcher {
            store: self.store.clone(),
            newest: self.newest.subscribe(),
            cursor,
            pending: VecDeque::new(),
            failed: false,
        };
        Ok(Box::pin(futures::stream::unfold(watcher, Watcher::next)))
    }

    /// Starts the task that follows the newest change, once.
    fn start(self: &Arc<Self>) {
        self.started.call_once(|| {
            let feed = Arc::downgrade(self);
            tokio::spawn(async move {
                // Ends with the server's state.
                while let Some(feed) = feed.upgrade() {
                    match feed.store.last_segment_change().await {
                        Ok(newest) => {
                            feed.newest.send_if_modified(|known| {
                                let newer = newest > *known;
                                if newer {
                                    *known = newest;
                                }
                                newer
                            });
                        }
                        Err(error) => {
                            tracing::warn!(%error, "looking for new segment changes failed");
                        }
                    }
                    let interval = if feed.newest.receiver_count() > 0 {
                        POLL_INTERVAL
                    } else {
                        IDLE_POLL_INTERVAL
                    };
                    let _ = tokio::time::timeout(interval, feed.wake.notified()).await;
                }
            });
        });
    }
}

/// One watcher's place in the feed.
struct Watcher {
    store: Store,
    newest: watch::Receiver<i64>,
    cursor: i64,
    pending: VecDeque<RecordedSegmentChange>,
    failed: bool,
}

impl Watcher {
    async fn next(mut self) -> Option<(Result<WatchSegmentChangesResponse, Status>, Self)> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(change) = self.pending.pop_front() {
                self.cursor = change.id;
                return Some((Ok(response(change)), self));
            }
            match self.store.segment_changes_after(self.cursor, PAGE).await {
                Ok(changes) if !changes.is_empty() => self.pending.extend(changes),
                Ok(_) => {
                    let cursor = self.cursor;
                    // The feed's task is gone only when the server is: end the stream.
                    self.newest.wait_for(|newest| *newest > cursor).await.ok()?;
                }
                Err(error) => {
                    self.failed = true;
                    return Some((Err(status_from_error(error)), self));
                }
            }
        }
    }
}

fn response(change: RecordedSegmentChange) -> WatchSegmentChangesResponse {
    let reason = match change.reason.as_str() {
        REASON_LIVE => SegmentChangeReason::Live,
        REASON_ACTIVATION => SegmentChangeReason::Activation,
        _ => SegmentChangeReason::Unspecified,
    };
    WatchSegmentChangesResponse {
        change: Some(SegmentChange {
            cursor: change.id.to_string(),
            user_id: change.user_id,
            model_id: change.model_id,
            previous_cluster_id: change.previous_cluster_id.unwrap_or_default(),
            previous_cluster_name: change.previous_cluster_name.unwrap_or_default(),
            cluster_id: change.cluster_id,
            cluster_name: change.cluster_name,
            suggested_campaign: campaign_type(&change.suggested_campaign).into(),
            confidence: change.confidence,
            outlier: change.outlier,
            reason: reason.into(),
            changed_at: Some(timestamp(change.changed_at)),
        }),
    }
}
