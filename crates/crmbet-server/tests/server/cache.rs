//! The read cache through the real router: a second read served from Redis (even by
//! another instance), activation of a model moving reads to fresh answers (at once through
//! the instance, within `ACTIVE_MODEL_MAX_AGE` through another), one database load for
//! concurrent misses, and reads that still answer while Redis is down.
//!
//! The shared tests use the Redis at `CRMBET_TEST_REDIS_URL` (default the local one
//! scripts/test.sh starts) with a key prefix of their own; the outage test starts its own
//! `redis-server`.

use crate::support::grpc_call::grpc_call;
use crate::support::private_redis::PrivateRedis;
use crate::support::scratch_database::ScratchDatabase;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use crmbet_core::{Config, ModelId};
use crmbet_proto::v1::{
    GetClusterRequest, GetClusterResponse, GetUserSegmentRequest, GetUserSegmentResponse,
    ListClustersRequest, ListClustersResponse,
};
use crmbet_server::Gateway;
use crmbet_server::auth::Role;
use crmbet_server::read_cache::{self, ReadCache};
use crmbet_server::{AppState, application};
use crmbet_store::{NewCluster, NewModel, NewSegment, Store};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use rand::Rng;
use sea_orm::ConnectionTrait;
use tower::ServiceExt;

const PEER: ([u8; 4], u16) = ([10, 0, 0, 9], 40000);
const PLAYER: &str = "sample-11-000000";
/// What [`Database::rename_clusters`] puts in front of every cluster name.
const RENAMED: &str = "Renamed In The Database";

/// One server over a database it may share with another instance.
struct Instance {
    router: Gateway,
    read_cache: ReadCache,
    /// The server's own store handle: activations through it are seen at once.
    store: Store,
    token: String,
}

impl Instance {
    /// An instance on the shared test Redis, with keys of its own.
    async fn on_shared_redis(database_url: &str) -> Self {
        Self::start(database_url, Some(shared_redis_url()), &unique_key_prefix()).await
    }

    async fn start(database_url: &str, redis_url: Option<String>, key_prefix: &str) -> Self {
        let store = Store::connect(database_url).await.unwrap();
        let config = Config {
            database_url: database_url.to_owned(),
            jwt_secret: Some("a test secret of at least thirty-two bytes".to_owned()),
            redis_url,
            redis_key_prefix: key_prefix.to_owned(),
            ..Config::default()
        };
        let state = AppState::new(store.clone(), config).unwrap();
        let token = state.token_keys.issue("mia", Role::Analyst).unwrap().token;
        Self {
            store,
            read_cache: state.read_cache.clone(),
            router: application(state).await.unwrap(),
            token,
        }
    }

    async fn grpc<Response: Message + Default>(
        &self,
        path: &str,
        message: &impl Message,
    ) -> Result<Response, tonic::Status> {
        let headers = [("authorization", format!("Bearer {}", self.token))];
        let (status, body) = grpc_call(
            &self.router,
            path,
            &message.encode_to_vec(),
            &headers,
            SocketAddr::from(PEER),
        )
        .await;
        if status.code() != tonic::Code::Ok {
            return Err(status);
        }
        Ok(Response::decode(body).unwrap())
    }

    async fn segment(&self) -> GetUserSegmentResponse {
        let request = GetUserSegmentRequest {
            user_id: PLAYER.to_owned(),
        };
        self.grpc("/crmbet.v1.UserService/GetUserSegment", &request)
            .await
            .unwrap()
    }

    async fn clusters(&self) -> ListClustersResponse {
        self.grpc(
            "/crmbet.v1.ClusterService/ListClusters",
            &ListClustersRequest::default(),
        )
        .await
        .unwrap()
    }

    async fn cluster(&self, cluster_id: i64) -> Result<GetClusterResponse, tonic::Status> {
        self.grpc(
            "/crmbet.v1.ClusterService/GetCluster",
            &GetClusterRequest { cluster_id },
        )
        .await
    }

