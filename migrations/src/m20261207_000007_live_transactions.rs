//! Live transactions: each one stored once by `transaction_id` (the dedupe key the lake
//! shares), players' aggregate state, the distinct sessions and days behind its counts, and
//! the live events that broke a contract rule.

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
                    .table(LiveTransactions::Table)
                    .if_not_exists()
                    // The order transactions were accepted in, for whoever reads them on.
                    .col(big_pk_auto(LiveTransactions::Id))
                    .col(string(LiveTransactions::TransactionId))
                    .col(string(LiveTransactions::UserId))
                    .col(big_integer(LiveTransactions::OccurredMicros))
                    .col(string(LiveTransactions::Kind))
                    .col(double(LiveTransactions::Amount))
                    .col(string(LiveTransactions::Currency))
                    .col(string_null(LiveTransactions::GameType))
                    .col(string_null(LiveTransactions::GameId))
                    .col(string_null(LiveTransactions::SessionId))
                    .col(string_null(LiveTransactions::Channel))
                    .col(string_null(LiveTransactions::Country))
                    .col(string(LiveTransactions::Source))
                    .col(timestamp_with_time_zone(LiveTransactions::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        create_unique_index(
            manager,
            "idx_live_transactions_transaction_id",
            LiveTransactions::Table,
            &[LiveTransactions::TransactionId],
        )
        .await?;
        create_index(
            manager,
            "idx_live_transactions_occurred",
            LiveTransactions::Table,
            &[LiveTransactions::OccurredMicros],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(LivePlayerState::Table)
                    .if_not_exists()
                    .col(string(LivePlayerState::UserId).primary_key())
                    .col(text_null(LivePlayerState::State))
                    .col(big_integer(LivePlayerState::LastSeenMicros).default(0))
                    .col(timestamp_with_time_zone(LivePlayerState::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LivePlayerSessions::Table)
                    .if_not_exists()
                    .col(string(LivePlayerSessions::UserId))
                    .col(string(LivePlayerSessions::SessionId))
                    .primary_key(
                        Index::create()
                            .col(LivePlayerSessions::UserId)
                            .col(LivePlayerSessions::SessionId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LivePlayerDays::Table)
                    .if_not_exists()
                    .col(string(LivePlayerDays::UserId))
                    .col(big_integer(LivePlayerDays::EpochDay))
                    .primary_key(
                        Index::create()
                            .col(LivePlayerDays::UserId)
                            .col(LivePlayerDays::EpochDay),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LiveQuarantine::Table)
                    .if_not_exists()
                    .col(big_pk_auto(LiveQuarantine::Id))
                    .col(string(LiveQuarantine::Rule))
                    .col(string(LiveQuarantine::Source))
                    .col(text(LiveQuarantine::RowJson))
                    .col(timestamp_with_time_zone(LiveQuarantine::ReceivedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LiveQuarantine::Table.into_iden(),
            LivePlayerDays::Table.into_iden(),
            LivePlayerSessions::Table.into_iden(),
            LivePlayerState::Table.into_iden(),
            LiveTransactions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum LiveTransactions {
    Table,
    Id,
    TransactionId,
    UserId,
    OccurredMicros,
    Kind,
    Amount,
    Currency,
    GameType,
    GameId,
    SessionId,
    Channel,
    Country,
    Source,
    ReceivedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LivePlayerState {
    Table,
    UserId,
    State,
    LastSeenMicros,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LivePlayerSessions {
    Table,
    UserId,
    SessionId,
}

#[derive(DeriveIden, Clone, Copy)]
enum LivePlayerDays {
    Table,
    UserId,
    EpochDay,
}

#[derive(DeriveIden, Clone, Copy)]
enum LiveQuarantine {
    Table,
    Id,
    Rule,
    Source,
    RowJson,
    ReceivedAt,
}
