//! One ETL run: where it read, what it found, and the quality of the data.

use sea_orm::entity::prelude::*;

/// A row of `etl_runs`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "etl_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub source: String,
    pub status: String,
    pub full_refresh: bool,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub objects_read: i64,
    pub objects_failed: i64,
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub rows_quarantined: i64,
    pub duplicates: i64,
    pub players: i64,
    pub completeness: Option<f64>,
    pub validity: Option<f64>,
    pub uniqueness: Option<f64>,
    pub freshness: Option<f64>,
    pub quality_score: Option<f64>,
    pub grade: Option<String>,
    pub report: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
