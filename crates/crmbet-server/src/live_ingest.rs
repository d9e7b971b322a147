//! Live play at the protocol edge: every intake (gRPC, REST, RabbitMQ) stores its batch
//! through the use case, then drops the cached segment answers of the players it changed,
//! so the next GetUserSegment reads their new segment and confidence, and wakes this
//! server's segment-change watchers.

use std::sync::Arc;

use crmbet_app::{IngestReport, IntakeSource, LivePlay, LiveTransaction};
use crmbet_core::Result;
use crmbet_store::Store;

use crate::read_cache::ReadCache;
use crate::segment_feed::SegmentFeed;

/// The live-play use case with this server's read cache; cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveIngest {
    live_play: LivePlay,
    read_cache: ReadCache,
    feed: Arc<SegmentFeed>,
}

impl LiveIngest {
    /// Live play on `store`; segment changes go to Smartico when `profile_updates` (a
    /// configured Smartico).
    pub fn new(
        store: Store,
        read_cache: ReadCache,
        feed: Arc<SegmentFeed>,
        profile_updates: bool,
    ) -> Self {
        Self {
            live_play: LivePlay::new(store).with_profile_updates(profile_updates),
            read_cache,
            feed,
        }
    }

    /// Stores one batch (see [`LivePlay::ingest`]) and forgets the cached segments of its
    /// players once it is committed.
    pub async fn ingest(
        &self,
        transactions: &[LiveTransaction],
        source: IntakeSource,
    ) -> Result<IngestReport> {
        let report = self.live_play.ingest(transactions, source).await?;
        if report.segment_changes > 0 {
            self.feed.changed();
        }
        if let Some(model_id) = report.model_id {
            let keys = report
                .players
                .iter()
                .map(|player| {
                    self.read_cache
                        .key(Some(model_id), &format!("segment:{player}"))
                })
                .collect();
            self.read_cache.forget(keys).await;
        }
        Ok(report)
    }
}
