//! Players' restrictions: self-exclusion, blocks and marketing opt-outs, which no campaign
//! audience may ever contain.

use chrono::Utc;
use crmbet_core::Result;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter};

use crate::database::Store;
use crate::entity::player_restrictions;
use crate::failure::database_error;

/// The restrictions to set on a player, replacing the ones they had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRestrictions {
    pub user_id: String,
    pub self_excluded: bool,
    pub blocked: bool,
    pub marketing_opt_out: bool,
    /// `api`, `lake` or `webhook`.
    pub source: String,
    pub updated_by: Option<String>,
}

impl Store {
    /// Sets a player's restrictions (insert or replace) and returns the stored row.
    pub async fn set_restrictions(
        &self,
        restrictions: NewRestrictions,
    ) -> Result<player_restrictions::Model> {
        let row = player_restrictions::ActiveModel {
            user_id: Set(restrictions.user_id.clone()),
            self_excluded: Set(restrictions.self_excluded),
            blocked: Set(restrictions.blocked),
            marketing_opt_out: Set(restrictions.marketing_opt_out),
            source: Set(restrictions.source),
            updated_by: Set(restrictions.updated_by),
            updated_at: Set(Utc::now()),
        };
        player_restrictions::Entity::insert(row)
            .on_conflict(
                OnConflict::column(player_restrictions::Column::UserId)
                    .update_columns([
                        player_restrictions::Column::SelfExcluded,
                        player_restrictions::Column::Blocked,
                        player_restrictions::Column::MarketingOptOut,
                        player_restrictions::Column::Source,
                        player_restrictions::Column::UpdatedBy,
                        player_restrictions::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.connection())
            .await
            .map_err(database_error)?;
        self.restrictions(&restrictions.user_id)
            .await?
            .ok_or_else(|| crmbet_core::Error::Internal("restriction row vanished".to_owned()))
    }

    /// Marks a player opted out of marketing, keeping their other restrictions.
    pub async fn opt_out_of_marketing(&self, user_id: &str, source: &str) -> Result<()> {
        let current = self.restrictions(user_id).await?;
        self.set_restrictions(NewRestrictions {
            user_id: user_id.to_owned(),
            self_excluded: current.as_ref().is_some_and(|row| row.self_excluded),
            blocked: current.as_ref().is_some_and(|row| row.blocked),
            marketing_opt_out: true,
            source: source.to_owned(),
            updated_by: None,
        })
        .await?;
        Ok(())
    }

    /// A player's restrictions, if any were ever set.
    pub async fn restrictions(&self, user_id: &str) -> Result<Option<player_restrictions::Model>> {
        player_restrictions::Entity::find_by_id(user_id.to_owned())
            .one(self.connection())
            .await
            .map_err(database_error)
    }

    /// Every player with at least one restriction in force.
    pub async fn restricted_players(&self) -> Result<Vec<player_restrictions::Model>> {
        self.restricted_players_among(None).await
    }

    /// [`Store::restricted_players`], only among `users` when given.
    pub async fn restricted_players_among(
        &self,
        users: Option<&[String]>,
    ) -> Result<Vec<player_restrictions::Model>> {
        let mut query = player_restrictions::Entity::find();
        if let Some(users) = users {
            query = query.filter(
                player_restrictions::Column::UserId.is_in(users.iter().map(String::as_str)),
            );
        }
        query
            .filter(
                Condition::any()
                    .add(player_restrictions::Column::SelfExcluded.eq(true))
                    .add(player_restrictions::Column::Blocked.eq(true))
                    .add(player_restrictions::Column::MarketingOptOut.eq(true)),
            )
            .all(self.connection())
            .await
            .map_err(database_error)
    }
}
