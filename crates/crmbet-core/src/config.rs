//! Configuration: one typed struct, built once from defaults, an optional TOML file and the
//! environment (later wins). Every variable is listed in `.env.example`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;
use crate::rate_limit_classes::{self, RateLimitClasses, RouteClass};

/// Default database: an embedded SQLite file, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/crmbet.db?mode=rwc";
/// Default listen address of `crmbet serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default HSTS lifetime: one year, the usual value (and the minimum for browser preload lists).
pub const DEFAULT_HSTS_MAX_AGE_SECONDS: u64 = 365 * 24 * 60 * 60;
/// Default cap on open client connections; lowered at startup when the process may open
/// fewer file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default number of heavy reads (searches, member lists, analytics) run at once: half the
/// database pool of 16, so the other half stays for logins, writes and cache misses.
pub const DEFAULT_HEAVY_READ_CONCURRENCY: usize = 8;

/// Every setting of crmbet. Field names are the environment variable names, lowercased,
/// without the `CRMBET_` prefix; the same names are the keys of the optional TOML file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite://…` (embedded) or `postgres://…`.
    pub database_url: String,
    /// `CRMBET_LISTEN`: address of the one listener for gRPC, grpc-web and REST.
    pub listen: String,
    /// `CRMBET_TLS_CERT_FILE`: the listener's certificate chain (PEM, leaf first). With
    /// [`Config::tls_key_file`] set too the listener speaks TLS only; see [`Config::tls_files`].
    pub tls_cert_file: Option<PathBuf>,
    /// `CRMBET_TLS_KEY_FILE`: the private key (PEM: PKCS#8, PKCS#1 or SEC1) of the
    /// certificate in [`Config::tls_cert_file`].
    pub tls_key_file: Option<PathBuf>,
    /// `CRMBET_HSTS_MAX_AGE_SECONDS`: how long browsers keep to HTTPS for this host after a
    /// response over TLS (`Strict-Transport-Security`); not sent without TLS.
    pub hsts_max_age_seconds: u64,
    /// `REDIS_URL`: read cache and shared rate limits; unset means in-process.
    pub redis_url: Option<String>,
    /// `CRMBET_REDIS_KEY_PREFIX`: prefix of every Redis key this server writes, so
    /// deployments (or tests) sharing one Redis keep apart.
    pub redis_key_prefix: String,
    /// `AMQP_URL`: RabbitMQ for campaign dispatch; unset means in-process.
    pub amqp_url: Option<String>,
    /// `CRMBET_AMQP_QUEUE`: the durable quorum queue of campaign messages; dead letters go
    /// to `<queue>.dead`.
    pub amqp_queue: String,
    /// `CRMBET_LIVE_QUEUE`: the durable quorum queue the operator's platform publishes live
    /// transactions to (JSON or the protobuf batch); unreadable messages go to `<queue>.dead`.
    pub live_queue: String,
    /// `CRMBET_RATE_LIMIT_PER_HOUR`: requests per client IP per hour.
    pub rate_limit_per_hour: u32,
    /// `CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR`: requests per authenticated principal
    /// (the verified access token's subject) per hour, whatever IPs they come from.
    pub rate_limit_per_principal_per_hour: u32,
    /// `CRMBET_RATE_LIMIT_CLASSES`: per-class overrides of the two budgets above, e.g.
    /// `segment=100000/1000000,auth=60`; see [`Config::rate_limits`].
    pub rate_limit_classes: RateLimitClasses,
    /// `CRMBET_JWT_SECRET`: HMAC secret (at least 32 bytes) for HS256 access tokens.
    pub jwt_secret: Option<String>,
    /// `CRMBET_JWT_KEY_FILE`: a PKCS#8 PEM private key, Ed25519 (EdDSA) or P-256 (ES256),
    /// for access tokens (instead of the secret). With neither set, a random secret is used
    /// and tokens stop working when the process exits.
    pub jwt_key_file: Option<PathBuf>,
    /// `CRMBET_CORS_ORIGINS`: comma-separated dashboard origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// `CRMBET_PUBLIC_ORIGINS`: comma-separated origins (`https://crm.example.com`) this
    /// server is reached at; a browser request from one of them is same-origin. Empty means
    /// the listen address (and `localhost` on a loopback address). Never read from `Host`,
    /// which the client writes.
    pub public_origins: Vec<String>,
    /// `CRMBET_MAX_CONNECTIONS`: open client connections at most; at the cap a new
    /// connection closes the longest-idle one, or is closed itself when none is idle.
    pub max_connections: usize,
    /// `CRMBET_FIRST_REQUEST_TIMEOUT_SECONDS`: how long a new connection (after its TLS
    /// handshake) may take to start its first request.
    pub first_request_timeout_seconds: u64,
    /// `CRMBET_IDLE_TIMEOUT_SECONDS`: how long an HTTP/1.1 keep-alive or HTTP/2 connection
    /// may stay without a request in flight before it is closed.
    pub idle_timeout_seconds: u64,
    /// `CRMBET_HTTP2_PING_INTERVAL_SECONDS`: how often HTTP/2 connections are pinged; one
    /// that does not answer within 20 s is closed. 0 turns pings off.
    pub http2_ping_interval_seconds: u64,
    /// `CRMBET_REQUEST_BODY_TIMEOUT_SECONDS`: how long a request body may take to arrive
    /// once the server waits for it; a slower one is refused (408, `DEADLINE_EXCEEDED`). For
    /// native gRPC (message streams) it bounds each wait for the next frame.
    pub request_body_timeout_seconds: u64,
    /// `CRMBET_HEAVY_READ_CONCURRENCY`: heavy reads (SearchUsers, ListClusterUsers,
    /// GetClusterAnalytics, …) that may run at once; see the permission table.
    pub heavy_read_concurrency: usize,
    /// `CRMBET_HEAVY_READ_QUEUE_MS`: how long a heavy read may wait for its turn before it is
    /// answered 503 / `UNAVAILABLE` with `Retry-After`.
    pub heavy_read_queue_ms: u64,
    /// `CRMBET_TRUSTED_PROXIES`: comma-separated addresses of the reverse proxies whose
    /// `X-Forwarded-For` is believed. From any other peer the header is ignored: anyone can
    /// write it, and login backoff, rate limits and the audit log key on the address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `CRMBET_SMARTICO_URL`: base URL of the Smartico API.
    pub smartico_url: Option<String>,
    /// `CRMBET_SMARTICO_API_KEY`: key for the Smartico API.
    pub smartico_api_key: Option<String>,
    /// `CRMBET_SMARTICO_BRAND`: brand key at Smartico.
    pub smartico_brand: Option<String>,
    /// `CRMBET_WEBHOOK_SECRET`: HMAC secret Smartico signs webhooks with.
    pub webhook_secret: Option<String>,
    /// `CRMBET_WEBHOOK_ALLOWED_IPS`: comma-separated addresses webhooks may come from;
    /// empty for any address (the secret or signature is checked either way).
    pub webhook_allowed_ips: Vec<std::net::IpAddr>,
    /// `CRMBET_SMARTICO_EVENTS_PATH`: path of Smartico's server-to-server event API under
    /// [`Config::smartico_url`].
    pub smartico_events_path: String,
    /// `CRMBET_SMARTICO_CAMPAIGN_EVENT`: the `event_type` of a campaign message.
    pub smartico_campaign_event: String,
    /// `CRMBET_SMARTICO_PROFILE_EVENT`: the `event_type` of the profile updates sent after
    /// a model activation for players whose segment changed.
    pub smartico_profile_event: String,
    /// `CRMBET_SMARTICO_MAX_IN_FLIGHT`: most requests to Smartico at once.
    pub smartico_max_in_flight: usize,
    /// `CRMBET_SMARTICO_REQUESTS_PER_MINUTE`: most requests to Smartico per minute.
    pub smartico_requests_per_minute: u32,
    /// `CRMBET_SMARTICO_MAX_REQUEST_BYTES`: largest request body sent to Smartico.
    pub smartico_max_request_bytes: usize,
    /// `CRMBET_SMARTICO_BATCH_EVENTS`: events per outbox message (and so per request).
    pub smartico_batch_events: usize,
    /// `CRMBET_SMARTICO_TIMEOUT_MS`: how long one request to Smartico may take.
    pub smartico_timeout_ms: u64,
    /// `CRMBET_CIRCUIT_BREAKER_FAILURES`: failed requests in a row that open the circuit
    /// breaker in front of Smartico.
    pub circuit_breaker_failures: u32,
    /// `CRMBET_CIRCUIT_BREAKER_OPEN_SECONDS`: how long an open breaker waits before a trial
    /// request.
    pub circuit_breaker_open_seconds: u64,
    /// `CRMBET_OUTBOX_LEASE_SECONDS`: how long a claimed outbox message stays hidden from
    /// other claims; a process killed mid-delivery leaves it due again after this.
    pub outbox_lease_seconds: u64,
    /// `CRMBET_DELIVERY_MAX_ATTEMPTS`: deliveries of one broker message before RabbitMQ
    /// moves it to the dead-letter queue.
    pub delivery_max_attempts: u32,
    /// `CRMBET_OUTBOUND_WEBHOOK_MAX_ATTEMPTS`: failed deliveries of one batch of segment
    /// changes to an operator's webhook before the batch is dead-lettered and the webhook
    /// moves on.
    pub outbound_webhook_max_attempts: u32,
    /// `CRMBET_OUTBOUND_WEBHOOK_RETRY_MS`: the first retry delay of a failed webhook
    /// delivery; it doubles per failure (with jitter) up to ten minutes.
    pub outbound_webhook_retry_ms: u64,
    /// `CRMBET_OUTBOUND_WEBHOOK_TIMEOUT_MS`: how long one webhook delivery may take.
    pub outbound_webhook_timeout_ms: u64,
    /// `CRMBET_FREQUENCY_CAP`: most campaigns one player receives within the window below;
    /// 0 for no cap.
    pub frequency_cap: u32,
    /// `CRMBET_FREQUENCY_CAP_WINDOW_HOURS`: the window of the frequency cap.
    pub frequency_cap_window_hours: u32,
    /// `CRMBET_HOLDOUT_SEED`: seed of the hash that splits audiences into treatment and
    /// control; changing it changes every future split.
    pub holdout_seed: String,
    /// `CRMBET_MAX_BODY_BYTES`: largest accepted request body or message.
    pub max_body_bytes: usize,
    /// `CRMBET_SHUTDOWN_GRACE_SECONDS`: how long in-flight requests may finish on shutdown.
    pub shutdown_grace_seconds: u64,
    /// `CRMBET_SHUTDOWN_DRAIN_SECONDS`: how long, after SIGINT/SIGTERM and before it stops
    /// accepting, the server keeps serving while its health checks say it is draining, so a
    /// load balancer takes it out of rotation first.
    pub shutdown_drain_seconds: u64,
    /// `CRMBET_LOG`: tracing filter, e.g. `info` or `crmbet_server=debug,info`.
    pub log: String,
    /// `CRMBET_LOG_FORMAT`: `text` for people, `json` (one object per line, with the
    /// request's id and trace id) for a log pipeline.
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL of an OTLP/HTTP collector
    /// (`http://collector:4318`); traces go to `/v1/traces` under it. Unset (with
    /// [`Config::otel_exporter_otlp_traces_endpoint`]) means no traces are exported.
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full URL traces are posted to; wins over
    /// the base URL.
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`: the `service.name` of exported traces.
    pub otel_service_name: String,
    /// `CRMBET_WAREHOUSE_DIR`: where the ETL keeps accepted transactions between runs.
    pub warehouse_dir: PathBuf,
    /// `CRMBET_S3_FORCE_PATH_STYLE`: path-style S3 addressing (`endpoint/bucket/key`) for
    /// S3 lakes; unset means on exactly when `AWS_ENDPOINT_URL` names a custom endpoint.
    /// Credentials, region and endpoint come from the standard AWS configuration.
    pub s3_force_path_style: Option<bool>,
}

/// The PEM files the listener's TLS is made of; see [`Config::tls_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsFiles<'a> {
    /// `CRMBET_TLS_CERT_FILE`: the certificate chain, leaf first.
    pub certificate_chain: &'a Path,
    /// `CRMBET_TLS_KEY_FILE`: the leaf certificate's private key.
    pub private_key: &'a Path,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            listen: DEFAULT_LISTEN.to_owned(),
            tls_cert_file: None,
            tls_key_file: None,
            hsts_max_age_seconds: DEFAULT_HSTS_MAX_AGE_SECONDS,
            redis_url: None,
            redis_key_prefix: "crmbet:".to_owned(),
            amqp_url: None,
            amqp_queue: "crmbet.smartico.campaign".to_owned(),
            live_queue: "crmbet.live.transactions".to_owned(),
            rate_limit_per_hour: 1000,
            rate_limit_per_principal_per_hour: 1000,
            rate_limit_classes: RateLimitClasses::default(),
            jwt_secret: None,
            jwt_key_file: None,
            cors_origins: vec!["http://localhost:3001".to_owned()],
            public_origins: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            first_request_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            http2_ping_interval_seconds: 30,
            request_body_timeout_seconds: 30,
            heavy_read_concurrency: DEFAULT_HEAVY_READ_CONCURRENCY,
            heavy_read_queue_ms: 500,
            trusted_proxies: Vec::new(),
            smartico_url: None,
            smartico_api_key: None,
            smartico_brand: None,
            webhook_secret: None,
            webhook_allowed_ips: Vec::new(),
            smartico_events_path: "/api/external/events/v2".to_owned(),
            smartico_campaign_event: "crmbet_campaign".to_owned(),
            smartico_profile_event: "update_profile".to_owned(),
            smartico_max_in_flight: 12,
            smartico_requests_per_minute: 6000,
            smartico_max_request_bytes: 10 * 1024 * 1024,
            smartico_batch_events: 500,
            smartico_timeout_ms: 10_000,
            circuit_breaker_failures: 5,
            circuit_breaker_open_seconds: 30,
            outbox_lease_seconds: 30,
            delivery_max_attempts: 10,
            outbound_webhook_max_attempts: 8,
            outbound_webhook_retry_ms: 1000,
            outbound_webhook_timeout_ms: 10_000,
            frequency_cap: 3,
            frequency_cap_window_hours: 168,
            holdout_seed: "crmbet-holdout".to_owned(),
            max_body_bytes: 1024 * 1024,
            shutdown_grace_seconds: 30,
            shutdown_drain_seconds: 0,
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            otel_exporter_otlp_endpoint: None,
            otel_exporter_otlp_traces_endpoint: None,
            otel_service_name: "crmbet".to_owned(),
            warehouse_dir: PathBuf::from("data/warehouse"),
            s3_force_path_style: None,
        }
    }
}

