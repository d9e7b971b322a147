//! Campaigns with their targets, the dispatch outbox and webhook events; accounts, refresh
//! tokens and the audit log.

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
                    .table(Campaigns::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Campaigns::Id))
                    .col(string(Campaigns::Name))
                    .col(text(Campaigns::Description))
                    .col(string(Campaigns::Status))
                    .col(string(Campaigns::CampaignType))
                    .col(string(Campaigns::Channel))
                    .col(json(Campaigns::ClusterIds))
                    .col(json(Campaigns::Filter))
                    .col(double(Campaigns::HoldoutShare))
                    .col(text(Campaigns::MessageTemplate))
                    .col(string_null(Campaigns::RequestId).unique_key())
                    .col(big_integer_null(Campaigns::ModelId))
                    .col(string_null(Campaigns::CreatedBy))
                    .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                    .col(timestamp_with_time_zone_null(Campaigns::LaunchedAt))
                    .col(big_integer(Campaigns::TreatmentCount).default(0))
                    .col(big_integer(Campaigns::ControlCount).default(0))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CampaignTargets::Table)
                    .if_not_exists()
                    .col(big_integer(CampaignTargets::CampaignId))
                    .col(string(CampaignTargets::UserId))
                    .col(string(CampaignTargets::GroupName))
                    .col(big_integer_null(CampaignTargets::ClusterId))
                    .col(string(CampaignTargets::Status))
                    .col(timestamp_with_time_zone(CampaignTargets::CreatedAt))
                    .col(timestamp_with_time_zone_null(CampaignTargets::SentAt))
                    .primary_key(
                        Index::create()
                            .col(CampaignTargets::CampaignId)
                            .col(CampaignTargets::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_campaign_targets_campaign")
                            .from(CampaignTargets::Table, CampaignTargets::CampaignId)
                            .to(Campaigns::Table, Campaigns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_campaign_targets_group",
            CampaignTargets::Table,
            &[CampaignTargets::CampaignId, CampaignTargets::GroupName],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Outbox::Id))
                    .col(string(Outbox::Topic))
                    .col(string(Outbox::MessageKey))
                    .col(json(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone(Outbox::AvailableAt))
                    .col(integer(Outbox::Attempts).default(0))
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .col(text_null(Outbox::LastError))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_outbox_pending",
            Outbox::Table,
            &[Outbox::PublishedAt, Outbox::AvailableAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookEvents::Id))
                    .col(string_uniq(WebhookEvents::EventId))
                    .col(string(WebhookEvents::Source))
                    .col(string(WebhookEvents::EventType))
                    .col(big_integer_null(WebhookEvents::CampaignId))
                    .col(string_null(WebhookEvents::UserId))
                    .col(timestamp_with_time_zone_null(WebhookEvents::OccurredAt))
                    .col(json(WebhookEvents::Payload))
                    .col(timestamp_with_time_zone(WebhookEvents::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_webhook_events_campaign_type",
            WebhookEvents::Table,
            &[WebhookEvents::CampaignId, WebhookEvents::EventType],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Accounts::Id))
                    .col(string_uniq(Accounts::Username))
                    .col(string(Accounts::PasswordHash))
                    .col(string(Accounts::Role))
                    .col(boolean(Accounts::Disabled).default(false))
                    .col(integer(Accounts::FailedLogins).default(0))
                    .col(timestamp_with_time_zone_null(Accounts::LockedUntil))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .col(timestamp_with_time_zone(Accounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RefreshTokens::Id))
                    .col(big_integer(RefreshTokens::AccountId))
                    .col(string_uniq(RefreshTokens::TokenHash))
                    .col(string(RefreshTokens::FamilyId))
                    .col(timestamp_with_time_zone(RefreshTokens::IssuedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .col(big_integer_null(RefreshTokens::ReplacedById))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_account")
                            .from(RefreshTokens::Table, RefreshTokens::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_refresh_tokens_family",
            RefreshTokens::Table,
            &[RefreshTokens::FamilyId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditLog::Id))
                    .col(string(AuditLog::Actor))
                    .col(string_null(AuditLog::Role))
                    .col(string(AuditLog::Action))
                    .col(string_null(AuditLog::Target))
                    .col(string_null(AuditLog::ClientIp))
                    .col(string_null(AuditLog::RequestId))
                    .col(json_null(AuditLog::Details))
                    .col(timestamp_with_time_zone(AuditLog::OccurredAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_audit_log_occurred_at",
            AuditLog::Table,
            &[AuditLog::OccurredAt],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never block the drop.
        for table in [
            AuditLog::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Accounts::Table.into_iden(),
            WebhookEvents::Table.into_iden(),
            Outbox::Table.into_iden(),
            CampaignTargets::Table.into_iden(),
            Campaigns::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Campaigns {
    Table,
    Id,
    Name,
    Description,
    Status,
    CampaignType,
    Channel,
    ClusterIds,
    Filter,
    HoldoutShare,
    MessageTemplate,
    RequestId,
    ModelId,
    CreatedBy,
    CreatedAt,
    LaunchedAt,
    TreatmentCount,
    ControlCount,
}

#[derive(DeriveIden, Clone, Copy)]
enum CampaignTargets {
    Table,
    CampaignId,
    UserId,
    GroupName,
    ClusterId,
    Status,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Outbox {
    Table,
    Id,
    Topic,
    MessageKey,
    Payload,
    CreatedAt,
    AvailableAt,
    Attempts,
    PublishedAt,
    LastError,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEvents {
    Table,
    Id,
    EventId,
    Source,
    EventType,
    CampaignId,
    UserId,
    OccurredAt,
    Payload,
    ReceivedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Accounts {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    Disabled,
    FailedLogins,
    LockedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RefreshTokens {
    Table,
    Id,
    AccountId,
    TokenHash,
    FamilyId,
    IssuedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    ReplacedById,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Id,
    Actor,
    Role,
    Action,
    Target,
    ClientIp,
    RequestId,
    Details,
    OccurredAt,
}
