//! Applying the lake's snapshot of players' restrictions (`<lake>/players/`).
//!
//! Responsible gambling first: the lake never lifts a restriction someone set by hand. A
//! player whose row came from the lake (or who has none) gets the snapshot's flags exactly,
//! so the operator can lift a self-exclusion that ended; a player whose row was set through
//! the API or a webhook unsubscribe keeps every restriction and gains the snapshot's (OR),
//! and the row keeps its source. Players absent from the snapshot are left as they are.
//!
//! The rule is written twice on purpose: in Rust ([`merged_flags`]) to count what changes
//! and skip unchanged rows, and in the upsert's `ON CONFLICT` so a row the API wrote between
//! the read and the write is still merged, never overwritten.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use crmbet_core::Result;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::database::Store;
use crate::entity::player_restrictions;
use crate::failure::database_error;

/// The `source` of rows the lake owns.
pub const LAKE_SOURCE: &str = "lake";

/// Players per statement: the id list of the read and the rows of the upsert (7 columns)
/// stay well under the bind-parameter limits of SQLite and PostgreSQL.
const BATCH_PLAYERS: usize = 1_000;

/// A player's three restrictions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestrictionFlags {
    pub self_excluded: bool,
    pub blocked: bool,
    pub marketing_opt_out: bool,
}

impl RestrictionFlags {
    /// Whether any restriction is in force.
    pub fn any(self) -> bool {
        self.self_excluded || self.blocked || self.marketing_opt_out
    }

    fn or(self, other: Self) -> Self {
        Self {
            self_excluded: self.self_excluded || other.self_excluded,
            blocked: self.blocked || other.blocked,
            marketing_opt_out: self.marketing_opt_out || other.marketing_opt_out,
        }
    }

    fn of(row: &player_restrictions::Model) -> Self {
        Self {
            self_excluded: row.self_excluded,
            blocked: row.blocked,
            marketing_opt_out: row.marketing_opt_out,
        }
    }
}

/// One player's row of the lake's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeRestrictionRow {
    pub user_id: String,
    pub flags: RestrictionFlags,
    /// When the operator's system changed the flags; the application time when unknown.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What applying a snapshot did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LakeRestrictionsApplied {
    /// Players of the snapshot with at least one restriction in force afterwards.
    pub players_restricted: u64,
    /// Players whose stored restrictions were created or changed.
    pub players_updated: u64,
}

/// The flags a player has after the lake's `lake` flags meet the stored row, if any.
///
/// ```
/// use crmbet_store::{RestrictionFlags, merged_flags};
/// let blocked = RestrictionFlags { blocked: true, ..Default::default() };
/// let none = RestrictionFlags::default();
/// assert_eq!(merged_flags(Some(("lake", blocked)), none), none);
/// assert_eq!(merged_flags(Some(("api", blocked)), none), blocked);
/// ```
pub fn merged_flags(
    stored: Option<(&str, RestrictionFlags)>,
    lake: RestrictionFlags,
) -> RestrictionFlags {
    match stored {
        None => lake,
        Some((source, _)) if source == LAKE_SOURCE => lake,
        Some((_, by_hand)) => by_hand.or(lake),
    }
}

