//! Schema migrations of crmbet. The same migrations run on SQLite (the embedded default)
//! and PostgreSQL (production); they use only portable column types and constraints.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_segmentation;
mod m20261125_000002_campaigns_and_access;
mod m20261125_000003_lake_objects;
mod m20261201_000004_refresh_token_revocations;
mod m20261206_000005_database_identity;
mod m20261206_000006_campaign_delivery;
mod m20261207_000007_live_transactions;
mod m20261207_000008_live_segments;
mod m20261207_000009_segment_webhooks;
mod m20261207_000010_on_entry_campaigns;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_segmentation::Migration),
            Box::new(m20261125_000002_campaigns_and_access::Migration),
            Box::new(m20261125_000003_lake_objects::Migration),
            Box::new(m20261201_000004_refresh_token_revocations::Migration),
            Box::new(m20261206_000005_database_identity::Migration),
            Box::new(m20261206_000006_campaign_delivery::Migration),
            Box::new(m20261207_000007_live_transactions::Migration),
            Box::new(m20261207_000008_live_segments::Migration),
            Box::new(m20261207_000009_segment_webhooks::Migration),
            Box::new(m20261207_000010_on_entry_campaigns::Migration),
        ]
    }
}

/// Creates a plain index on `columns` of `table`.
pub(crate) async fn create_index<T: Iden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[T],
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement.name(name).table(table).if_not_exists();
    for column in columns {
        statement.col(*column);
    }
    manager.create_index(statement.to_owned()).await
}

/// Creates a unique index on `columns` of `table`.
pub(crate) async fn create_unique_index<T: Iden + Copy + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[T],
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement.name(name).table(table).if_not_exists().unique();
    for column in columns {
        statement.col(*column);
    }
    manager.create_index(statement.to_owned()).await
}