    async fn health(&self) -> serde_json::Value {
        let mut request = Request::builder()
            .uri("/health")
            .body(Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(PEER)));
        let response = self.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// A SQLite database with the sample players, their model active, and an account.
struct Database {
    url: String,
    store: Store,
    sample_model: ModelId,
    _scratch: ScratchDatabase,
}

impl Database {
    async fn create() -> Self {
        let scratch =
            ScratchDatabase::with_account("mia", Role::Analyst, "correct horse battery staple")
                .await;
        let summary = scratch.store.load_sample(40, 11).await.unwrap();
        Self {
            url: scratch.url.clone(),
            store: scratch.store.clone(),
            sample_model: ModelId(summary.model_id),
            _scratch: scratch,
        }
    }

    /// Renames every cluster behind the server's back (names are unique per model).
    async fn rename_clusters(&self) {
        // Another connection, as another process would write.
        sea_orm::Database::connect(&self.url)
            .await
            .unwrap()
            .execute_unprepared(&format!(
                "UPDATE clusters SET name = '{RENAMED} ' || CAST(id AS TEXT)"
            ))
            .await
            .unwrap();
    }

    /// Saves a second model that puts [`PLAYER`] in "Fresh Cluster".
    async fn save_fresh_model(&self, activate: bool) -> ModelId {
        let etl_run_id = self
            .store
            .latest_etl_run_with_features()
            .await
            .unwrap()
            .unwrap();
        let model = NewModel {
            algorithm: "kmeans".to_owned(),
            k: 1,
            parameters: serde_json::json!({ "seed": 1 }),
            transform: serde_json::json!({}),
            centroids: serde_json::json!([[0.0]]),
            metrics: serde_json::json!({ "silhouette": 0.5, "cluster_sizes": [1] }),
            feature_names: serde_json::json!(["share_slots"]),
            etl_run_id,
            selection_reason: "test".to_owned(),
        };
        let cluster = NewCluster {
            label: 0,
            name: "Fresh Cluster".to_owned(),
            description: "a test cluster".to_owned(),
            suggested_campaign: "cashback".to_owned(),
            size: 1,
            share: 1.0,
            profile: serde_json::json!([]),
            centroid: serde_json::json!([0.0]),
        };
        let segment = NewSegment {
            user_id: PLAYER.to_owned(),
            label: 0,
            confidence: 0.5,
            outlier: false,
        };
        self.store
            .save_model(model, vec![cluster], vec![segment], activate, None)
            .await
            .unwrap()
            .model_id
    }
}

fn shared_redis_url() -> String {
    std::env::var("CRMBET_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn unique_key_prefix() -> String {
    format!("crmbet-test:{:016x}:", rand::rng().random::<u64>())
}

#[tokio::test]
async fn second_read_is_served_from_redis_even_by_another_instance() {
    let database = Database::create().await;
    let prefix = unique_key_prefix();
    let first = Instance::start(&database.url, Some(shared_redis_url()), &prefix).await;

    let original = first.segment().await;
    assert_eq!(original.model_id, database.sample_model.0);
    assert!(!original.cluster_name.starts_with(RENAMED));
    let clusters = first.clusters().await;
    let cluster_id = clusters.clusters[0].cluster_id;
    let cluster = first.cluster(cluster_id).await.unwrap();
    assert_eq!(first.read_cache.loads(), 3);

    database.rename_clusters().await;
    assert_eq!(first.segment().await, original, "served from the cache");
    assert_eq!(first.clusters().await, clusters);
    assert_eq!(first.cluster(cluster_id).await.unwrap(), cluster);
    assert_eq!(first.read_cache.loads(), 3, "no read went to the database");

    // Another instance over the same Redis has never loaded anything, yet answers the
    // cached (now stale) value: it came from Redis, not from a cache in process.
    let second = Instance::start(&database.url, Some(shared_redis_url()), &prefix).await;
    assert_eq!(second.segment().await, original);
    assert_eq!(second.cluster(cluster_id).await.unwrap(), cluster);
    assert_eq!(second.read_cache.loads(), 0);

    // Another prefix shares nothing and sees the database.
    let apart = Instance::on_shared_redis(&database.url).await;
    assert!(apart.segment().await.cluster_name.starts_with(RENAMED));
    assert_eq!(apart.read_cache.loads(), 1);
}

#[tokio::test]
async fn activating_a_model_moves_reads_to_it_at_once() {
    let database = Database::create().await;
    let instance = Instance::on_shared_redis(&database.url).await;
    let fresh_model = database.save_fresh_model(false).await;

    let before = instance.segment().await;
    assert_eq!(before.model_id, database.sample_model.0);
    let listed_before = instance.clusters().await;
    assert_eq!(listed_before.model_id, database.sample_model.0);

    // Through the instance's own store (the ActivateModel RPC, a training run it started).
    instance
        .store
        .activate_model(fresh_model, None)
        .await
        .unwrap();
    let after = instance.segment().await;
    assert_eq!(after.model_id, fresh_model.0, "{after:?}");
    assert_eq!(after.cluster_name, "Fresh Cluster");
    let listed_after = instance.clusters().await;
    assert_eq!(listed_after.model_id, fresh_model.0);
    assert_eq!(listed_after.clusters.len(), 1);
}

#[tokio::test]
async fn an_activation_elsewhere_reaches_reads_within_the_active_model_max_age() {
    let database = Database::create().await;
    let instance = Instance::on_shared_redis(&database.url).await;
    let fresh_model = database.save_fresh_model(false).await;
    assert_eq!(instance.segment().await.model_id, database.sample_model.0);

    // Through another handle: another instance, or `crmbet train` on the command line.
    database
        .store
        .activate_model(fresh_model, None)
        .await
        .unwrap();
    let activated = Instant::now();
    loop {
        let answer = instance.segment().await;
        if answer.model_id == fresh_model.0 {
            assert_eq!(answer.cluster_name, "Fresh Cluster");
            break;
        }
        assert!(
            activated.elapsed() < read_cache::ACTIVE_MODEL_MAX_AGE + Duration::from_millis(500),
            "still the old model {:?} after the activation",
            activated.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(instance.clusters().await.model_id, fresh_model.0);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let database = Database::create().await;
    let instance = Instance::on_shared_redis(&database.url).await;
    for _ in 0..2 {
        let missing = instance.cluster(999_999).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    }
    assert_eq!(instance.read_cache.loads(), 2);
}

#[tokio::test]
async fn concurrent_misses_for_one_key_load_once() {
    let database = Database::create().await;
    let instance = Instance::on_shared_redis(&database.url).await;
    let reads = (0..20).map(|_| instance.segment());
    let answers = futures::future::join_all(reads).await;
    assert!(answers.iter().all(|answer| *answer == answers[0]));
    assert_eq!(instance.read_cache.loads(), 1);
}

#[tokio::test]
async fn without_redis_reads_are_cached_in_process() {
    let database = Database::create().await;
    let instance = Instance::start(&database.url, None, "unused:").await;
    let original = instance.segment().await;
    database.rename_clusters().await;
    assert_eq!(instance.segment().await, original);
    assert_eq!(instance.read_cache.loads(), 1);
    assert_eq!(instance.health().await["cache"]["status"], "in-process");
}

#[tokio::test]
async fn reads_answer_from_the_database_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    let database = Database::create().await;
    let instance = Instance::start(&database.url, Some(redis.url.clone()), "crmbet-test:").await;
    let original = instance.segment().await;
    assert_eq!(instance.segment().await, original);
    assert_eq!(instance.read_cache.loads(), 1);

    redis.stop();
    database.rename_clusters().await;
    // The answer read before the outage may still come from the instance's near copy
    // (NEAR_TTL); an answer not read before must come from the database.
    let started = Instant::now();
    let cluster_id = original.cluster_id;
    let during_outage = instance.cluster(cluster_id).await.unwrap();
    let during_outage = during_outage.cluster.unwrap();
    assert!(
        during_outage.name.starts_with(RENAMED),
        "read from the database: {during_outage:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a failing redis costs at most its timeout: {:?}",
        started.elapsed()
    );
    let again = instance.cluster(cluster_id).await.unwrap().cluster.unwrap();
    assert!(again.name.starts_with(RENAMED));
    assert_eq!(
        instance.read_cache.loads(),
        3,
        "nothing is cached meanwhile"
    );
    let health = instance.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["cache"]["status"], "degraded", "{health}");
}
