//! Reads of players: their segment, search, and behaviour.

use crmbet_core::{ClusterId, Error, ModelId, PlayerId, Result};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Expr, ExprTrait, Func, JoinType, Order, Query};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult};

use crate::database::Store;
use crate::entity::{clusters, player_features, player_segments, players};
use crate::failure::database_error;

/// A player's segment in a model, joined with the cluster's name and campaign type.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct PlayerSegment {
    pub user_id: String,
    pub model_id: i64,
    pub cluster_id: i64,
    pub cluster_name: String,
    pub suggested_campaign: String,
    pub confidence: f64,
    pub outlier: bool,
    pub assigned_at: DateTimeUtc,
}

/// Filters of a player search; every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerSearch {
    pub cluster_id: Option<ClusterId>,
    pub min_monetary: Option<f64>,
    pub max_monetary: Option<f64>,
    pub last_active_after: Option<DateTimeUtc>,
    pub last_active_before: Option<DateTimeUtc>,
    pub country: Option<String>,
    pub user_id_prefix: Option<String>,
}

/// One line of a player search.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct PlayerSummary {
    pub user_id: String,
    pub country: Option<String>,
    pub first_seen_at: Option<DateTimeUtc>,
    pub last_active_at: Option<DateTimeUtc>,
    pub cluster_id: Option<i64>,
    pub cluster_name: Option<String>,
    pub monetary: Option<f64>,
    pub frequency: Option<i64>,
}

/// A player with the features of their latest ETL run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerBehavior {
    pub player: players::Model,
    pub features: player_features::Model,
}

impl Store {
    /// The player's segment in `model_id`; `NotFound` when the player or their segment is
    /// unknown.
    pub async fn player_segment(
        &self,
        model_id: ModelId,
        player_id: &PlayerId,
    ) -> Result<PlayerSegment> {
        let mut query = Query::select();
        query
            .column((player_segments::Entity, player_segments::Column::UserId))
            .column((player_segments::Entity, player_segments::Column::ModelId))
            .column((player_segments::Entity, player_segments::Column::ClusterId))
            .expr_as(
                Expr::col((clusters::Entity, clusters::Column::Name)),
                "cluster_name",
            )
            .column((clusters::Entity, clusters::Column::SuggestedCampaign))
            .column((player_segments::Entity, player_segments::Column::Confidence))
            .column((player_segments::Entity, player_segments::Column::Outlier))
            .column((player_segments::Entity, player_segments::Column::AssignedAt))
            .from(player_segments::Entity)
            .join(
                JoinType::InnerJoin,
                clusters::Entity,
                Expr::col((clusters::Entity, clusters::Column::Id))
                    .equals((player_segments::Entity, player_segments::Column::ClusterId)),
            )
            .and_where(
                Expr::col((player_segments::Entity, player_segments::Column::ModelId))
                    .eq(model_id.0),
            )
            .and_where(
                Expr::col((player_segments::Entity, player_segments::Column::UserId))
                    .eq(player_id.as_str()),
            );
        let statement = self.backend().build(&query);
        let segment = PlayerSegment::find_by_statement(statement)
            .one(self.connection())
            .await
            .map_err(database_error)?;
        if let Some(segment) = segment {
            return Ok(segment);
        }
        if self.player(player_id).await.is_ok() {
            return Err(Error::NotFound {
                kind: "segment of player",
                id: format!("{player_id} in model {model_id} (the player appeared after training)"),
            });
        }
        Err(Error::not_found("player", player_id))
    }

