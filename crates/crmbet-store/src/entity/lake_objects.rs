//! One version of a lake object that an ETL run loaded: the watermark.

use sea_orm::entity::prelude::*;

/// A row of `lake_objects`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lake_objects")]
pub struct Model {
    /// The lake as given to `crmbet etl --lake`, e.g. `s3://bucket/prefix`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    /// The object's key relative to the lake root.
    #[sea_orm(primary_key, auto_increment = false)]
    pub object_key: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub size_bytes: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub etag: String,
    pub etl_run_id: i64,
    pub loaded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
