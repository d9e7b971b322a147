//! Rate limits through the real router: a budget shared by two instances over one Redis,
//! the local fallback and `/health` while Redis is down, RESOURCE_EXHAUSTED on gRPC, one
//! budget per principal across client IPs, and a budget per route class shared by the REST
//! and gRPC forms of one RPC.
//!
//! The shared-budget test needs the Redis at `CRMBET_TEST_REDIS_URL` (default the local
//! one scripts/test.sh starts); the outage test starts its own `redis-server`.

use crate::support::private_redis::PrivateRedis;
use crate::support::private_redis_cluster::PrivateRedisCluster;
use crate::support::scratch_database::ScratchDatabase;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use crmbet_core::Config;
use crmbet_server::Gateway;
use crmbet_server::auth::{Role, TokenKeys};
use crmbet_server::{AppState, application};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use rand::Rng;
use tower::ServiceExt;

const CLIENT: ([u8; 4], u16) = ([10, 0, 0, 7], 40000);

struct Instance {
    router: Gateway,
    token_keys: Arc<TokenKeys>,
    _database: ScratchDatabase,
}

/// Budgets of a test instance.
struct Limits {
    per_client_ip: u32,
    per_principal: u32,
    /// `CRMBET_RATE_LIMIT_CLASSES`.
    classes: &'static str,
}

impl Limits {
    fn per_client_ip(limit: u32) -> Self {
        Self {
            per_client_ip: limit,
            per_principal: 1000,
            classes: "",
        }
    }

    fn classes(classes: &'static str) -> Self {
        Self {
            classes,
            ..Self::per_client_ip(1000)
        }
    }
}

struct Answer {
    status: StatusCode,
    /// Headers, with the trailers of a gRPC answer added.
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn number(&self, name: &str) -> u64 {
        self.header(name).parse().unwrap()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl Instance {
    async fn start(limits: Limits, redis_url: Option<String>, key_prefix: &str) -> Self {
        let database =
            ScratchDatabase::with_account("mia", Role::Analyst, "correct horse battery staple")
                .await;
        let config = Config {
            database_url: database.url.clone(),
            jwt_secret: Some("a test secret of at least thirty-two bytes".to_owned()),
            rate_limit_per_hour: limits.per_client_ip,
            rate_limit_per_principal_per_hour: limits.per_principal,
            rate_limit_classes: limits.classes.parse().unwrap(),
            redis_url,
            redis_key_prefix: key_prefix.to_owned(),
            ..Config::default()
        };
        let state = AppState::new(database.store.clone(), config).unwrap();
        Self {
            token_keys: Arc::clone(&state.token_keys),
            router: application(state).await.unwrap(),
            _database: database,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Answer {
        self.send_from(CLIENT, method, uri, headers, body).await
    }

    async fn send_from(
        &self,
        client: ([u8; 4], u16),
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            if *name == "content-type" && value.starts_with("application/grpc") {
                builder = builder.version(http::Version::HTTP_2);
            }
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(client)));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (mut parts, body) = response.into_parts();
        let collected = body.collect().await.unwrap();
        if let Some(trailers) = collected.trailers() {
            parts.headers.extend(trailers.clone());
        }
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: collected.to_bytes().to_vec(),
        }
    }

    /// A REST call that needs a token: answered 401, but counted like any other.
    async fn list_clusters(&self) -> Answer {
        self.send(Method::GET, "/api/v1/clusters", &[], Body::empty())
            .await
    }

    /// [`Self::list_clusters`] with `authorization`, from client IP `10.0.1.{last_octet}`.
    async fn list_clusters_as(&self, authorization: &str, last_octet: u8) -> Answer {
        self.send_from(
            ([10, 0, 1, last_octet], 40000),
            Method::GET,
            "/api/v1/clusters",
            &[("authorization", authorization)],
            Body::empty(),
        )
        .await
    }

    /// A REST login with a wrong password.
    async fn failed_login(&self) -> Answer {
        let body = r#"{"username": "mia", "password": "not the password"}"#;
        self.send(
            Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "application/json")],
            Body::from(body),
        )
        .await
    }

    async fn grpc(&self, path: &str, content_type: &str) -> Answer {
        let empty_message_frame = vec![0u8; 5];
        self.send(
            Method::POST,
            path,
            &[("content-type", content_type), ("te", "trailers")],
            Body::from(empty_message_frame),
        )
        .await
    }

    async fn health(&self) -> (StatusCode, serde_json::Value) {
        let answer = self.send(Method::GET, "/health", &[], Body::empty()).await;
        (answer.status, answer.json())
    }
}