    /// Up to `limit` user ids with a segment in `model_id`, drawn at random (for load tests
    /// that read segments the way bet-time lookups do).
    pub async fn sample_segment_user_ids(
        &self,
        model_id: ModelId,
        limit: u64,
    ) -> Result<Vec<String>> {
        let mut query = Query::select();
        query
            .column(player_segments::Column::UserId)
            .from(player_segments::Entity)
            .and_where(Expr::col(player_segments::Column::ModelId).eq(model_id.0))
            .order_by_expr(Func::random().into(), Order::Asc)
            .limit(limit);
        let statement = self.backend().build(&query);
        let rows = self
            .connection()
            .query_all_raw(statement)
            .await
            .map_err(database_error)?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "user_id").map_err(database_error))
            .collect()
    }

    /// A player by id.
    pub async fn player(&self, player_id: &PlayerId) -> Result<players::Model> {
        players::Entity::find_by_id(player_id.as_str().to_owned())
            .one(self.connection())
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::not_found("player", player_id))
    }

    /// Players matching `search`, with segments from `model_id` when there is one, with
    /// user ids after `after_user_id`, by user id.
    pub async fn search_players(
        &self,
        model_id: Option<ModelId>,
        search: &PlayerSearch,
        after_user_id: Option<&str>,
        limit: u64,
    ) -> Result<Vec<PlayerSummary>> {
        let mut query = Query::select();
        query
            .column((players::Entity, players::Column::UserId))
            .column((players::Entity, players::Column::Country))
            .column((players::Entity, players::Column::FirstSeenAt))
            .column((players::Entity, players::Column::LastActiveAt))
            .column((player_segments::Entity, player_segments::Column::ClusterId))
            .expr_as(
                Expr::col((clusters::Entity, clusters::Column::Name)),
                "cluster_name",
            )
            .column((player_features::Entity, player_features::Column::Monetary))
            .column((player_features::Entity, player_features::Column::Frequency))
            .from(players::Entity)
            .join(
                JoinType::LeftJoin,
                player_segments::Entity,
                Expr::col((player_segments::Entity, player_segments::Column::UserId))
                    .equals((players::Entity, players::Column::UserId))
                    .and(
                        Expr::col((player_segments::Entity, player_segments::Column::ModelId))
                            .eq(model_id.map_or(0, |model| model.0)),
                    ),
            )
            .join(
                JoinType::LeftJoin,
                clusters::Entity,
                Expr::col((clusters::Entity, clusters::Column::Id))
                    .equals((player_segments::Entity, player_segments::Column::ClusterId)),
            )
            .join(
                JoinType::LeftJoin,
                player_features::Entity,
                latest_features_of_player(),
            )
            .order_by((players::Entity, players::Column::UserId), Order::Asc)
            .limit(limit);
        if let Some(cluster_id) = search.cluster_id {
            query.and_where(
                Expr::col((player_segments::Entity, player_segments::Column::ClusterId))
                    .eq(cluster_id.0),
            );
        }
        if let Some(minimum) = search.min_monetary {
            query.and_where(
                Expr::col((player_features::Entity, player_features::Column::Monetary))
                    .gte(minimum),
            );
        }
        if let Some(maximum) = search.max_monetary {
            query.and_where(
                Expr::col((player_features::Entity, player_features::Column::Monetary))
                    .lte(maximum),
            );
        }
        if let Some(after) = search.last_active_after {
            query.and_where(Expr::col((players::Entity, players::Column::LastActiveAt)).gte(after));
        }
        if let Some(before) = search.last_active_before {
            query.and_where(Expr::col((players::Entity, players::Column::LastActiveAt)).lt(before));
        }
        if let Some(country) = &search.country {
            query.and_where(
                Expr::col((players::Entity, players::Column::Country)).eq(country.as_str()),
            );
        }
        if let Some(prefix) = &search.user_id_prefix {
            // SUBSTR compares exactly on both engines (SQLite's LIKE ignores ASCII case).
            let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
            let head = Func::cust("SUBSTR")
                .arg(Expr::col((players::Entity, players::Column::UserId)))
                .arg(1)
                .arg(length);
            query.and_where(Expr::expr(head).eq(prefix.as_str()));
        }
        if let Some(after) = after_user_id {
            query.and_where(Expr::col((players::Entity, players::Column::UserId)).gt(after));
        }
        let statement = self.backend().build(&query);
        PlayerSummary::find_by_statement(statement)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// The player and the features of their latest ETL run.
    pub async fn player_behavior(&self, player_id: &PlayerId) -> Result<PlayerBehavior> {
        let player = self.player(player_id).await?;
        let Some(etl_run_id) = player.latest_etl_run_id else {
            return Err(Error::NotFound {
                kind: "features of player",
                id: format!("{player_id} (no ETL run has computed them yet)"),
            });
        };
        let features = player_features::Entity::find_by_id((etl_run_id, player.user_id.clone()))
            .one(self.connection())
            .await
            .map_err(database_error)?
            .ok_or_else(|| {
                Error::Internal(format!(
                    "player {player_id} has no features in run {etl_run_id}"
                ))
            })?;
        Ok(PlayerBehavior { player, features })
    }
}

/// Joins a player's features from their latest ETL run (`player_features` to `players`).
pub(crate) fn latest_features_of_player() -> sea_orm::sea_query::SimpleExpr {
    Expr::col((player_features::Entity, player_features::Column::UserId))
        .equals((players::Entity, players::Column::UserId))
        .and(
            Expr::col((player_features::Entity, player_features::Column::EtlRunId))
                .equals((players::Entity, players::Column::LatestEtlRunId)),
        )
}
