//! What may never happen to a player: contact while self-excluded, blocked or opted out of
//! marketing (responsible gambling).

use sea_orm::entity::prelude::*;

/// A row of `player_restrictions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "player_restrictions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub self_excluded: bool,
    pub blocked: bool,
    pub marketing_opt_out: bool,
    /// Who set the row last: `api`, `lake` or `webhook` (an unsubscribe).
    pub source: String,
    pub updated_by: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
