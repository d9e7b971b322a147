//! The application behind the one listener: gRPC, grpc-web, REST and `/health`, told apart
//! by content type in [`crate::gateway`], and the dashboard at `/` ([`crate::dashboard`]). [`crate::listener`] accepts the connections.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use crmbet_core::{Config, Error, Result};
use crmbet_proto::FILE_DESCRIPTOR_SET;
use crmbet_proto::v1::auth_service_server::AuthServiceServer;
use crmbet_proto::v1::campaign_service_server::CampaignServiceServer;
use crmbet_proto::v1::cluster_service_server::ClusterServiceServer;
use crmbet_proto::v1::event_service_server::EventServiceServer;
use crmbet_proto::v1::notification_service_server::NotificationServiceServer;
use crmbet_proto::v1::smartico_webhook_service_server::SmarticoWebhookServiceServer;
use crmbet_proto::v1::training_service_server::TrainingServiceServer;
use crmbet_proto::v1::user_service_server::UserServiceServer;
use crmbet_store::Store;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_web::GrpcWebLayer;
use tower::Layer;

use crate::auth::{AccessLayer, KeySource, RevokedSessions, TokenKeys};
use crate::broker_probe::BrokerProbe;
use crate::connections::{ConnectionLimits, Connections};
use crate::draining::Draining;
use crate::gateway::Gateway;
use crate::health::{DatabaseProbe, health};
use crate::heavy_reads::HeavyReads;
use crate::live_ingest::LiveIngest;
use crate::metrics::{MeteredRoutes, Metrics, ProcessSources, RpcMetricsLayer};
use crate::openapi::{DOCUMENT_PATH, UI_PATH, document_response, openapi_document, ui_response};
use crate::rate_limit::{RateLimitState, RateLimiter};
use crate::read_cache::ReadCache;
use crate::rest::{RestConfig, RestRoutes, rest_router};
use crate::segment_feed::SegmentFeed;
use crate::service::{
    AuthApi, CampaignApi, ClusterApi, EventApi, NotificationApi, SmarticoWebhookApi, TrainingApi,
    UserApi,
};
use crate::web_security::{WebSecurity, default_public_origins};
use crate::webhook_auth::{WebhookAuth, verify_rest_webhook};
use crmbet_app::{CampaignSettings, Campaigns, SegmentWebhooks, Trainer};
use crmbet_integrations::CircuitBreaker;

/// How long startup waits for Redis before serving with a local rate limiter.
const REDIS_STARTUP_WAIT: Duration = Duration::from_secs(2);

/// What every HTTP handler may read.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub trainer: Trainer,
    /// The pinned algorithm and keys of access tokens.
    pub token_keys: Arc<TokenKeys>,
    /// Request budgets per route class, client IP and principal, in Redis when `REDIS_URL`
    /// is set.
    pub rate_limiter: RateLimiter,
    /// Cached segment and cluster reads, in Redis on the rate limiter's connection.
    pub read_cache: ReadCache,
    /// Login sessions ended lately, whose access tokens the access layer refuses.
    pub revoked_sessions: Arc<RevokedSessions>,
    /// The listener's open connections and their limits.
    pub connections: Arc<Connections>,
    /// Turns for heavy reads, so they never hold the whole database pool.
    pub heavy_reads: Arc<HeavyReads>,
    /// The health check's own database connection.
    pub(crate) database_probe: Arc<DatabaseProbe>,
    /// Whether the broker of `AMQP_URL` answers, when one is configured.
    pub(crate) broker_probe: Option<Arc<BrokerProbe>>,
    /// The campaign use cases (campaigns, restrictions, Smartico's events).
    pub campaigns: Campaigns,
    /// The credentials Smartico webhooks must carry.
    pub webhook_auth: WebhookAuth,
    /// The circuit breaker in front of Smartico, when this process delivers to it.
    pub delivery_breaker: Option<CircuitBreaker>,
    /// What `/metrics` exposes.
    pub metrics: Arc<Metrics>,
    /// Live play with this server's cache (every intake goes through it).
    pub live_ingest: LiveIngest,
    /// The segment changes `WatchSegmentChanges` streams.
    pub segment_feed: Arc<SegmentFeed>,
    /// Whether a shutdown has begun draining this server (health checks say so).
    pub draining: Arc<Draining>,
}

