//! What an operator's dashboards watch, read in one go for `/metrics`: the outbox backlog,
//! the latest ETL run, the active model and the latest finished training run.

use chrono::{DateTime, Utc};
use crmbet_core::Result;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::database::Store;
use crate::entity::{etl_runs, models, outbox, training_runs};
use crate::failure::database_error;

/// The operational state of the database at one moment.
#[derive(Debug, Clone, Default)]
pub struct OperationalSnapshot {
    /// Outbox messages not yet published, of every topic.
    pub outbox_pending: u64,
    /// When the oldest of them was written: the delivery lag's start.
    pub outbox_oldest_pending_at: Option<DateTime<Utc>>,
    pub latest_etl_run: Option<etl_runs::Model>,
    pub active_model: Option<models::Model>,
    /// The latest training run that finished, successfully or not.
    pub latest_finished_training: Option<training_runs::Model>,
}

impl Store {
    /// Reads the [`OperationalSnapshot`]; a handful of indexed single-row queries.
    pub async fn operational_snapshot(&self) -> Result<OperationalSnapshot> {
        let connection = self.connection();
        let unpublished = || outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null());
        let outbox_pending = unpublished()
            .count(connection)
            .await
            .map_err(database_error)?;
        let outbox_oldest_pending_at = unpublished()
            .order_by_asc(outbox::Column::Id)
            .limit(1)
            .one(connection)
            .await
            .map_err(database_error)?
            .map(|message| message.created_at);
        let active_model = match self.active_model_id().await? {
            Some(model_id) => Some(self.model(model_id).await?),
            None => None,
        };
        let latest_finished_training = training_runs::Entity::find()
            .filter(training_runs::Column::FinishedAt.is_not_null())
            .order_by_desc(training_runs::Column::Id)
            .limit(1)
            .one(connection)
            .await
            .map_err(database_error)?;
        Ok(OperationalSnapshot {
            outbox_pending,
            outbox_oldest_pending_at,
            latest_etl_run: self.latest_etl_run().await?,
            active_model,
            latest_finished_training,
        })
    }
}