fn unique_key_prefix() -> String {
    format!("crmbet-test:{:016x}:", rand::rng().random::<u64>())
}

fn assert_refused_over_http(answer: &Answer, limit: u64) {
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.number("ratelimit-limit"), limit);
    assert_eq!(answer.number("ratelimit-remaining"), 0);
    let retry_after = answer.number("retry-after");
    assert!(
        (1..=3600).contains(&retry_after),
        "retry-after {retry_after}"
    );
    assert_eq!(answer.number("ratelimit-reset"), retry_after);
    let error = answer.json();
    assert_eq!(error["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(error["details"], serde_json::json!([]));
    assert!(
        error["message"].as_str().unwrap().contains("rate limit"),
        "{error}"
    );
}

#[tokio::test]
async fn two_instances_on_one_redis_share_one_budget() {
    let redis_url = std::env::var("CRMBET_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = unique_key_prefix();
    let first = Instance::start(Limits::per_client_ip(20), Some(redis_url.clone()), &prefix).await;
    let second = Instance::start(Limits::per_client_ip(20), Some(redis_url.clone()), &prefix).await;
    let (_, health) = first.health().await;
    assert_eq!(
        health["cache"]["status"], "up",
        "Redis is required at {redis_url}; start it (scripts/test.sh does) or set \
         CRMBET_TEST_REDIS_URL: {health}"
    );

    for request in 1..=20u64 {
        let instance = if request % 2 == 0 { &second } else { &first };
        let answer = instance.list_clusters().await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "request {request}");
        assert_eq!(answer.number("ratelimit-limit"), 20);
        assert_eq!(
            answer.number("ratelimit-remaining"),
            20 - request,
            "both instances count into one budget"
        );
        assert!(answer.number("ratelimit-reset") <= 3600);
    }
    assert_refused_over_http(&first.list_clusters().await, 20);
    assert_refused_over_http(&second.list_clusters().await, 20);

    let (status, health) = second.health().await;
    assert_eq!(status, StatusCode::OK, "health checks are never limited");
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test]
async fn requests_are_counted_locally_and_health_degrades_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    let instance = Instance::start(
        Limits::per_client_ip(5),
        Some(redis.url.clone()),
        &unique_key_prefix(),
    )
    .await;
    let (_, health) = instance.health().await;
    assert_eq!(health["cache"]["status"], "up", "{health}");
    for request in 1..=3u64 {
        let answer = instance.list_clusters().await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.number("ratelimit-remaining"), 5 - request);
    }

    redis.stop();
    // Still served, now from the local count this instance kept all along.
    for request in 4..=5u64 {
        let started = Instant::now();
        let answer = instance.list_clusters().await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "request {request}");
        assert_eq!(answer.number("ratelimit-remaining"), 5 - request);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a dead redis must not stall requests: {:?}",
            started.elapsed()
        );
    }
    assert_refused_over_http(&instance.list_clusters().await, 5);

    let (status, health) = instance.health().await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a degraded cache still serves: {health}"
    );
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["cache"]["status"], "degraded", "{health}");
    assert!(
        health["cache"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("redis")),
        "{health}"
    );
    assert_eq!(health["database"]["status"], "up", "{health}");

    // Back on its port, Redis is found again without a restart of the server.
    let port = redis.url.rsplit(':').next().unwrap().parse().unwrap();
    let _restarted = PrivateRedis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, health) = instance.health().await;
        if health["status"] == "ok" && health["cache"]["status"] == "up" {
            break;
        }
        assert!(Instant::now() < deadline, "redis never recovered: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // This instance alone has counted 6 of 5 requests, so only the restarted (empty) Redis
    // lets this one through. Its count may include the outage's requests: fred replays
    // commands it had queued once it reconnects, which errs on the strict side.
    let answer = instance.list_clusters().await;
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "counted in redis again, not by the exhausted local limiter"
    );
    assert!(answer.number("ratelimit-remaining") < 5);
}

