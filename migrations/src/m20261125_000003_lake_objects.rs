//! The ETL watermark: which version (size, ETag) of which lake object each source loaded.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LakeObjects::Table)
                    .if_not_exists()
                    .col(string(LakeObjects::Source))
                    .col(string(LakeObjects::ObjectKey))
                    .col(big_integer(LakeObjects::SizeBytes))
                    .col(string(LakeObjects::Etag))
                    .col(big_integer(LakeObjects::EtlRunId))
                    .col(timestamp_with_time_zone(LakeObjects::LoadedAt))
                    .primary_key(
                        Index::create()
                            .col(LakeObjects::Source)
                            .col(LakeObjects::ObjectKey)
                            .col(LakeObjects::SizeBytes)
                            .col(LakeObjects::Etag),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_lake_objects_etl_run")
                            .from(LakeObjects::Table, LakeObjects::EtlRunId)
                            .to(EtlRuns::Table, EtlRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(LakeObjects::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum LakeObjects {
    Table,
    Source,
    ObjectKey,
    SizeBytes,
    Etag,
    EtlRunId,
    LoadedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EtlRuns {
    Table,
    Id,
}