/// The environment variable behind each setting, in `.env.example` order.
pub const ENVIRONMENT_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "CRMBET_LISTEN",
    "CRMBET_TLS_CERT_FILE",
    "CRMBET_TLS_KEY_FILE",
    "CRMBET_HSTS_MAX_AGE_SECONDS",
    "REDIS_URL",
    "CRMBET_REDIS_KEY_PREFIX",
    "AMQP_URL",
    "CRMBET_AMQP_QUEUE",
    "CRMBET_LIVE_QUEUE",
    "CRMBET_RATE_LIMIT_PER_HOUR",
    "CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR",
    "CRMBET_RATE_LIMIT_CLASSES",
    "CRMBET_JWT_SECRET",
    "CRMBET_JWT_KEY_FILE",
    "CRMBET_CORS_ORIGINS",
    "CRMBET_PUBLIC_ORIGINS",
    "CRMBET_TRUSTED_PROXIES",
    "CRMBET_SMARTICO_URL",
    "CRMBET_SMARTICO_API_KEY",
    "CRMBET_SMARTICO_BRAND",
    "CRMBET_WEBHOOK_SECRET",
    "CRMBET_WEBHOOK_ALLOWED_IPS",
    "CRMBET_SMARTICO_EVENTS_PATH",
    "CRMBET_SMARTICO_CAMPAIGN_EVENT",
    "CRMBET_SMARTICO_PROFILE_EVENT",
    "CRMBET_SMARTICO_MAX_IN_FLIGHT",
    "CRMBET_SMARTICO_REQUESTS_PER_MINUTE",
    "CRMBET_SMARTICO_MAX_REQUEST_BYTES",
    "CRMBET_SMARTICO_BATCH_EVENTS",
    "CRMBET_SMARTICO_TIMEOUT_MS",
    "CRMBET_CIRCUIT_BREAKER_FAILURES",
    "CRMBET_CIRCUIT_BREAKER_OPEN_SECONDS",
    "CRMBET_OUTBOX_LEASE_SECONDS",
    "CRMBET_DELIVERY_MAX_ATTEMPTS",
    "CRMBET_OUTBOUND_WEBHOOK_MAX_ATTEMPTS",
    "CRMBET_OUTBOUND_WEBHOOK_RETRY_MS",
    "CRMBET_OUTBOUND_WEBHOOK_TIMEOUT_MS",
    "CRMBET_FREQUENCY_CAP",
    "CRMBET_FREQUENCY_CAP_WINDOW_HOURS",
    "CRMBET_HOLDOUT_SEED",
    "CRMBET_MAX_BODY_BYTES",
    "CRMBET_MAX_CONNECTIONS",
    "CRMBET_FIRST_REQUEST_TIMEOUT_SECONDS",
    "CRMBET_IDLE_TIMEOUT_SECONDS",
    "CRMBET_HTTP2_PING_INTERVAL_SECONDS",
    "CRMBET_REQUEST_BODY_TIMEOUT_SECONDS",
    "CRMBET_HEAVY_READ_CONCURRENCY",
    "CRMBET_HEAVY_READ_QUEUE_MS",
    "CRMBET_SHUTDOWN_GRACE_SECONDS",
    "CRMBET_SHUTDOWN_DRAIN_SECONDS",
    "CRMBET_LOG",
    "CRMBET_LOG_FORMAT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "CRMBET_WAREHOUSE_DIR",
    "CRMBET_S3_FORCE_PATH_STYLE",
];