#[tokio::test]
async fn grpc_and_grpc_web_over_the_limit_get_resource_exhausted() {
    let instance = Instance::start(Limits::per_client_ip(2), None, "unused:").await;
    let list_clusters = "/crmbet.v1.ClusterService/ListClusters";
    for _ in 0..2 {
        let answer = instance.grpc(list_clusters, "application/grpc").await;
        assert_eq!(
            answer.header("grpc-status"),
            (tonic::Code::Unauthenticated as i32).to_string()
        );
    }
    // Health checks are exempt however often they come.
    for _ in 0..5 {
        let answer = instance
            .grpc("/grpc.health.v1.Health/Check", "application/grpc")
            .await;
        assert_eq!(answer.header("grpc-status"), "0");
        let (status, _) = instance.health().await;
        assert_eq!(status, StatusCode::OK);
    }

    let exhausted = (tonic::Code::ResourceExhausted as i32).to_string();
    let answer = instance.grpc(list_clusters, "application/grpc").await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "gRPC errors travel in grpc-status"
    );
    assert_eq!(answer.header("grpc-status"), exhausted);
    assert!(answer.header("grpc-message").contains("rate"));
    assert_eq!(answer.number("ratelimit-limit"), 2);
    assert_eq!(answer.number("ratelimit-remaining"), 0);
    assert!(answer.number("retry-after") >= 1);

    let answer = instance
        .grpc(list_clusters, "application/grpc-web+proto")
        .await;
    assert_eq!(answer.header("grpc-status"), exhausted);
    assert_eq!(answer.header("content-type"), "application/grpc-web+proto");
    assert_eq!(answer.number("ratelimit-remaining"), 0);

    assert_refused_over_http(&instance.list_clusters().await, 2);
}

#[tokio::test]
async fn a_principal_has_one_budget_across_client_ips() {
    let limits = Limits {
        per_client_ip: 100,
        per_principal: 3,
        classes: "",
    };
    let instance = Instance::start(limits, None, "unused:").await;
    let token = instance
        .token_keys
        .issue("mia", Role::Analyst)
        .unwrap()
        .token;
    let authorization = format!("Bearer {token}");
    for request in 1..=3u8 {
        let answer = instance.list_clusters_as(&authorization, request).await;
        assert_ne!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "request {request}"
        );
        assert_eq!(
            answer.number("ratelimit-limit"),
            3,
            "the tighter budget is reported"
        );
        assert_eq!(answer.number("ratelimit-remaining"), u64::from(3 - request));
    }
    assert_refused_over_http(&instance.list_clusters_as(&authorization, 4).await, 3);

    // A forged token naming the same subject is not that principal: only the IP counts.
    let forged = format!("Bearer {}x", token);
    let answer = instance.list_clusters_as(&forged, 5).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.number("ratelimit-limit"), 100);
}

fn test_redis_url() -> String {
    std::env::var("CRMBET_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[tokio::test]
async fn exhausting_the_auth_class_leaves_reads_of_the_same_ip_alone() {
    let instance = Instance::start(Limits::classes("auth=3"), None, "unused:").await;
    for attempt in 1..=3u64 {
        let answer = instance.failed_login().await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "login {attempt}");
        assert_eq!(answer.number("ratelimit-limit"), 3);
        assert_eq!(answer.number("ratelimit-remaining"), 3 - attempt);
    }
    let refused = instance.failed_login().await;
    assert_refused_over_http(&refused, 3);
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("for auth calls"), "{message}");

    let read = instance.list_clusters().await;
    assert_eq!(
        read.status,
        StatusCode::UNAUTHORIZED,
        "reads keep their budget"
    );
    assert_eq!(read.number("ratelimit-limit"), 1000);
    assert_eq!(read.number("ratelimit-remaining"), 999);

    let login = "/crmbet.v1.AuthService/Login";
    let answer = instance.grpc(login, "application/grpc").await;
    assert_eq!(
        answer.header("grpc-status"),
        (tonic::Code::ResourceExhausted as i32).to_string(),
        "gRPC logins spend the same auth budget"
    );
    assert!(answer.header("grpc-message").contains("auth"));
}

