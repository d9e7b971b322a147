//! Logs and traces of the process: log lines as text or JSON on stderr (`CRMBET_LOG`,
//! `CRMBET_LOG_FORMAT`), and, when an OTLP endpoint is configured, request spans exported
//! to it over HTTP (protobuf) by a batch processor on a thread of its own.

use anyhow::Context;
use crmbet_core::{Config, LogFormat};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// What must be flushed before the process exits.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the process's subscriber. Call it before the async runtime starts: the
    /// exporter's blocking HTTP client may not be built inside it.
    pub fn init(config: &Config) -> anyhow::Result<Self> {
        let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = match config.log_format {
            LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
            LogFormat::Json => fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::stderr)
                .boxed(),
        }
        .with_filter(filter);
        let traces = match config.otlp_traces_url() {
            Some(url) => Some(tracer_provider(config, &url)?),
            None => None,
        };
        let spans = traces.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("crmbet"))
                // The request spans, and what crmbet logs at info and above inside them.
                .with_filter(
                    Targets::new()
                        .with_target(crmbet_server::request_span::REQUEST_TARGET, Level::INFO)
                        .with_default(Level::WARN),
                )
        });
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        crmbet_server::request_span::enable(
            config.log_format == LogFormat::Json || traces.is_some(),
        );
        // A second init (tests calling twice) keeps the first subscriber.
        let _ = tracing_subscriber::registry()
            .with(logs)
            .with(spans)
            .try_init();
        Ok(Self { traces })
    }

    /// Exports the spans still buffered; call it after the runtime has stopped.
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: flushing traces at exit failed: {error}");
        }
    }
}

fn tracer_provider(config: &Config, url: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .with_context(|| format!("setting up the OTLP trace exporter for {url}"))?;
    let resource = Resource::builder()
        .with_service_name(config.otel_service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
