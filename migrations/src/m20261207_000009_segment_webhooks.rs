//! Operators' webhooks for segment changes: each endpoint has its own cursor into
//! `segment_changes` (the last change it acknowledged), a lease (so one instance delivers to
//! it at a time, in order) and the failures of the batch it is retrying. A batch that failed
//! `CRMBET_OUTBOUND_WEBHOOK_MAX_ATTEMPTS` times is kept as a dead letter, exactly as it was
//! signed, and the endpoint moves on.

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
                    .table(WebhookEndpoints::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookEndpoints::Id))
                    .col(text(WebhookEndpoints::Url))
                    .col(string(WebhookEndpoints::Description))
                    .col(string(WebhookEndpoints::Secret))
                    // The last segment change the endpoint acknowledged.
                    .col(big_integer(WebhookEndpoints::DeliveredThrough))
                    .col(big_integer(WebhookEndpoints::ChangesDelivered))
                    // Failed attempts at the batch after the cursor, and that batch's last
                    // change, so a retry sends the same batch.
                    .col(integer(WebhookEndpoints::Failures))
                    .col(big_integer_null(WebhookEndpoints::PendingThrough))
                    .col(timestamp_with_time_zone(WebhookEndpoints::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::LeaseUntil))
                    .col(text_null(WebhookEndpoints::LastError))
                    .col(string_null(WebhookEndpoints::CreatedBy))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeadLetters::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhookDeadLetters::Id))
                    .col(big_integer(WebhookDeadLetters::EndpointId))
                    .col(big_integer(WebhookDeadLetters::FirstChangeId))
                    .col(big_integer(WebhookDeadLetters::LastChangeId))
                    .col(text(WebhookDeadLetters::Body))
                    .col(integer(WebhookDeadLetters::Attempts))
                    .col(text(WebhookDeadLetters::LastError))
                    .col(timestamp_with_time_zone(WebhookDeadLetters::FailedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_webhook_dead_letters_endpoint",
            WebhookDeadLetters::Table,
            &[WebhookDeadLetters::EndpointId],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookDeadLetters::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEndpoints {
    Table,
    Id,
    Url,
    Description,
    Secret,
    DeliveredThrough,
    ChangesDelivered,
    Failures,
    PendingThrough,
    NextAttemptAt,
    LeaseUntil,
    LastError,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeadLetters {
    Table,
    Id,
    EndpointId,
    FirstChangeId,
    LastChangeId,
    Body,
    Attempts,
    LastError,
    FailedAt,
}
