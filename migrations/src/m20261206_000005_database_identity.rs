//! `database_identity`: one row holding a random id made when the database was created.
//!
//! Files kept outside the database that describe its contents (the ETL's warehouse of
//! accepted transactions) record this id and check it before they are trusted, so a new
//! database (a reset, a move from SQLite to PostgreSQL) never inherits another database's
//! files by accident.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // 128 random bits from the engine itself, so the id exists as soon as the schema does.
        let random_hex = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "md5(random()::text || clock_timestamp()::text)",
            _ => "lower(hex(randomblob(16)))",
        };
        let connection = manager.get_connection();
        connection
            .execute_unprepared(
                "CREATE TABLE IF NOT EXISTS database_identity (
                    id integer NOT NULL PRIMARY KEY,
                    database_id varchar NOT NULL
                 )",
            )
            .await?;
        connection
            .execute_unprepared(&format!(
                "INSERT INTO database_identity (id, database_id) SELECT 1, {random_hex} \
                 WHERE NOT EXISTS (SELECT 1 FROM database_identity)"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS database_identity")
            .await?;
        Ok(())
    }
}
