//! Prometheus metrics at `/metrics`, in the Prometheus text format, from the Prometheus
//! project's own client (`prometheus-client`).
//!
//! Three kinds of numbers:
//! - per RPC and protocol, counted where every protocol meets (the [`RpcMetricsLayer`] in
//!   front of the tonic routes, which REST reaches in process): requests by final gRPC code
//!   and a latency histogram, measured until the response body ends;
//! - refusals before any RPC runs (rate limit, origin, ambiguous request), counted by the
//!   gateway, plus what the connection cap, the heavy-read queue and the read cache count
//!   themselves, read when scraped;
//! - the database's state (outbox backlog and delivery lag, the latest ETL run, the active
//!   model, the latest training run), read when scraped and kept for a second, so a busy
//!   scraper costs the database at most a few indexed queries a second.
//!
//! Label values come from fixed tables (the permission table's RPC paths, gRPC code names),
//! never from what a caller sends, so no request can grow the number of series.

mod database;
mod layer;
mod process;

use std::hash::Hash;
use std::sync::OnceLock;
use std::time::Duration;

use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crmbet_store::Store;
use tonic::Code;

use crate::rest::code_name;

pub use layer::{MeteredRoutes, Protocol, RpcMetrics, RpcMetricsLayer};
pub(crate) use process::ProcessSources;

use self::database::DatabaseGauges;
use self::process::ProcessCollector;

/// Seconds: half a millisecond (a cached read) to ten seconds (a slow export).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long one reading of the database's state serves scrapes.
const DATABASE_READING_TTL: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: &'static str,
    protocol: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    rpc: &'static str,
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

/// Why the gateway refused a request before any RPC ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over a rate-limit budget.
    RateLimit,
    /// A browser request from an origin that is not allowed.
    Origin,
    /// Repeated headers two readers could read differently.
    AmbiguousRequest,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::RateLimit => "rate_limit",
            Self::Origin => "origin",
            Self::AmbiguousRequest => "ambiguous_request",
        }
    }
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

/// gRPC codes 0 (OK) to 16 (UNAUTHENTICATED); `Code::from_i32` maps anything else to UNKNOWN.
const GRPC_CODES: usize = 17;
const REFUSALS: usize = 3;

/// The series of one (RPC, protocol), looked up in their families on first use and kept:
/// a call then costs an index, not a hash of its labels and a lock of the family's map.
/// Series appear in the exposition once used, as they did when looked up per call.
#[derive(Debug, Default)]
struct RpcSeries {
    requests: [OnceLock<Counter>; GRPC_CODES],
    latency: OnceLock<Histogram>,
}

/// The series of `labels` in `family`, resolved into `slot` the first time.
fn resolved<'slot, S, M, C>(
    slot: &'slot OnceLock<M>,
    family: &Family<S, M, C>,
    labels: impl FnOnce() -> S,
) -> &'slot M
where
    S: Clone + Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    slot.get_or_init(|| family.get_or_create(&labels()).clone())
}

/// Every metric of one process; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_latency: LatencyFamily,
    /// Indexed by [`layer::RpcSlot::index`].
    rpc_series: Box<[RpcSeries]>,
    refusals: Family<RefusalLabels, Counter>,
    refusal_series: [OnceLock<Counter>; REFUSALS],
    rate_limit_decisions: Family<DecisionLabels, Counter>,
    /// Admitted, refused.
    decision_series: [OnceLock<Counter>; 2],
    database: DatabaseGauges,
}

impl Metrics {
    /// The registry with every metric, reading process counters from `sources`.
    pub(crate) fn new(sources: ProcessSources) -> Self {
        let mut registry = Registry::with_prefix("crmbet");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_requests",
            "RPCs answered, by RPC, protocol (grpc, grpc-web, rest) and final gRPC code",
            rpc_requests.clone(),
        );
        let rpc_latency: LatencyFamily =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "rpc_duration_seconds",
            "Time from a call reaching the RPC routes to the end of its response body",
            rpc_latency.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "gateway_refusals",
            "Requests refused before any RPC ran, by reason",
            refusals.clone(),
        );
        let rate_limit_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "rate_limit_decisions",
            "Requests counted against rate-limit budgets, by decision (admitted, refused)",
            rate_limit_decisions.clone(),
        );
        let database = DatabaseGauges::register(&mut registry);
        registry.register_collector(Box::new(ProcessCollector::new(sources)));
        Self {
            registry,
            rpc_requests,
            rpc_latency,
            rpc_series: (0..layer::RpcSlot::COUNT)
                .map(|_| RpcSeries::default())
                .collect(),
            refusals,
            refusal_series: Default::default(),
            rate_limit_decisions,
            decision_series: Default::default(),
            database,
        }
    }

    /// One RPC finished with `code` after `elapsed`.
    pub(crate) fn observe_rpc(&self, slot: layer::RpcSlot, code: Code, elapsed: Duration) {
        let Some(series) = self.rpc_series.get(slot.index()) else {
            return;
        };
        let rpc = slot.rpc_label();
        let protocol = slot.protocol().label();
        let code_index = usize::try_from(i32::from(code)).unwrap_or(0);
        if let Some(requests) = series.requests.get(code_index) {
            resolved(requests, &self.rpc_requests, || RpcLabels {
                rpc,
                protocol,
                code: code_name(code),
            })
            .inc();
        }
        resolved(&series.latency, &self.rpc_latency, || LatencyLabels {
            rpc,
            protocol,
        })
        .observe(elapsed.as_secs_f64());
    }

    /// The gateway refused a request.
    pub(crate) fn refused(&self, refusal: Refusal) {
        if refusal == Refusal::RateLimit {
            self.rate_limit_decision(false);
        }
        let index = match refusal {
            Refusal::RateLimit => 0,
            Refusal::Origin => 1,
            Refusal::AmbiguousRequest => 2,
        };
        resolved(&self.refusal_series[index], &self.refusals, || {
            RefusalLabels {
                reason: refusal.label(),
            }
        })
        .inc();
    }

    /// The rate limit admitted a request.
    pub(crate) fn rate_limit_admitted(&self) {
        self.rate_limit_decision(true);
    }

    fn rate_limit_decision(&self, admitted: bool) {
        let (index, decision) = if admitted {
            (0, "admitted")
        } else {
            (1, "refused")
        };
        resolved(
            &self.decision_series[index],
            &self.rate_limit_decisions,
            || DecisionLabels { decision },
        )
        .inc();
    }

    /// The exposition: the database's state read (or reused when fresh), then every metric
    /// in the Prometheus text format. A failed database read leaves its gauges at their
    /// last values and sets `crmbet_database_up` to 0, so the scrape itself still works.
    pub(crate) async fn render(&self, store: &Store) -> String {
        self.database.refresh(store, DATABASE_READING_TTL).await;
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::error!(%error, "metrics: the exposition could not be written");
        }
        text
    }
}

/// `GET /metrics`.
pub(crate) async fn exposition(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> axum::response::Response {
    let text = state.metrics.render(&state.store).await;
    let mut response = axum::response::Response::new(axum::body::Body::from(text));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
