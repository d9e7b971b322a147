//! Segment changes: every time a player's cluster in the active model changes (a live
//! assignment, a model activation), one row, written in the transaction that made the
//! change. Its id is the cursor `WatchSegmentChanges` resumes from.
//!
//! Players' live state gets an index on its last event (the live reference time is their
//! maximum, read per batch).
//!
//! Live watermarks: per lake, the last live transaction (by id) its ETL runs have accepted
//! into the warehouse, so each run takes only the live transactions that came after, and
//! the newest transaction its warehouse holds.
//!
//! Lake transaction ids: the ids of the lake's recent transactions (those within the live
//! window of the newest one), so a live event the lake already delivered is a duplicate.

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
                    .table(SegmentChanges::Table)
                    .if_not_exists()
                    .col(big_pk_auto(SegmentChanges::Id))
                    .col(string(SegmentChanges::UserId))
                    .col(big_integer(SegmentChanges::ModelId))
                    // None for a player who had no segment in this model before.
                    .col(big_integer_null(SegmentChanges::PreviousClusterId))
                    .col(big_integer(SegmentChanges::ClusterId))
                    .col(double(SegmentChanges::Confidence))
                    .col(boolean(SegmentChanges::Outlier))
                    // `live` or `activation`.
                    .col(string(SegmentChanges::Reason))
                    .col(timestamp_with_time_zone(SegmentChanges::ChangedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_segment_changes_user",
            SegmentChanges::Table,
            &[SegmentChanges::UserId],
        )
        .await?;
        create_index(
            manager,
            "idx_live_player_state_last_seen",
            LivePlayerState::Table,
            &[LivePlayerState::LastSeenMicros],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(EtlLiveWatermarks::Table)
                    .if_not_exists()
                    .col(string(EtlLiveWatermarks::Source).primary_key())
                    .col(big_integer(EtlLiveWatermarks::ThroughId))
                    .col(big_integer_null(EtlLiveWatermarks::NewestMicros))
                    .col(timestamp_with_time_zone(EtlLiveWatermarks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LakeTransactionIds::Table)
                    .if_not_exists()
                    .col(string(LakeTransactionIds::TransactionId).primary_key())
                    .col(big_integer(LakeTransactionIds::OccurredMicros))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_lake_transaction_ids_occurred",
            LakeTransactionIds::Table,
            &[LakeTransactionIds::OccurredMicros],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_live_player_state_last_seen")
                    .table(LivePlayerState::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for table in [
            LakeTransactionIds::Table.into_iden(),
            EtlLiveWatermarks::Table.into_iden(),
            SegmentChanges::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SegmentChanges {
    Table,
    Id,
    UserId,
    ModelId,
    PreviousClusterId,
    ClusterId,
    Confidence,
    Outlier,
    Reason,
    ChangedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EtlLiveWatermarks {
    Table,
    Source,
    ThroughId,
    NewestMicros,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LakeTransactionIds {
    Table,
    TransactionId,
    OccurredMicros,
}

#[derive(DeriveIden, Clone, Copy)]
enum LivePlayerState {
    Table,
    LastSeenMicros,
}
