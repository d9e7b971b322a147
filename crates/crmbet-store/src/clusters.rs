//! Reads of models, clusters and their members.

use std::collections::HashMap;

use crmbet_core::{ClusterId, Error, ModelId, Result};
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, JoinType, Order, Query, SelectStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};

use sea_orm::prelude::DateTimeUtc;

use crate::database::Store;
use crate::entity::{active_model, clusters, models, player_features, player_segments, players};
use crate::failure::database_error;
use crmbet_core::NUMERIC_FEATURES;

/// A player's membership of a cluster, with what a marketer scans first.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct ClusterMember {
    pub user_id: String,
    pub confidence: f64,
    pub outlier: bool,
    pub country: Option<String>,
    pub last_active_at: Option<DateTimeUtc>,
    pub monetary: Option<f64>,
}

/// Mean and standard deviation of one feature over a group of players.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeatureStatistics {
    pub mean: f64,
    pub standard_deviation: f64,
}

/// Players per value of a column (country, RFM score).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCount {
    pub value: String,
    pub players: i64,
}

/// Aggregates over a cluster's players and over every player of the same model.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterAnalytics {
    pub cluster: clusters::Model,
    /// Members with features in their latest ETL run.
    pub players_with_features: i64,
    pub cluster_features: HashMap<&'static str, FeatureStatistics>,
    pub population_features: HashMap<&'static str, FeatureStatistics>,
    pub total_monetary: f64,
    pub total_net_revenue: f64,
    /// Most common first, at most 10.
    pub top_countries: Vec<GroupCount>,
    pub recency_scores: Vec<GroupCount>,
    pub frequency_scores: Vec<GroupCount>,
    pub monetary_scores: Vec<GroupCount>,
}

impl Store {
    /// The model that serves, if one was ever activated.
    pub async fn active_model_id(&self) -> Result<Option<ModelId>> {
        let active = active_model::Entity::find_by_id(active_model::SEGMENTATION_SLOT.to_owned())
            .one(self.connection())
            .await
            .map_err(database_error)?;
        Ok(active.map(|row| ModelId(row.model_id)))
    }

