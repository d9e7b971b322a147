//! ClusterService: clusters of the active model, their members and analytics.

use crmbet_core::NUMERIC_FEATURES;
use crmbet_core::{ClusterId, Error, ModelId, PageSize, PageToken, Result};
use crmbet_proto::v1::cluster_service_server::ClusterService;
use crmbet_proto::v1::{
    Cluster, ClusterMember, CountryCount, FeatureDeviation, GameMix, GetClusterAnalyticsRequest,
    GetClusterAnalyticsResponse, GetClusterRequest, GetClusterResponse, ListClusterUsersRequest,
    ListClusterUsersResponse, ListClustersRequest, ListClustersResponse, ScoreHistogram,
};
use crmbet_store::entity::clusters;
use crmbet_store::{ClusterAnalytics, GroupCount, Store};
use tonic::{Request, Response, Status};

use crate::convert::{campaign_type, money, timestamp};
use crate::read_cache::ReadCache;
use crate::status::status_from_error;

/// Serves ClusterService from the store, clusters through the read cache.
#[derive(Debug, Clone)]
pub struct ClusterApi {
    store: Store,
    cache: ReadCache,
}

impl ClusterApi {
    /// A service reading from `store`, clusters through `cache`.
    pub fn new(store: Store, cache: ReadCache) -> Self {
        Self { store, cache }
    }

    /// The model that serves now, and the cache key of `what` under it.
    async fn cache_key(&self, what: &str) -> Result<(Option<ModelId>, String), Status> {
        let active_model = self
            .cache
            .active_model(&self.store)
            .await
            .map_err(status_from_error)?;
        Ok((active_model, self.cache.key(active_model, what)))
    }

    /// [`Self::list_clusters`] through the cache. Every page is cached: the key holds all
    /// the parameters (model, page size, page token), which are few and small.
    async fn cached_list_clusters(
        &self,
        request: ListClustersRequest,
    ) -> Result<ListClustersResponse, Status> {
        let what = format!(
            "clusters:model={}:size={}:after={}",
            request.model_id, request.page_size, request.page_token
        );
        let (active_model, key) = self.cache_key(&what).await?;
        self.cache
            .read(&key, || async {
                self.list_clusters(request, active_model)
                    .await
                    .map_err(status_from_error)
            })
            .await
    }

    /// [`Self::get_cluster`] through the cache.
    async fn cached_get_cluster(
        &self,
        request: GetClusterRequest,
    ) -> Result<GetClusterResponse, Status> {
        let (_, key) = self
            .cache_key(&format!("cluster:{}", request.cluster_id))
            .await?;
        self.cache
            .read(&key, || async {
                self.get_cluster(request).await.map_err(status_from_error)
            })
            .await
    }

    /// The clusters of the requested model, or of `active_model` (the one the cache key
    /// names) when none is requested.
    async fn list_clusters(
        &self,
        request: ListClustersRequest,
        active_model: Option<ModelId>,
    ) -> Result<ListClustersResponse> {
        let page_size = PageSize::parse(request.page_size)?;
        let model_id = match request.model_id {
            0 => match active_model {
                Some(active) => active,
                None => return Ok(ListClustersResponse::default()),
            },
            requested => {
                let model_id = ModelId::parse("model_id", requested)?;
                self.store.model(model_id).await?;
                model_id
            }
        };
        let scope = format!("clusters:model={model_id}");
        let after = PageToken::decode(&request.page_token, &scope)?
            .map(|key| {
                key.parse::<i64>()
                    .map_err(|_| Error::invalid_argument("page_token", "is not valid"))
            })
            .transpose()?;
        let limit = u64::from(page_size.get());
        let rows = self.store.list_clusters(model_id, after, limit + 1).await?;
        let (rows, next_page_token) = split_page(rows, limit, |row| {
            PageToken::new(scope.clone(), row.id.to_string()).encode()
        });
        Ok(ListClustersResponse {
            clusters: rows.iter().map(cluster_message).collect(),
            next_page_token,
            model_id: model_id.0,
        })
    }

    async fn get_cluster(&self, request: GetClusterRequest) -> Result<GetClusterResponse> {
        let cluster_id = ClusterId::parse("cluster_id", request.cluster_id)?;
        let cluster = self.store.cluster(cluster_id).await?;
        Ok(GetClusterResponse {
            cluster: Some(cluster_message(&cluster)),
        })
    }

    async fn list_cluster_users(
        &self,
        request: ListClusterUsersRequest,
    ) -> Result<ListClusterUsersResponse> {
        let cluster_id = ClusterId::parse("cluster_id", request.cluster_id)?;
        let page_size = PageSize::parse(request.page_size)?;
        let scope = format!("cluster_users:{cluster_id}");
        let after = PageToken::decode(&request.page_token, &scope)?;
        self.store.cluster(cluster_id).await?;
        let limit = u64::from(page_size.get());
        let rows = self
            .store
            .list_cluster_members(cluster_id, after.as_deref(), limit + 1)
            .await?;
        let (rows, next_page_token) = split_page(rows, limit, |row| {
            PageToken::new(scope.clone(), row.user_id.clone()).encode()
        });
        let users = rows
            .into_iter()
            .map(|row| ClusterMember {
                user_id: row.user_id,
                confidence: row.confidence,
                outlier: row.outlier,
                monetary: row.monetary.and_then(money),
                last_active_at: row.last_active_at.map(timestamp),
                country: row.country.unwrap_or_default(),
            })
            .collect();
        Ok(ListClusterUsersResponse {
            users,
            next_page_token,
        })
    }