/// Requests allowed per hour for one route class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyLimits {
    pub per_client_ip: u32,
    pub per_principal: u32,
}

impl Config {
    /// The budgets of `class`: its `CRMBET_RATE_LIMIT_CLASSES` entry where there is one,
    /// the two general settings otherwise.
    pub fn rate_limits(&self, class: RouteClass) -> HourlyLimits {
        let defaults = HourlyLimits {
            per_client_ip: self.rate_limit_per_hour,
            per_principal: self.rate_limit_per_principal_per_hour,
        };
        let Some(budget) = self.rate_limit_classes.budget(class) else {
            return defaults;
        };
        HourlyLimits {
            per_client_ip: budget.per_client_ip,
            per_principal: budget.per_principal.unwrap_or(defaults.per_principal),
        }
    }

    /// Where traces are exported (OTLP over HTTP), if anywhere: the traces endpoint, or
    /// `/v1/traces` under the base endpoint.
    pub fn otlp_traces_url(&self) -> Option<String> {
        if let Some(url) = &self.otel_exporter_otlp_traces_endpoint {
            return Some(url.clone());
        }
        self.otel_exporter_otlp_endpoint
            .as_ref()
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Error> {
        let environment: HashMap<String, String> = std::env::vars()
            .filter(|(name, _)| ENVIRONMENT_VARIABLES.contains(&name.as_str()))
            .collect();
        Self::load_from(file, &environment)
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_from(
        file: Option<&Path>,
        environment: &HashMap<String, String>,
    ) -> Result<Self, Error> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_environment(environment)?;
        // A half-configured TLS is refused at startup, whichever command runs.
        config.tls_files()?;
        config.check_limits()?;
        Ok(config)
    }

    /// Refuses limits that would make the server unusable: no connection, no heavy read,
    /// or a timeout of zero (which would close every connection at once).
    fn check_limits(&self) -> Result<(), Error> {
        let at_least_one = [
            ("CRMBET_MAX_CONNECTIONS", self.max_connections as u64),
            (
                "CRMBET_FIRST_REQUEST_TIMEOUT_SECONDS",
                self.first_request_timeout_seconds,
            ),
            ("CRMBET_IDLE_TIMEOUT_SECONDS", self.idle_timeout_seconds),
            (
                "CRMBET_REQUEST_BODY_TIMEOUT_SECONDS",
                self.request_body_timeout_seconds,
            ),
            (
                "CRMBET_HEAVY_READ_CONCURRENCY",
                self.heavy_read_concurrency as u64,
            ),
        ];
        for (name, value) in at_least_one {
            if value == 0 {
                return Err(Error::invalid_argument(name, "must be at least 1, got 0"));
            }
        }
        Ok(())
    }

    /// The listener's certificate and key files when TLS is on (both set), `None` when it is
    /// off (neither set), and an error naming both settings when only one is set.
    pub fn tls_files(&self) -> Result<Option<TlsFiles<'_>>, Error> {
        let reason = |present: &str, missing: &str| {
            Error::invalid_argument(
                missing,
                format!(
                    "{present} is set but {missing} is not; set both to serve TLS, or \
                     neither to serve plain HTTP (behind a TLS-terminating proxy)"
                ),
            )
        };
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(certificate_chain), Some(private_key)) => Ok(Some(TlsFiles {
                certificate_chain,
                private_key,
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(reason("CRMBET_TLS_CERT_FILE", "CRMBET_TLS_KEY_FILE")),
            (None, Some(_)) => Err(reason("CRMBET_TLS_KEY_FILE", "CRMBET_TLS_CERT_FILE")),
        }
    }

    fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Error::invalid_argument(
                "--config",
                format!("cannot read {}: {error}", path.display()),
            )
        })?;
        toml::from_str(&text).map_err(|error| {
            Error::invalid_argument("--config", format!("{}: {error}", path.display()))
        })
    }

    fn apply_environment(&mut self, environment: &HashMap<String, String>) -> Result<(), Error> {
        let text = |name: &str| {
            environment
                .get(name)
                .filter(|value| !value.is_empty())
                .cloned()
        };
        if let Some(value) = text("DATABASE_URL") {
            self.database_url = value;
        }
        if let Some(value) = text("CRMBET_LISTEN") {
            self.listen = value;
        }
        self.tls_cert_file = text("CRMBET_TLS_CERT_FILE")
            .map(PathBuf::from)
            .or(self.tls_cert_file.take());
        self.tls_key_file = text("CRMBET_TLS_KEY_FILE")
            .map(PathBuf::from)
            .or(self.tls_key_file.take());
        if let Some(value) = text("CRMBET_HSTS_MAX_AGE_SECONDS") {
            self.hsts_max_age_seconds = parse_number("CRMBET_HSTS_MAX_AGE_SECONDS", &value)?;
        }
        self.redis_url = text("REDIS_URL").or(self.redis_url.take());
        if let Some(value) = text("CRMBET_REDIS_KEY_PREFIX") {
            self.redis_key_prefix = value;
        }
        self.amqp_url = text("AMQP_URL").or(self.amqp_url.take());
        if let Some(value) = text("CRMBET_AMQP_QUEUE") {
            self.amqp_queue = value;
        }
        if let Some(value) = text("CRMBET_LIVE_QUEUE") {
            self.live_queue = value;
        }
        if let Some(value) = text("CRMBET_RATE_LIMIT_PER_HOUR") {
            self.rate_limit_per_hour = parse_number("CRMBET_RATE_LIMIT_PER_HOUR", &value)?;
        }
        if let Some(value) = text("CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR") {
            self.rate_limit_per_principal_per_hour =
                parse_number("CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR", &value)?;
        }
        if let Some(value) = text(rate_limit_classes::SETTING) {
            self.rate_limit_classes = value
                .parse()
                .map_err(|reason| Error::invalid_argument(rate_limit_classes::SETTING, reason))?;
        }
        self.jwt_secret = text("CRMBET_JWT_SECRET").or(self.jwt_secret.take());
        self.jwt_key_file = text("CRMBET_JWT_KEY_FILE")
            .map(PathBuf::from)
            .or(self.jwt_key_file.take());
        if let Some(value) = text("CRMBET_CORS_ORIGINS") {
            self.cors_origins = comma_separated(&value);
        }
        if let Some(value) = text("CRMBET_PUBLIC_ORIGINS") {
            self.public_origins = comma_separated(&value);
        }
        if let Some(value) = text("CRMBET_TRUSTED_PROXIES") {
            self.trusted_proxies = parse_addresses("CRMBET_TRUSTED_PROXIES", &value)?;
        }
        if let Some(value) = text("CRMBET_WEBHOOK_ALLOWED_IPS") {
            self.webhook_allowed_ips = parse_addresses("CRMBET_WEBHOOK_ALLOWED_IPS", &value)?;
        }
        if let Some(value) = text("CRMBET_SMARTICO_EVENTS_PATH") {
            self.smartico_events_path = value;
        }
        if let Some(value) = text("CRMBET_SMARTICO_CAMPAIGN_EVENT") {
            self.smartico_campaign_event = value;
        }
        if let Some(value) = text("CRMBET_SMARTICO_PROFILE_EVENT") {
            self.smartico_profile_event = value;
        }
        if let Some(value) = text("CRMBET_HOLDOUT_SEED") {
            self.holdout_seed = value;
        }
        let number = |name: &str| text(name).map(|value| (name.to_owned(), value));
        if let Some((name, value)) = number("CRMBET_SMARTICO_MAX_IN_FLIGHT") {
            self.smartico_max_in_flight = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_SMARTICO_REQUESTS_PER_MINUTE") {
            self.smartico_requests_per_minute = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_SMARTICO_MAX_REQUEST_BYTES") {
            self.smartico_max_request_bytes = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_SMARTICO_BATCH_EVENTS") {
            self.smartico_batch_events = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_SMARTICO_TIMEOUT_MS") {
            self.smartico_timeout_ms = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_CIRCUIT_BREAKER_FAILURES") {
            self.circuit_breaker_failures = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_CIRCUIT_BREAKER_OPEN_SECONDS") {
            self.circuit_breaker_open_seconds = parse_number(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_OUTBOX_LEASE_SECONDS") {
            self.outbox_lease_seconds = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_DELIVERY_MAX_ATTEMPTS") {
            self.delivery_max_attempts = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_OUTBOUND_WEBHOOK_MAX_ATTEMPTS") {
            self.outbound_webhook_max_attempts = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_OUTBOUND_WEBHOOK_RETRY_MS") {
            self.outbound_webhook_retry_ms = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_OUTBOUND_WEBHOOK_TIMEOUT_MS") {
            self.outbound_webhook_timeout_ms = parse_positive(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_FREQUENCY_CAP") {
            self.frequency_cap = parse_number(&name, &value)?;
        }
        if let Some((name, value)) = number("CRMBET_FREQUENCY_CAP_WINDOW_HOURS") {
            self.frequency_cap_window_hours = parse_positive(&name, &value)?;
        }
        self.smartico_url = text("CRMBET_SMARTICO_URL").or(self.smartico_url.take());
        self.smartico_api_key = text("CRMBET_SMARTICO_API_KEY").or(self.smartico_api_key.take());
        self.smartico_brand = text("CRMBET_SMARTICO_BRAND").or(self.smartico_brand.take());
        self.webhook_secret = text("CRMBET_WEBHOOK_SECRET").or(self.webhook_secret.take());
        if let Some(value) = text("CRMBET_MAX_BODY_BYTES") {
            self.max_body_bytes = parse_number("CRMBET_MAX_BODY_BYTES", &value)?;
        }
        if let Some(value) = text("CRMBET_MAX_CONNECTIONS") {
            self.max_connections = parse_number("CRMBET_MAX_CONNECTIONS", &value)?;
        }
        if let Some(value) = text("CRMBET_FIRST_REQUEST_TIMEOUT_SECONDS") {
            self.first_request_timeout_seconds =
                parse_number("CRMBET_FIRST_REQUEST_TIMEOUT_SECONDS", &value)?;
        }
        if let Some(value) = text("CRMBET_IDLE_TIMEOUT_SECONDS") {
            self.idle_timeout_seconds = parse_number("CRMBET_IDLE_TIMEOUT_SECONDS", &value)?;
        }
        if let Some(value) = text("CRMBET_HTTP2_PING_INTERVAL_SECONDS") {
            self.http2_ping_interval_seconds =
                parse_number("CRMBET_HTTP2_PING_INTERVAL_SECONDS", &value)?;
        }
        if let Some(value) = text("CRMBET_REQUEST_BODY_TIMEOUT_SECONDS") {
            self.request_body_timeout_seconds =
                parse_number("CRMBET_REQUEST_BODY_TIMEOUT_SECONDS", &value)?;
        }
        if let Some(value) = text("CRMBET_HEAVY_READ_CONCURRENCY") {
            self.heavy_read_concurrency = parse_number("CRMBET_HEAVY_READ_CONCURRENCY", &value)?;
        }
        if let Some(value) = text("CRMBET_HEAVY_READ_QUEUE_MS") {
            self.heavy_read_queue_ms = parse_number("CRMBET_HEAVY_READ_QUEUE_MS", &value)?;
        }
        if let Some(value) = text("CRMBET_SHUTDOWN_GRACE_SECONDS") {
            self.shutdown_grace_seconds = parse_number("CRMBET_SHUTDOWN_GRACE_SECONDS", &value)?;
        }
        if let Some(value) = text("CRMBET_SHUTDOWN_DRAIN_SECONDS") {
            self.shutdown_drain_seconds = parse_number("CRMBET_SHUTDOWN_DRAIN_SECONDS", &value)?;
        }
        if let Some(value) = text("CRMBET_LOG") {
            self.log = value;
        }
        if let Some(value) = text("CRMBET_LOG_FORMAT") {
            self.log_format = LogFormat::parse(&value)?;
        }
        self.otel_exporter_otlp_endpoint =
            text("OTEL_EXPORTER_OTLP_ENDPOINT").or(self.otel_exporter_otlp_endpoint.take());
        self.otel_exporter_otlp_traces_endpoint = text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or(self.otel_exporter_otlp_traces_endpoint.take());
        if let Some(value) = text("OTEL_SERVICE_NAME") {
            self.otel_service_name = value;
        }
        if let Some(value) = text("CRMBET_WAREHOUSE_DIR") {
            self.warehouse_dir = PathBuf::from(value);
        }
        if let Some(value) = text("CRMBET_S3_FORCE_PATH_STYLE") {
            self.s3_force_path_style = Some(parse_bool("CRMBET_S3_FORCE_PATH_STYLE", &value)?);
        }
        Ok(())
    }
}

fn comma_separated(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    fn parse(value: &str) -> Result<Self, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(Error::invalid_argument(
                "CRMBET_LOG_FORMAT",
                format!("must be text or json, got {value:?}"),
            )),
        }
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Error> {
    value.trim().parse().map_err(|_| {
        Error::invalid_argument(
            name,
            format!("must be a non-negative integer, got {value:?}"),
        )
    })
}

/// A number that must be at least 1.
fn parse_positive<T: std::str::FromStr + Default + PartialEq>(
    name: &str,
    value: &str,
) -> Result<T, Error> {
    let number: T = parse_number(name, value)?;
    if number == T::default() {
        return Err(Error::invalid_argument(
            name,
            format!("must be at least 1, got {value:?}"),
        ));
    }
    Ok(number)
}

fn parse_addresses(name: &str, value: &str) -> Result<Vec<std::net::IpAddr>, Error> {
    value
        .split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .map(|address| {
            address.parse().map_err(|_| {
                Error::invalid_argument(name, format!("{address:?} is not an IP address"))
            })
        })
        .collect()
}

fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid_argument(
            name,
            format!("must be true or false, got {value:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("crmbet.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nrate_limit_per_hour = 50\n",
        )
        .unwrap();
        let environment = HashMap::from([
            ("CRMBET_RATE_LIMIT_PER_HOUR".to_owned(), "20".to_owned()),
            (
                "CRMBET_CORS_ORIGINS".to_owned(),
                "https://a.example, https://b.example".to_owned(),
            ),
        ]);
        let config = Config::load_from(Some(&file), &environment).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.rate_limit_per_hour, 20);
        assert_eq!(
            config.cors_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.s3_force_path_style, None);
    }

    #[test]
    fn class_overrides_replace_the_defaults_of_the_classes_they_list() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("crmbet.toml");
        std::fs::write(&file, "rate_limit_classes = \"write=7\"\n").unwrap();
        let environment = HashMap::from([
            ("CRMBET_RATE_LIMIT_PER_HOUR".to_owned(), "500".to_owned()),
            (
                "CRMBET_RATE_LIMIT_CLASSES".to_owned(),
                "segment=100000/1000000,auth=60".to_owned(),
            ),
        ]);
        let config = Config::load_from(None, &environment).unwrap();
        let limits = |class| config.rate_limits(class);
        assert_eq!(
            limits(RouteClass::Segment),
            HourlyLimits {
                per_client_ip: 100_000,
                per_principal: 1_000_000
            }
        );
        assert_eq!(
            limits(RouteClass::Auth),
            HourlyLimits {
                per_client_ip: 60,
                per_principal: 1000
            }
        );
        assert_eq!(
            limits(RouteClass::Read),
            HourlyLimits {
                per_client_ip: 500,
                per_principal: 1000
            }
        );
        let from_file = Config::load_from(Some(&file), &HashMap::new()).unwrap();
        assert_eq!(from_file.rate_limits(RouteClass::Write).per_client_ip, 7);
    }

    #[test]
    fn connection_and_load_limits_have_defaults_and_refuse_zero() {
        let defaults = Config::load_from(None, &HashMap::new()).unwrap();
        assert_eq!(defaults.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(defaults.first_request_timeout_seconds, 10);
        assert_eq!(defaults.idle_timeout_seconds, 60);
        assert_eq!(defaults.http2_ping_interval_seconds, 30);
        assert_eq!(defaults.request_body_timeout_seconds, 30);
        assert_eq!(
            defaults.heavy_read_concurrency,
            DEFAULT_HEAVY_READ_CONCURRENCY
        );
        assert_eq!(defaults.heavy_read_queue_ms, 500);
        assert!(defaults.public_origins.is_empty());

        let environment = HashMap::from([
            ("CRMBET_MAX_CONNECTIONS".to_owned(), "64".to_owned()),
            (
                "CRMBET_HTTP2_PING_INTERVAL_SECONDS".to_owned(),
                "0".to_owned(),
            ),
            (
                "CRMBET_PUBLIC_ORIGINS".to_owned(),
                "https://crm.example.com, http://10.0.0.5:3000".to_owned(),
            ),
        ]);
        let config = Config::load_from(None, &environment).unwrap();
        assert_eq!(config.max_connections, 64);
        assert_eq!(config.http2_ping_interval_seconds, 0);
        assert_eq!(
            config.public_origins,
            ["https://crm.example.com", "http://10.0.0.5:3000"]
        );

        for name in [
            "CRMBET_MAX_CONNECTIONS",
            "CRMBET_FIRST_REQUEST_TIMEOUT_SECONDS",
            "CRMBET_IDLE_TIMEOUT_SECONDS",
            "CRMBET_REQUEST_BODY_TIMEOUT_SECONDS",
            "CRMBET_HEAVY_READ_CONCURRENCY",
        ] {
            let environment = HashMap::from([(name.to_owned(), "0".to_owned())]);
            let error = Config::load_from(None, &environment)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(name) && error.contains("at least 1"),
                "{error}"
            );
        }
    }

    #[test]
    fn s3_path_style_is_read_as_a_boolean() {
        for (value, expected) in [
            ("true", true),
            ("1", true),
            ("FALSE", false),
            ("off", false),
        ] {
            let environment =
                HashMap::from([("CRMBET_S3_FORCE_PATH_STYLE".to_owned(), value.to_owned())]);
            let config = Config::load_from(None, &environment).unwrap();
            assert_eq!(config.s3_force_path_style, Some(expected), "{value}");
        }
    }

    #[test]
    fn tls_needs_both_files_or_neither() {
        let certificate = ("CRMBET_TLS_CERT_FILE", "/etc/crmbet/chain.pem");
        let key = ("CRMBET_TLS_KEY_FILE", "/etc/crmbet/key.pem");
        let environment = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect()
        };

        let plain = Config::load_from(None, &environment(&[])).unwrap();
        assert_eq!(plain.tls_files().unwrap(), None);
        assert_eq!(plain.hsts_max_age_seconds, 31_536_000);

        let tls = Config::load_from(None, &environment(&[certificate, key])).unwrap();
        assert_eq!(
            tls.tls_files().unwrap(),
            Some(TlsFiles {
                certificate_chain: Path::new("/etc/crmbet/chain.pem"),
                private_key: Path::new("/etc/crmbet/key.pem"),
            })
        );

        for (set, missing) in [
            (certificate, "CRMBET_TLS_KEY_FILE"),
            (key, "CRMBET_TLS_CERT_FILE"),
        ] {
            let error = Config::load_from(None, &environment(&[set]))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(missing) && error.contains(set.0),
                "{error}"
            );
        }
    }

    #[test]
    fn rejects_bad_numbers_and_unknown_keys() {
        let environment =
            HashMap::from([("CRMBET_RATE_LIMIT_PER_HOUR".to_owned(), "lots".to_owned())]);
        let error = Config::load_from(None, &environment).unwrap_err();
        assert!(
            error.to_string().contains("CRMBET_RATE_LIMIT_PER_HOUR"),
            "{error}"
        );

        let environment =
            HashMap::from([("CRMBET_S3_FORCE_PATH_STYLE".to_owned(), "maybe".to_owned())]);
        let error = Config::load_from(None, &environment).unwrap_err();
        assert!(
            error.to_string().contains("CRMBET_S3_FORCE_PATH_STYLE"),
            "{error}"
        );

        let environment =
            HashMap::from([("CRMBET_RATE_LIMIT_CLASSES".to_owned(), "bets=5".to_owned())]);
        let error = Config::load_from(None, &environment).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("CRMBET_RATE_LIMIT_CLASSES"), "{message}");
        assert!(message.contains("auth, segment"), "{message}");

        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("crmbet.toml");
        std::fs::write(&file, "lisen = \"typo\"\n").unwrap();
        assert!(Config::load_from(Some(&file), &HashMap::new()).is_err());
    }
}
