//! Counters the server's parts keep themselves (open connections and the cap's refusals,
//! the heavy-read queue, the read cache), read at each scrape rather than mirrored.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::connections::Connections;
use crate::heavy_reads::HeavyReads;
use crate::read_cache::ReadCache;

/// Where the process counters live; a part left out reports nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessSources {
    pub connections: Option<Arc<Connections>>,
    pub heavy_reads: Option<Arc<HeavyReads>>,
    pub read_cache: Option<ReadCache>,
}

#[derive(Debug)]
pub(super) struct ProcessCollector {
    sources: ProcessSources,
}

impl ProcessCollector {
    pub(super) fn new(sources: ProcessSources) -> Self {
        Self { sources }
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(connections) = &self.sources.connections {
            let counts = connections.counts();
            gauge(
                &mut encoder,
                "connections_open",
                "Client connections open now",
                count(counts.open),
            )?;
            counter(
                &mut encoder,
                "connections_refused",
                "Connections closed at once because every connection under the cap was busy",
                counts.refused,
            )?;
        }
        if let Some(heavy_reads) = &self.sources.heavy_reads {
            let load = heavy_reads.load();
            gauge(
                &mut encoder,
                "heavy_reads_running",
                "Heavy reads running now",
                count(load.running),
            )?;
            gauge(
                &mut encoder,
                "heavy_reads_waiting",
                "Heavy reads waiting for a turn now",
                count(load.waiting),
            )?;
            counter(
                &mut encoder,
                "heavy_reads_refused",
                "Heavy reads refused with UNAVAILABLE because no turn came in time",
                load.refused,
            )?;
        }
        if let Some(cache) = &self.sources.read_cache {
            counter(
                &mut encoder,
                "read_cache_hits",
                "Cached reads answered from the cache",
                cache.hits(),
            )?;
            counter(
                &mut encoder,
                "read_cache_loads",
                "Cached reads that had to load from the database",
                cache.loads(),
            )?;
        }
        Ok(())
    }
}