#[tokio::test]
async fn rest_and_grpc_calls_of_one_rpc_share_its_class_budget_in_redis() {
    check_class_budget_shared_in_redis(&test_redis_url()).await;
}

#[tokio::test]
async fn class_budgets_are_shared_on_a_redis_cluster() {
    // Each budget's key carries its own hash tag, so a request's two budgets may sit on two
    // nodes: the limiter must split its script call by slot instead of failing CROSSSLOT.
    let cluster = PrivateRedisCluster::start();
    check_class_budget_shared_in_redis(&cluster.url).await;
}

/// REST and gRPC calls of one RPC count against one class budget kept in the Redis at
/// `redis_url` (a server or a cluster), under the documented keys.
async fn check_class_budget_shared_in_redis(redis_url: &str) {
    let redis_url = redis_url.to_owned();
    let prefix = unique_key_prefix();
    let instance = Instance::start(
        Limits::classes("segment=4/100"),
        Some(redis_url.clone()),
        &prefix,
    )
    .await;
    let (_, health) = instance.health().await;
    assert_eq!(
        health["cache"]["status"], "up",
        "Redis is required at {redis_url}: {health}"
    );
    let token = instance
        .token_keys
        .issue("mia", Role::Analyst)
        .unwrap()
        .token;
    let authorization = format!("Bearer {token}");
    for request in 1..=4u64 {
        let answer = if request % 2 == 0 {
            instance
                .send(
                    Method::GET,
                    "/api/v1/user/p1/segment",
                    &[("authorization", &authorization)],
                    Body::empty(),
                )
                .await
        } else {
            instance
                .send(
                    Method::POST,
                    "/crmbet.v1.UserService/GetUserSegment",
                    &[
                        ("content-type", "application/grpc"),
                        ("te", "trailers"),
                        ("authorization", &authorization),
                    ],
                    Body::from(vec![0u8; 5]),
                )
                .await
        };
        assert_ne!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "request {request}"
        );
        assert_eq!(answer.number("ratelimit-limit"), 4, "request {request}");
        assert_eq!(answer.number("ratelimit-remaining"), 4 - request);
    }
    let refused = instance
        .send(
            Method::GET,
            "/api/v1/user/p2/segment",
            &[("authorization", &authorization)],
            Body::empty(),
        )
        .await;
    assert_refused_over_http(&refused, 4);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("for segment calls"),
        "{:?}",
        refused.json()
    );
    let read = instance.list_clusters_as(&authorization, 7).await;
    assert_eq!(
        read.number("ratelimit-limit"),
        1000,
        "other classes keep their budgets"
    );

    // Both budgets were counted, each under its class, its key's hash tag the budget.
    let redis = fred::prelude::Client::new(
        fred::prelude::Config::from_url(&redis_url).unwrap(),
        None,
        None,
        None,
    );
    fred::prelude::ClientLike::init(&redis).await.unwrap();
    let mut counts = Vec::new();
    for budget in ["segment:ip:10.0.0.7", "segment:principal:mia"] {
        let count: Option<String> = fred::prelude::LuaInterface::eval(
            &redis,
            "return redis.call('GET', KEYS[1])",
            vec![format!("{prefix}ratelimit:{{{budget}}}")],
            (),
        )
        .await
        .unwrap();
        counts.push(count);
    }
    assert_eq!(counts, [Some("5".to_owned()), Some("5".to_owned())]);
}
