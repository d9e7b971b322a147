//! Campaign delivery: players' responsible-gambling and marketing restrictions, a
//! campaign's optional start time, cancellation and the launch's exclusion counts, and the
//! amount of a conversion event.
//!
//! SQLite adds one column per `ALTER TABLE`, so every new column is its own statement.

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PlayerRestrictions::Table)
                    .if_not_exists()
                    .col(string(PlayerRestrictions::UserId).primary_key())
                    .col(boolean(PlayerRestrictions::SelfExcluded).default(false))
                    .col(boolean(PlayerRestrictions::Blocked).default(false))
                    .col(boolean(PlayerRestrictions::MarketingOptOut).default(false))
                    .col(string(PlayerRestrictions::Source))
                    .col(string_null(PlayerRestrictions::UpdatedBy))
                    .col(timestamp_with_time_zone(PlayerRestrictions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for column in [
            timestamp_with_time_zone_null(Campaigns::StartAt),
            timestamp_with_time_zone_null(Campaigns::CancelledAt),
            json_null(Campaigns::Exclusions),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Campaigns::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEvents::Table)
                    .add_column(double_null(WebhookEvents::Amount))
                    .to_owned(),
            )
            .await?;
        // The frequency cap counts a player's recent campaigns.
        create_index(
            manager,
            "idx_campaign_targets_user",
            CampaignTargets::Table,
            &[CampaignTargets::UserId],
        )
        .await?;
        create_index(
            manager,
            "idx_campaigns_status",
            Campaigns::Table,
            &[Campaigns::Status],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("idx_campaigns_status", Campaigns::Table.into_iden()),
            (
                "idx_campaign_targets_user",
                CampaignTargets::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEvents::Table)
                    .drop_column(WebhookEvents::Amount)
                    .to_owned(),
            )
            .await?;
        for column in [
            Campaigns::Exclusions,
            Campaigns::CancelledAt,
            Campaigns::StartAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Campaigns::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(
                Table::drop()
                    .table(PlayerRestrictions::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum PlayerRestrictions {
    Table,
    UserId,
    SelfExcluded,
    Blocked,
    MarketingOptOut,
    Source,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Campaigns {
    Table,
    Status,
    StartAt,
    CancelledAt,
    Exclusions,
}

#[derive(DeriveIden, Clone, Copy)]
enum CampaignTargets {
    Table,
    UserId,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEvents {
    Table,
    Amount,
}