impl AppState {
    /// The state over an opened store, with a trainer of its own and the token keys the
    /// configuration names (a random secret, with a warning, when it names none), and the
    /// rate limiter it asks for. Must be called inside a tokio runtime.
    pub fn new(store: Store, config: Config) -> Result<Self> {
        let token_keys = TokenKeys::from_config(&config)?;
        match token_keys.source() {
            KeySource::Ephemeral => tracing::warn!(
                "neither CRMBET_JWT_SECRET nor CRMBET_JWT_KEY_FILE is set: access tokens are \
                 signed with a random secret and stop working when this process exits"
            ),
            source => tracing::info!(algorithm = ?token_keys.algorithm(), ?source,
                "access tokens use the configured key"),
        }
        let rate_limiter = RateLimiter::from_config(&config)?;
        let read_cache = ReadCache::new(rate_limiter.redis_client(), &config.redis_key_prefix);
        let connections = Arc::new(Connections::new(ConnectionLimits::from_config(&config)));
        let heavy_reads = Arc::new(HeavyReads::from_config(&config));
        let metrics = Arc::new(Metrics::new(ProcessSources {
            connections: Some(Arc::clone(&connections)),
            heavy_reads: Some(Arc::clone(&heavy_reads)),
            read_cache: Some(read_cache.clone()),
        }));
        let webhook_auth = WebhookAuth::new(
            config.webhook_secret.clone(),
            config.webhook_allowed_ips.clone(),
            config.trusted_proxies.clone(),
            config.max_body_bytes,
        );
        let segment_feed = SegmentFeed::new(store.clone());
        Ok(Self {
            live_ingest: LiveIngest::new(
                store.clone(),
                read_cache.clone(),
                Arc::clone(&segment_feed),
                config.smartico_url.is_some(),
            ),
            segment_feed,
            read_cache,
            connections,
            heavy_reads,
            metrics,
            draining: Arc::new(Draining::default()),
            database_probe: Arc::new(DatabaseProbe::new(store.clone())),
            broker_probe: config.amqp_url.as_deref().map(BrokerProbe::new),
            campaigns: Campaigns::new(store.clone(), CampaignSettings::from_config(&config)),
            webhook_auth,
            delivery_breaker: None,
            revoked_sessions: Arc::new(RevokedSessions::new(store.clone())),
            trainer: Trainer::new(store.clone()),
            rate_limiter,
            store,
            config: Arc::new(config),
            token_keys: Arc::new(token_keys),
        })
    }

    /// The state with the circuit breaker of this process's Smartico delivery, for
    /// `/health`.
    pub fn with_delivery_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.delivery_breaker = Some(breaker);
        self
    }
}