    async fn get_cluster_analytics(
        &self,
        request: GetClusterAnalyticsRequest,
    ) -> Result<GetClusterAnalyticsResponse> {
        let cluster_id = ClusterId::parse("cluster_id", request.cluster_id)?;
        let analytics = self.store.cluster_analytics(cluster_id).await?;
        Ok(analytics_message(&analytics))
    }
}

/// Keeps the first `limit` rows; when there were more, the token continues after the last
/// kept row.
pub(crate) fn split_page<T>(
    mut rows: Vec<T>,
    limit: u64,
    token_after: impl Fn(&T) -> String,
) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return (rows, String::new());
    }
    rows.truncate(limit);
    let token = rows.last().map(token_after).unwrap_or_default();
    (rows, token)
}

fn cluster_message(row: &clusters::Model) -> Cluster {
    let stored = serde_json::from_value::<Vec<StoredDeviation>>(row.profile.clone())
        .unwrap_or_else(|error| {
            // A profile this build cannot read must not hide the cluster itself.
            tracing::warn!(cluster_id = row.id, %error, "unreadable cluster profile");
            Vec::new()
        });
    let profile: Vec<FeatureDeviation> = stored
        .into_iter()
        .map(|deviation| FeatureDeviation {
            feature: deviation.feature,
            group_mean: deviation.group_mean,
            population_mean: deviation.population_mean,
            z_score: deviation.z_score,
        })
        .collect();
    Cluster {
        cluster_id: row.id,
        model_id: row.model_id,
        label: row.label,
        name: row.name.clone(),
        description: row.description.clone(),
        suggested_campaign: campaign_type(&row.suggested_campaign).into(),
        size: row.size,
        share: row.share,
        profile,
        created_at: Some(timestamp(row.created_at)),
    }
}

#[derive(serde::Deserialize)]
struct StoredDeviation {
    feature: String,
    #[serde(alias = "mean")]
    group_mean: f64,
    population_mean: f64,
    z_score: f64,
}

fn analytics_message(analytics: &ClusterAnalytics) -> GetClusterAnalyticsResponse {
    let mean = |feature: &str| {
        analytics
            .cluster_features
            .get(feature)
            .map_or(0.0, |statistics| statistics.mean)
    };
    let features = NUMERIC_FEATURES
        .iter()
        .map(|feature| {
            let group = analytics
                .cluster_features
                .get(feature)
                .copied()
                .unwrap_or_default();
            let population = analytics
                .population_features
                .get(feature)
                .copied()
                .unwrap_or_default();
            let z_score = if population.standard_deviation > 0.0 {
                (group.mean - population.mean) / population.standard_deviation
            } else {
                0.0
            };
            FeatureDeviation {
                feature: (*feature).to_owned(),
                group_mean: group.mean,
                population_mean: population.mean,
                z_score,
            }
        })
        .collect();
    GetClusterAnalyticsResponse {
        cluster: Some(cluster_message(&analytics.cluster)),
        total_monetary: money(analytics.total_monetary),
        average_monetary: money(mean("monetary")),
        total_net_revenue: money(analytics.total_net_revenue),
        average_ticket: money(mean("avg_ticket")),
        average_recency_days: mean("recency_days"),
        average_frequency: mean("frequency"),
        average_night_share: mean("night_share"),
        average_weekend_share: mean("weekend_share"),
        game_mix: Some(GameMix {
            crash: mean("share_crash"),
            slots: mean("share_slots"),
            live_casino: mean("share_live_casino"),
            sports: mean("share_sports"),
            table: mean("share_table"),
        }),
        top_countries: analytics
            .top_countries
            .iter()
            .map(|group| CountryCount {
                country: group.value.clone(),
                players: group.players,
            })
            .collect(),
        recency_scores: Some(histogram(&analytics.recency_scores)),
        frequency_scores: Some(histogram(&analytics.frequency_scores)),
        monetary_scores: Some(histogram(&analytics.monetary_scores)),
        features,
    }
}

/// Players per score 1..=5, index 0 for score 1.
fn histogram(groups: &[GroupCount]) -> ScoreHistogram {
    let mut players = vec![0; 5];
    for group in groups {
        if let Ok(score @ 1..=5) = group.value.parse::<usize>() {
            players[score - 1] = group.players;
        }
    }
    ScoreHistogram { players }
}

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    async fn list_clusters(
        &self,
        request: Request<ListClustersRequest>,
    ) -> Result<Response<ListClustersResponse>, Status> {
        self.cached_list_clusters(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_cluster(
        &self,
        request: Request<GetClusterRequest>,
    ) -> Result<Response<GetClusterResponse>, Status> {
        self.cached_get_cluster(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_cluster_users(
        &self,
        request: Request<ListClusterUsersRequest>,
    ) -> Result<Response<ListClusterUsersResponse>, Status> {
        self.list_cluster_users(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    async fn get_cluster_analytics(
        &self,
        request: Request<GetClusterAnalyticsRequest>,
    ) -> Result<Response<GetClusterAnalyticsResponse>, Status> {
        self.get_cluster_analytics(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }
}