impl Store {
    /// Applies the lake's snapshot `rows` in one transaction, in batches; `updated_by` names
    /// the lake in the rows it writes. A player listed twice takes the last row.
    pub async fn apply_lake_restrictions(
        &self,
        rows: &[LakeRestrictionRow],
        updated_by: &str,
    ) -> Result<LakeRestrictionsApplied> {
        let now = Utc::now();
        let latest: BTreeMap<&str, &LakeRestrictionRow> =
            rows.iter().map(|row| (row.user_id.as_str(), row)).collect();
        let players: Vec<&LakeRestrictionRow> = latest.into_values().collect();
        let mut applied = LakeRestrictionsApplied::default();
        let transaction = self.begin_write().await?;
        for batch in players.chunks(BATCH_PLAYERS) {
            let stored: HashMap<String, player_restrictions::Model> =
                player_restrictions::Entity::find()
                    .filter(
                        player_restrictions::Column::UserId
                            .is_in(batch.iter().map(|row| row.user_id.as_str())),
                    )
                    .all(&transaction)
                    .await
                    .map_err(database_error)?
                    .into_iter()
                    .map(|row| (row.user_id.clone(), row))
                    .collect();
            let mut changed = Vec::new();
            for row in batch {
                let existing = stored.get(&row.user_id);
                let before = existing.map(RestrictionFlags::of);
                let after = merged_flags(
                    existing.map(|stored_row| {
                        (stored_row.source.as_str(), RestrictionFlags::of(stored_row))
                    }),
                    row.flags,
                );
                if after.any() {
                    applied.players_restricted += 1;
                }
                // Unchanged; a player without a row and without restrictions needs no row.
                if before.unwrap_or_default() == after {
                    continue;
                }
                applied.players_updated += 1;
                changed.push(player_restrictions::ActiveModel {
                    user_id: Set(row.user_id.clone()),
                    self_excluded: Set(row.flags.self_excluded),
                    blocked: Set(row.flags.blocked),
                    marketing_opt_out: Set(row.flags.marketing_opt_out),
                    source: Set(LAKE_SOURCE.to_owned()),
                    updated_by: Set(Some(updated_by.to_owned())),
                    updated_at: Set(row.updated_at.unwrap_or(now)),
                });
            }
            if changed.is_empty() {
                continue;
            }
            player_restrictions::Entity::insert_many(changed)
                .on_conflict(merge_on_conflict())
                .exec_without_returning(&transaction)
                .await
                .map_err(database_error)?;
        }
        transaction.commit().await.map_err(database_error)?;
        Ok(applied)
    }
}

/// The upsert's update: [`merged_flags`] in SQL, for SQLite and PostgreSQL alike. A row
/// set by hand keeps its source and `updated_by`; a lake row takes the snapshot's.
fn merge_on_conflict() -> OnConflict {
    let lake_owned = format!("player_restrictions.source = '{LAKE_SOURCE}'");
    let flag = |column: &str| {
        Expr::cust(format!(
            "CASE WHEN {lake_owned} THEN excluded.{column} \
             ELSE (player_restrictions.{column} OR excluded.{column}) END"
        ))
    };
    OnConflict::column(player_restrictions::Column::UserId)
        .values([
            (
                player_restrictions::Column::SelfExcluded,
                flag("self_excluded"),
            ),
            (player_restrictions::Column::Blocked, flag("blocked")),
            (
                player_restrictions::Column::MarketingOptOut,
                flag("marketing_opt_out"),
            ),
            (
                player_restrictions::Column::UpdatedBy,
                Expr::cust(format!(
                    "CASE WHEN {lake_owned} THEN excluded.updated_by \
                     ELSE player_restrictions.updated_by END"
                )),
            ),
            (
                player_restrictions::Column::UpdatedAt,
                Expr::cust("excluded.updated_at"),
            ),
        ])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: RestrictionFlags = RestrictionFlags {
        self_excluded: false,
        blocked: false,
        marketing_opt_out: false,
    };
    const EXCLUDED: RestrictionFlags = RestrictionFlags {
        self_excluded: true,
        ..NONE
    };
    const BLOCKED: RestrictionFlags = RestrictionFlags {
        blocked: true,
        ..NONE
    };
    const EXCLUDED_AND_BLOCKED: RestrictionFlags = RestrictionFlags {
        self_excluded: true,
        blocked: true,
        ..NONE
    };

    #[test]
    fn the_lake_owns_its_rows_and_only_adds_to_hand_set_ones() {
        let cases = [
            (None, EXCLUDED, EXCLUDED),
            (None, NONE, NONE),
            (Some(("lake", EXCLUDED)), NONE, NONE),
            (Some(("lake", EXCLUDED)), BLOCKED, BLOCKED),
            (Some(("api", EXCLUDED)), NONE, EXCLUDED),
            (Some(("api", EXCLUDED)), BLOCKED, EXCLUDED_AND_BLOCKED),
            (
                Some((
                    "webhook",
                    RestrictionFlags {
                        marketing_opt_out: true,
                        ..NONE
                    },
                )),
                NONE,
                RestrictionFlags {
                    marketing_opt_out: true,
                    ..NONE
                },
            ),
            (Some(("api", NONE)), BLOCKED, BLOCKED),
        ];
        for (stored, lake, expected) in cases {
            assert_eq!(
                merged_flags(stored, lake),
                expected,
                "{stored:?} + {lake:?}"
            );
        }
    }
}