/// Builds every tonic service, with gRPC health (per service) and reflection (v1 and
/// v1alpha: Python's reflection client speaks only v1alpha), behind the access layer.
pub async fn grpc_routes(state: &AppState) -> Result<MeteredRoutes> {
    let max_message_bytes = state.config.max_body_bytes;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ClusterServiceServer<ClusterApi>>()
        .await;
    health_reporter
        .set_serving::<UserServiceServer<UserApi>>()
        .await;
    health_reporter
        .set_serving::<CampaignServiceServer<CampaignApi>>()
        .await;
    health_reporter
        .set_serving::<TrainingServiceServer<TrainingApi>>()
        .await;
    health_reporter
        .set_serving::<AuthServiceServer<AuthApi>>()
        .await;
    health_reporter
        .set_serving::<SmarticoWebhookServiceServer<SmarticoWebhookApi>>()
        .await;
    health_reporter
        .set_serving::<EventServiceServer<EventApi>>()
        .await;
    health_reporter
        .set_serving::<NotificationServiceServer<NotificationApi>>()
        .await;
    state.draining.report_through(
        health_reporter.clone(),
        vec![
            <ClusterServiceServer<ClusterApi> as NamedService>::NAME,
            <UserServiceServer<UserApi> as NamedService>::NAME,
            <CampaignServiceServer<CampaignApi> as NamedService>::NAME,
            <TrainingServiceServer<TrainingApi> as NamedService>::NAME,
            <AuthServiceServer<AuthApi> as NamedService>::NAME,
            <SmarticoWebhookServiceServer<SmarticoWebhookApi> as NamedService>::NAME,
            <EventServiceServer<EventApi> as NamedService>::NAME,
            <NotificationServiceServer<NotificationApi> as NamedService>::NAME,
        ],
        Arc::clone(&state.database_probe),
    );

    let reflection_error =
        |error: tonic_reflection::server::Error| Error::Internal(format!("reflection: {error}"));
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(reflection_error)?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(reflection_error)?;

    let mut builder = Routes::builder();
    builder
        .add_service(
            ClusterServiceServer::new(ClusterApi::new(
                state.store.clone(),
                state.read_cache.clone(),
            ))
            .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            UserServiceServer::new(UserApi::new(
                state.store.clone(),
                state.read_cache.clone(),
                state.campaigns.clone(),
                Arc::clone(&state.segment_feed),
            ))
            .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            CampaignServiceServer::new(CampaignApi::new(state.campaigns.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            TrainingServiceServer::new(TrainingApi::new(state.trainer.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            AuthServiceServer::new(AuthApi::new(
                state.store.clone(),
                Arc::clone(&state.token_keys),
                Arc::clone(&state.revoked_sessions),
            ))
            .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            SmarticoWebhookServiceServer::new(SmarticoWebhookApi::new(
                state.campaigns.clone(),
                state.webhook_auth.clone(),
            ))
            .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            EventServiceServer::new(EventApi::new(state.live_ingest.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            NotificationServiceServer::new(NotificationApi::new(SegmentWebhooks::new(
                state.store.clone(),
            )))
            .max_decoding_message_size(max_message_bytes),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    // One layer over every route: gRPC, grpc-web (outside it) and REST (which calls these
    // routes in process) get the same answers.
    let access = AccessLayer::new(
        Arc::clone(&state.token_keys),
        state.store.clone(),
        state.config.trusted_proxies.clone(),
        Arc::clone(&state.revoked_sessions),
    )
    .with_heavy_reads(Arc::clone(&state.heavy_reads))
    .with_max_body_bytes(max_message_bytes);
    Ok(RpcMetricsLayer::new(Arc::clone(&state.metrics))
        .layer(access.layer(builder.routes().into_axum_router())))
}

/// The whole application: the [`Gateway`] in front of the tonic routes (gRPC, grpc-web)
/// and the HTTP router (REST transcoding, `/health`).
pub async fn application(state: AppState) -> Result<Gateway> {
    let routes = grpc_routes(&state).await?;
    let rest_routes = Arc::new(
        RestRoutes::from_descriptor_set(FILE_DESCRIPTOR_SET)
            .map_err(|error| Error::Internal(format!("REST routes: {error}")))?,
    );
    let rest_config = RestConfig {
        max_body_bytes: state.config.max_body_bytes,
        ..RestConfig::default()
    };
    let tls = state.config.tls_files()?.is_some();
    let public_origins = if state.config.public_origins.is_empty() {
        default_public_origins(&state.config.listen, tls)
    } else {
        state.config.public_origins.clone()
    };
    let mut web_security =
        WebSecurity::new(&state.config.cors_origins).with_public_origins(&public_origins);
    // HSTS only where it means something: browsers ignore it over plain HTTP, and behind a
    // TLS-terminating proxy the proxy is the one to send it.
    if tls {
        web_security =
            web_security.with_strict_transport_security(state.config.hsts_max_age_seconds);
    }
    let rate_limit_state = RateLimitState {
        limiter: state.rate_limiter.clone(),
        rest_routes: Arc::clone(&rest_routes),
        token_keys: Arc::clone(&state.token_keys),
        trusted_proxies: state.config.trusted_proxies.clone(),
    };
    rate_limit_state
        .limiter
        .wait_for_redis(REDIS_STARTUP_WAIT)
        .await;
    let connections = Arc::clone(&state.connections);
    let metrics = Arc::clone(&state.metrics);
    // Webhook credentials are checked over the raw body, before transcoding.
    let webhook_check = from_fn_with_state(state.webhook_auth.clone(), verify_rest_webhook);
    let document = bytes::Bytes::from(openapi_document(&rest_routes).to_string());
    let api_docs = |request: axum::extract::Request| async move {
        ui_response(request.uri().path()).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
    };
    let http_router = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::exposition))
        .route(
            DOCUMENT_PATH,
            get(move || {
                let document = document.clone();
                async move { document_response(document) }
            }),
        )
        .route(UI_PATH, get(api_docs))
        .route("/api-docs/{file}", get(api_docs))
        .with_state(state)
        .merge(rest_router(rest_routes, routes.clone(), rest_config).layer(webhook_check))
        // Last: the dashboard takes only what no route above takes.
        .fallback(crate::dashboard::serve);
    Ok(Gateway::new(
        web_security,
        rate_limit_state,
        GrpcWebLayer::new().layer(routes),
        http_router,
        connections,
        metrics,
    ))
}
