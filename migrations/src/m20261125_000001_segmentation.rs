//! Players, ETL runs with their features and quarantine, models with clusters and player
//! segments, and training runs.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{create_index, create_unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EtlRuns::Table)
                    .if_not_exists()
                    .col(big_pk_auto(EtlRuns::Id))
                    .col(text(EtlRuns::Source))
                    .col(string(EtlRuns::Status))
                    .col(boolean(EtlRuns::FullRefresh))
                    .col(timestamp_with_time_zone(EtlRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(EtlRuns::FinishedAt))
                    .col(big_integer(EtlRuns::ObjectsRead).default(0))
                    .col(big_integer(EtlRuns::ObjectsFailed).default(0))
                    .col(big_integer(EtlRuns::RowsRead).default(0))
                    .col(big_integer(EtlRuns::RowsLoaded).default(0))
                    .col(big_integer(EtlRuns::RowsQuarantined).default(0))
                    .col(big_integer(EtlRuns::Duplicates).default(0))
                    .col(big_integer(EtlRuns::Players).default(0))
                    .col(double_null(EtlRuns::Completeness))
                    .col(double_null(EtlRuns::Validity))
                    .col(double_null(EtlRuns::Uniqueness))
                    .col(double_null(EtlRuns::Freshness))
                    .col(double_null(EtlRuns::QualityScore))
                    .col(string_null(EtlRuns::Grade))
                    .col(json_null(EtlRuns::Report))
                    .col(text_null(EtlRuns::Error))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Players::Table)
                    .if_not_exists()
                    .col(string(Players::UserId).primary_key())
                    .col(string_null(Players::Country))
                    .col(timestamp_with_time_zone_null(Players::FirstSeenAt))
                    .col(timestamp_with_time_zone_null(Players::LastActiveAt))
                    .col(big_integer_null(Players::LatestEtlRunId))
                    .col(timestamp_with_time_zone(Players::CreatedAt))
                    .col(timestamp_with_time_zone(Players::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_players_last_active_at",
            Players::Table,
            &[Players::LastActiveAt],
        )
        .await?;
        create_index(
            manager,
            "idx_players_country",
            Players::Table,
            &[Players::Country],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlayerFeatures::Table)
                    .if_not_exists()
                    .col(big_integer(PlayerFeatures::EtlRunId))
                    .col(string(PlayerFeatures::UserId))
                    .col(string(PlayerFeatures::FavouriteGame))
                    .col(double(PlayerFeatures::ShareCrash))
                    .col(double(PlayerFeatures::ShareSlots))
                    .col(double(PlayerFeatures::ShareLiveCasino))
                    .col(double(PlayerFeatures::ShareSports))
                    .col(double(PlayerFeatures::ShareTable))
                    .col(big_integer(PlayerFeatures::BetCount))
                    .col(double(PlayerFeatures::BetStd))
                    .col(double(PlayerFeatures::BetCv))
                    .col(big_integer(PlayerFeatures::Sessions))
                    .col(double(PlayerFeatures::BetsPerSession))
                    .col(double(PlayerFeatures::AvgTicket))
                    .col(double(PlayerFeatures::TotalStaked))
                    .col(double(PlayerFeatures::Ngr))
                    .col(big_integer(PlayerFeatures::DepositCount))
                    .col(double(PlayerFeatures::DepositSum))
                    .col(double(PlayerFeatures::AvgDeposit))
                    .col(big_integer(PlayerFeatures::WithdrawalCount))
                    .col(double(PlayerFeatures::WithdrawalSum))
                    .col(double(PlayerFeatures::WithdrawalRatio))
                    .col(double(PlayerFeatures::BonusShare))
                    .col(double(PlayerFeatures::ClvEstimate))
                    .col(double(PlayerFeatures::NightShare))
                    .col(double(PlayerFeatures::WeekendShare))
                    .col(integer(PlayerFeatures::PreferredHour))
                    .col(integer(PlayerFeatures::PreferredWeekday))
                    .col(big_integer(PlayerFeatures::ActiveDays))
                    .col(double(PlayerFeatures::TenureDays))
                    .col(double(PlayerFeatures::RecencyDays))
                    .col(big_integer(PlayerFeatures::Frequency))
                    .col(double(PlayerFeatures::Monetary))
                    .col(integer(PlayerFeatures::RScore))
                    .col(integer(PlayerFeatures::FScore))
                    .col(integer(PlayerFeatures::MScore))
                    .primary_key(
                        Index::create()
                            .col(PlayerFeatures::EtlRunId)
                            .col(PlayerFeatures::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_player_features_etl_run")
                            .from(PlayerFeatures::Table, PlayerFeatures::EtlRunId)
                            .to(EtlRuns::Table, EtlRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_player_features_user",
            PlayerFeatures::Table,
            &[PlayerFeatures::UserId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Quarantine::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Quarantine::Id))
                    .col(big_integer(Quarantine::EtlRunId))
                    .col(string(Quarantine::Rule))
                    .col(text(Quarantine::SourceObject))
                    .col(text(Quarantine::RowJson))
                    .col(timestamp_with_time_zone(Quarantine::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_quarantine_etl_run")
                            .from(Quarantine::Table, Quarantine::EtlRunId)
                            .to(EtlRuns::Table, EtlRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_quarantine_etl_run_rule",
            Quarantine::Table,
            &[Quarantine::EtlRunId, Quarantine::Rule],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Models::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Models::Id))
                    .col(integer_uniq(Models::Version))
                    .col(string(Models::Algorithm))
                    .col(integer(Models::K))
                    .col(json(Models::Parameters))
                    .col(json(Models::Transform))
                    .col(json(Models::Centroids))
                    .col(json(Models::Metrics))
                    .col(json(Models::FeatureNames))
                    .col(big_integer_null(Models::EtlRunId))
                    .col(text(Models::SelectionReason))
                    .col(timestamp_with_time_zone(Models::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_models_etl_run")
                            .from(Models::Table, Models::EtlRunId)
                            .to(EtlRuns::Table, EtlRuns::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;

        // A single row per slot names the active model, so "exactly one active" holds by
        // construction and activation is one atomic UPDATE on both engines.
        manager
            .create_table(
                Table::create()
                    .table(ActiveModel::Table)
                    .if_not_exists()
                    .col(string(ActiveModel::Slot).primary_key())
                    .col(big_integer(ActiveModel::ModelId))
                    .col(timestamp_with_time_zone(ActiveModel::ActivatedAt))
                    .col(string_null(ActiveModel::ActivatedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_active_model_model")
                            .from(ActiveModel::Table, ActiveModel::ModelId)
                            .to(Models::Table, Models::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clusters::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Clusters::Id))
                    .col(big_integer(Clusters::ModelId))
                    .col(integer(Clusters::Label))
                    .col(string(Clusters::Name))
                    .col(text(Clusters::Description))
                    .col(string(Clusters::SuggestedCampaign))
                    .col(big_integer(Clusters::Size))
                    .col(double(Clusters::Share))
                    .col(json(Clusters::Profile))
                    .col(json(Clusters::Centroid))
                    .col(timestamp_with_time_zone(Clusters::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_clusters_model")
                            .from(Clusters::Table, Clusters::ModelId)
                            .to(Models::Table, Models::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_unique_index(
            manager,
            "uq_clusters_model_label",
            Clusters::Table,
            &[Clusters::ModelId, Clusters::Label],
        )
        .await?;
        create_unique_index(
            manager,
            "uq_clusters_model_name",
            Clusters::Table,
            &[Clusters::ModelId, Clusters::Name],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlayerSegments::Table)
                    .if_not_exists()
                    .col(big_integer(PlayerSegments::ModelId))
                    .col(string(PlayerSegments::UserId))
                    .col(big_integer(PlayerSegments::ClusterId))
                    .col(double(PlayerSegments::Confidence))
                    .col(boolean(PlayerSegments::Outlier))
                    .col(timestamp_with_time_zone(PlayerSegments::AssignedAt))
                    .primary_key(
                        Index::create()
                            .col(PlayerSegments::ModelId)
                            .col(PlayerSegments::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_player_segments_model")
                            .from(PlayerSegments::Table, PlayerSegments::ModelId)
                            .to(Models::Table, Models::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_player_segments_cluster")
                            .from(PlayerSegments::Table, PlayerSegments::ClusterId)
                            .to(Clusters::Table, Clusters::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_player_segments_cluster_user",
            PlayerSegments::Table,
            &[PlayerSegments::ClusterId, PlayerSegments::UserId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TrainingRuns::Table)
                    .if_not_exists()
                    .col(big_pk_auto(TrainingRuns::Id))
                    .col(string(TrainingRuns::Status))
                    .col(string(TrainingRuns::Algorithm))
                    .col(integer(TrainingRuns::K))
                    .col(big_integer(TrainingRuns::Seed))
                    .col(boolean(TrainingRuns::Activate))
                    .col(string(TrainingRuns::Stage))
                    .col(double(TrainingRuns::Percent))
                    .col(timestamp_with_time_zone(TrainingRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(TrainingRuns::FinishedAt))
                    .col(big_integer_null(TrainingRuns::ModelId))
                    .col(text_null(TrainingRuns::Error))
                    .col(string_null(TrainingRuns::CreatedBy))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never block the drop.
        for table in [
            TrainingRuns::Table.into_iden(),
            PlayerSegments::Table.into_iden(),
            Clusters::Table.into_iden(),
            ActiveModel::Table.into_iden(),
            Models::Table.into_iden(),
            Quarantine::Table.into_iden(),
            PlayerFeatures::Table.into_iden(),
            Players::Table.into_iden(),
            EtlRuns::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum EtlRuns {
    Table,
    Id,
    Source,
    Status,
    FullRefresh,
    StartedAt,
    FinishedAt,
    ObjectsRead,
    ObjectsFailed,
    RowsRead,
    RowsLoaded,
    RowsQuarantined,
    Duplicates,
    Players,
    Completeness,
    Validity,
    Uniqueness,
    Freshness,
    QualityScore,
    Grade,
    Report,
    Error,
}

#[derive(DeriveIden, Clone, Copy)]
enum Players {
    Table,
    UserId,
    Country,
    FirstSeenAt,
    LastActiveAt,
    LatestEtlRunId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PlayerFeatures {
    Table,
    EtlRunId,
    UserId,
    FavouriteGame,
    ShareCrash,
    ShareSlots,
    ShareLiveCasino,
    ShareSports,
    ShareTable,
    BetCount,
    BetStd,
    BetCv,
    Sessions,
    BetsPerSession,
    AvgTicket,
    TotalStaked,
    Ngr,
    DepositCount,
    DepositSum,
    AvgDeposit,
    WithdrawalCount,
    WithdrawalSum,
    WithdrawalRatio,
    BonusShare,
    ClvEstimate,
    NightShare,
    WeekendShare,
    PreferredHour,
    PreferredWeekday,
    ActiveDays,
    TenureDays,
    RecencyDays,
    Frequency,
    Monetary,
    RScore,
    FScore,
    MScore,
}

#[derive(DeriveIden, Clone, Copy)]
enum Quarantine {
    Table,
    Id,
    EtlRunId,
    Rule,
    SourceObject,
    RowJson,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Models {
    Table,
    Id,
    Version,
    Algorithm,
    K,
    Parameters,
    Transform,
    Centroids,
    Metrics,
    FeatureNames,
    EtlRunId,
    SelectionReason,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ActiveModel {
    Table,
    Slot,
    ModelId,
    ActivatedAt,
    ActivatedBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum Clusters {
    Table,
    Id,
    ModelId,
    Label,
    Name,
    Description,
    SuggestedCampaign,
    Size,
    Share,
    Profile,
    Centroid,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PlayerSegments {
    Table,
    ModelId,
    UserId,
    ClusterId,
    Confidence,
    Outlier,
    AssignedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TrainingRuns {
    Table,
    Id,
    Status,
    Algorithm,
    K,
    Seed,
    Activate,
    Stage,
    Percent,
    StartedAt,
    FinishedAt,
    ModelId,
    Error,
    CreatedBy,
}