    /// A model by id.
    pub async fn model(&self, model_id: ModelId) -> Result<models::Model> {
        models::Entity::find_by_id(model_id.0)
            .one(self.connection())
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::not_found("model", model_id))
    }

    /// Clusters of `model_id` with ids above `after_cluster_id`, by id.
    pub async fn list_clusters(
        &self,
        model_id: ModelId,
        after_cluster_id: Option<i64>,
        limit: u64,
    ) -> Result<Vec<clusters::Model>> {
        let mut query = clusters::Entity::find()
            .filter(clusters::Column::ModelId.eq(model_id.0))
            .order_by_asc(clusters::Column::Id)
            .limit(limit);
        if let Some(after) = after_cluster_id {
            query = query.filter(clusters::Column::Id.gt(after));
        }
        query.all(self.connection()).await.map_err(database_error)
    }

    /// One cluster, of any model.
    pub async fn cluster(&self, cluster_id: ClusterId) -> Result<clusters::Model> {
        clusters::Entity::find_by_id(cluster_id.0)
            .one(self.connection())
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::not_found("cluster", cluster_id))
    }

    /// Members of a cluster with user ids after `after_user_id`, by user id.
    pub async fn list_cluster_members(
        &self,
        cluster_id: ClusterId,
        after_user_id: Option<&str>,
        limit: u64,
    ) -> Result<Vec<ClusterMember>> {
        let mut query = Query::select();
        query
            .column((player_segments::Entity, player_segments::Column::UserId))
            .column((player_segments::Entity, player_segments::Column::Confidence))
            .column((player_segments::Entity, player_segments::Column::Outlier))
            .column((players::Entity, players::Column::Country))
            .column((players::Entity, players::Column::LastActiveAt))
            .column((player_features::Entity, player_features::Column::Monetary))
            .from(player_segments::Entity)
            .and_where(
                Expr::col((player_segments::Entity, player_segments::Column::ClusterId))
                    .eq(cluster_id.0),
            )
            .order_by(
                (player_segments::Entity, player_segments::Column::UserId),
                Order::Asc,
            )
            .limit(limit);
        join_latest_features(&mut query);
        if let Some(after) = after_user_id {
            query.and_where(
                Expr::col((player_segments::Entity, player_segments::Column::UserId)).gt(after),
            );
        }
        let statement = self.backend().build(&query);
        ClusterMember::find_by_statement(statement)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// Aggregates over the cluster's players, set against every player of its model.
    pub async fn cluster_analytics(&self, cluster_id: ClusterId) -> Result<ClusterAnalytics> {
        let cluster = self.cluster(cluster_id).await?;
        let member_filter =
            Expr::col((player_segments::Entity, player_segments::Column::ClusterId)).eq(cluster.id);
        let model_filter = Expr::col((player_segments::Entity, player_segments::Column::ModelId))
            .eq(cluster.model_id);

        let (players_with_features, cluster_features, sums) =
            self.feature_statistics(member_filter.clone()).await?;
        let (_, population_features, _) = self.feature_statistics(model_filter).await?;
        let top_countries = self
            .count_members_by(
                member_filter.clone(),
                (players::Entity, players::Column::Country),
                10,
            )
            .await?;
        let recency_scores = self
            .count_members_by(
                member_filter.clone(),
                (player_features::Entity, player_features::Column::RScore),
                5,
            )
            .await?;
        let frequency_scores = self
            .count_members_by(
                member_filter.clone(),
                (player_features::Entity, player_features::Column::FScore),
                5,
            )
            .await?;
        let monetary_scores = self
            .count_members_by(
                member_filter,
                (player_features::Entity, player_features::Column::MScore),
                5,
            )
            .await?;
        Ok(ClusterAnalytics {
            cluster,
            players_with_features,
            cluster_features,
            population_features,
            total_monetary: sums.0,
            total_net_revenue: sums.1,
            top_countries,
            recency_scores,
            frequency_scores,
            monetary_scores,
        })
    }

    /// Count, per-feature mean and deviation, and the sums of monetary and ngr, over the
    /// segmented players matching `filter`, from each player's latest features.
    async fn feature_statistics(
        &self,
        filter: Expr,
    ) -> Result<(i64, HashMap<&'static str, FeatureStatistics>, (f64, f64))> {
        let mut query = Query::select();
        query
            .expr_as(
                Expr::cust("COUNT(player_features.user_id)"),
                Alias::new("players"),
            )
            .expr_as(Expr::cust(sum_of("monetary")), Alias::new("sum_monetary"))
            .expr_as(Expr::cust(sum_of("ngr")), Alias::new("sum_ngr"))
            .from(player_segments::Entity)
            .and_where(filter);
        for feature in NUMERIC_FEATURES {
            query
                .expr_as(
                    Expr::cust(average_of(feature)),
                    Alias::new(format!("mean_{feature}")),
                )
                .expr_as(
                    Expr::cust(average_of_square(feature)),
                    Alias::new(format!("square_{feature}")),
                );
        }
        join_latest_features(&mut query);
        let row = self
            .connection()
            .query_one(&query)
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::Internal("aggregate query returned no row".to_owned()))?;
        let count: i64 = row.try_get("", "players").map_err(database_error)?;
        let optional = |column: &str| -> Result<f64> {
            let value: Option<f64> = row.try_get("", column).map_err(database_error)?;
            Ok(value.unwrap_or(0.0))
        };
        let mut statistics = HashMap::with_capacity(NUMERIC_FEATURES.len());
        for feature in NUMERIC_FEATURES {
            let mean = optional(&format!("mean_{feature}"))?;
            let mean_of_squares = optional(&format!("square_{feature}"))?;
            let variance = (mean_of_squares - mean * mean).max(0.0);
            statistics.insert(
                *feature,
                FeatureStatistics {
                    mean,
                    standard_deviation: variance.sqrt(),
                },
            );
        }
        let sums = (optional("sum_monetary")?, optional("sum_ngr")?);
        Ok((count, statistics, sums))
    }

    /// Players per value of `column` among the segmented players matching `filter`, most
    /// common first.
    async fn count_members_by<C>(
        &self,
        filter: Expr,
        column: C,
        limit: u64,
    ) -> Result<Vec<GroupCount>>
    where
        C: sea_orm::sea_query::IntoColumnRef + Clone,
    {
        let mut query = Query::select();
        query
            .expr_as(Expr::col(column.clone()), Alias::new("value"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("players"))
            .from(player_segments::Entity)
            .and_where(filter)
            .group_by_col(column)
            .order_by_expr(Expr::cust("COUNT(*)"), Order::Desc)
            .order_by_expr(Expr::cust("1"), Order::Asc)
            .limit(limit);
        join_latest_features(&mut query);
        let rows = self
            .connection()
            .query_all(&query)
            .await
            .map_err(database_error)?;
        rows.into_iter()
            .map(|row| {
                let players: i64 = row.try_get("", "players").map_err(database_error)?;
                let text: Option<String> = row.try_get("", "value").ok().flatten();
                let number: Option<i32> = row.try_get("", "value").ok().flatten();
                let value = text
                    .or_else(|| number.map(|score| score.to_string()))
                    .unwrap_or_default();
                Ok(GroupCount { value, players })
            })
            .collect()
    }
}

/// Joins `players` and each player's features from their latest ETL run onto a query over
/// `player_segments`.
pub(crate) fn join_latest_features(query: &mut SelectStatement) {
    query
        .join(
            JoinType::LeftJoin,
            players::Entity,
            Expr::col((players::Entity, players::Column::UserId))
                .equals((player_segments::Entity, player_segments::Column::UserId)),
        )
        .join(
            JoinType::LeftJoin,
            player_features::Entity,
            Condition::all()
                .add(
                    Expr::col((player_features::Entity, player_features::Column::UserId))
                        .equals((player_segments::Entity, player_segments::Column::UserId)),
                )
                .add(
                    Expr::col((player_features::Entity, player_features::Column::EtlRunId))
                        .equals((players::Entity, players::Column::LatestEtlRunId)),
                ),
        );
}

// Casting makes both engines return a float: PostgreSQL averages integers as numeric.
fn average_of(feature: &str) -> String {
    format!("AVG(CAST(player_features.{feature} AS DOUBLE PRECISION))")
}

fn average_of_square(feature: &str) -> String {
    format!(
        "AVG(CAST(player_features.{feature} AS DOUBLE PRECISION) * CAST(player_features.{feature} AS DOUBLE PRECISION))"
    )
}

fn sum_of(feature: &str) -> String {
    format!("SUM(CAST(player_features.{feature} AS DOUBLE PRECISION))")
}
