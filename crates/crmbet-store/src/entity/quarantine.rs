//! A lake row that broke a contract rule, kept with the rule's name and its source.

use sea_orm::entity::prelude::*;

/// A row of `quarantine`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quarantine")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub etl_run_id: i64,
    pub rule: String,
    #[sea_orm(column_type = "Text")]
    pub source_object: String,
    #[sea_orm(column_type = "Text")]
    pub row_json: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
