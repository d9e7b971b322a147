//! Campaigns triggered on entry: `trigger` says when a campaign's players are chosen
//! (`launch`: its clusters' members at launch; `on_entry`: each player as they enter one
//! of its clusters after the launch), and `entry_cursor` is the last segment change an
//! on-entry campaign has enrolled from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Campaigns::Table)
                    .add_column(string(Campaigns::Trigger).default("launch"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Campaigns::Table)
                    .add_column(big_integer_null(Campaigns::EntryCursor))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Campaigns::EntryCursor, Campaigns::Trigger] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Campaigns::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Campaigns {
    Table,
    Trigger,
    EntryCursor,
}
