//! Accounts, their refresh tokens and the audit log.
//!
//! The store keeps what the server decides: password hashes arrive already hashed,
//! refresh tokens as digests, and lockout times already computed. Rotating a refresh token
//! is one conditional update, so of two concurrent uses of one token exactly one wins.

use chrono::{DateTime, Utc};
use crmbet_core::{Error, Result};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use serde_json::Value as Json;

use crate::database::Store;
use crate::entity::{accounts, audit_log, refresh_tokens};
use crate::failure::database_error;

/// An account to create; `password_hash` is a PHC string (argon2id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub username: String,
    pub password_hash: String,
    /// `admin`, `analyst`, `marketer` or `service`.
    pub role: String,
}

/// A refresh token to store: only its digest, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub account_id: i64,
    pub token_hash: String,
    pub family_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What happened when a refresh token was presented for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now used and `replacement` is the new token's row id.
    Rotated { replacement: i64 },
    /// The token had been used or revoked already: its family is now revoked.
    FamilyRevoked,
}

/// One row for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// The username, or `anonymous`.
    pub actor: String,
    pub role: Option<String>,
    /// The RPC path or a command, e.g. `/crmbet.v1.TrainingService/StartTraining`.
    pub action: String,
    pub target: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Option<Json>,
    pub occurred_at: DateTime<Utc>,
}

impl Store {
    /// Creates an account; a taken username is [`Error::AlreadyExists`].
    pub async fn create_account(&self, account: NewAccount) -> Result<accounts::Model> {
        let now = Utc::now();
        let inserted = accounts::Entity::insert(accounts::ActiveModel {
            username: Set(account.username.clone()),
            password_hash: Set(account.password_hash),
            role: Set(account.role),
            disabled: Set(false),
            failed_logins: Set(0),
            locked_until: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(self.connection())
        .await
        .map_err(|error| match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::AlreadyExists(format!(
                "account {:?} exists already; pick another username",
                account.username
            )),
            _ => database_error(error),
        })?;
        self.account(inserted.last_insert_id)
            .await?
            .ok_or_else(|| Error::Internal("a created account cannot be read back".to_owned()))
    }

    /// The account with `username`, if any.
    pub async fn account_by_username(&self, username: &str) -> Result<Option<accounts::Model>> {
        accounts::Entity::find()
            .filter(accounts::Column::Username.eq(username))
            .one(self.connection())
            .await
            .map_err(database_error)
    }

    /// The account with row id `account_id`, if any.
    pub async fn account(&self, account_id: i64) -> Result<Option<accounts::Model>> {
        accounts::Entity::find_by_id(account_id)
            .one(self.connection())
            .await
            .map_err(database_error)
    }

    /// Counts one more failed login and returns the new count.
    pub async fn count_failed_login(&self, account_id: i64) -> Result<i32> {
        accounts::Entity::update_many()
            .col_expr(
                accounts::Column::FailedLogins,
                Expr::col(accounts::Column::FailedLogins).add(1),
            )
            .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(accounts::Column::Id.eq(account_id))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        let account = self
            .account(account_id)
            .await?
            .ok_or_else(|| Error::not_found("account", account_id))?;
        Ok(account.failed_logins)
    }

    /// Locks the account against logins until `locked_until`.
    pub async fn lock_account(&self, account_id: i64, locked_until: DateTime<Utc>) -> Result<()> {
        accounts::Entity::update_many()
            .col_expr(accounts::Column::LockedUntil, Expr::value(locked_until))
            .filter(accounts::Column::Id.eq(account_id))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(())
    }

    /// Forgets the failed logins of an account after a successful one.
    pub async fn clear_failed_logins(&self, account_id: i64) -> Result<()> {
        accounts::Entity::update_many()
            .col_expr(accounts::Column::FailedLogins, Expr::value(0))
            .col_expr(
                accounts::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(accounts::Column::Id.eq(account_id))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(())
    }

    /// Stores a new refresh token (the first of a family, at login) and returns its row id.
    pub async fn insert_refresh_token(&self, token: NewRefreshToken) -> Result<i64> {
        let inserted = refresh_tokens::Entity::insert(refresh_token_row(token))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(inserted.last_insert_id)
    }

    /// The refresh token whose digest is `token_hash`, if any.
    pub async fn refresh_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<refresh_tokens::Model>> {
        refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::TokenHash.eq(token_hash))
            .one(self.connection())
            .await
            .map_err(database_error)
    }

    /// Exchanges the live token `used_id` for `replacement` (same family), all or nothing.
    /// A token that was used or revoked already revokes its whole family instead: a stolen
    /// token and its legitimate sibling both stop working.
    pub async fn rotate_refresh_token(
        &self,
        used_id: i64,
        replacement: NewRefreshToken,
    ) -> Result<Rotation> {
        let now = Utc::now();
        let family_id = replacement.family_id.clone();
        let transaction = self.begin_write().await?;
        // Marks the token used only if nobody did before: the row count says who won.
        let claimed = refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
            .filter(refresh_tokens::Column::Id.eq(used_id))
            .filter(refresh_tokens::Column::UsedAt.is_null())
            .filter(refresh_tokens::Column::RevokedAt.is_null())
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        if claimed.rows_affected == 0 {
            transaction.rollback().await.map_err(database_error)?;
            self.revoke_refresh_family(&family_id).await?;
            return Ok(Rotation::FamilyRevoked);
        }
        let inserted = refresh_tokens::Entity::insert(refresh_token_row(replacement))
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        refresh_tokens::Entity::update_many()
            .col_expr(
                refresh_tokens::Column::ReplacedById,
                Expr::value(inserted.last_insert_id),
            )
            .filter(refresh_tokens::Column::Id.eq(used_id))
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        Ok(Rotation::Rotated {
            replacement: inserted.last_insert_id,
        })
    }

    /// Revokes every live token of a family; returns how many were live.
    ///
    /// The family's rows are locked first, in a statement of their own: a rotation of the
    /// family that is committing holds its used token's row, so the lock waits for it, and
    /// the update that follows (a new statement, a new snapshot under PostgreSQL's READ
    /// COMMITTED) then sees the replacement that rotation inserted. A single UPDATE would
    /// re-check only the rows it had already found and leave the replacement alive.
    /// SQLite serializes writers, so there the lock is not needed (and not written).
    pub async fn revoke_refresh_family(&self, family_id: &str) -> Result<u64> {
        let transaction = self.begin_write().await?;
        refresh_tokens::Entity::find()
            .select_only()
            .column(refresh_tokens::Column::Id)
            .filter(refresh_tokens::Column::FamilyId.eq(family_id))
            .order_by_asc(refresh_tokens::Column::Id)
            .lock_exclusive()
            .into_tuple::<i64>()
            .all(&transaction)
            .await
            .map_err(database_error)?;
        let result = refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_tokens::Column::FamilyId.eq(family_id))
            .filter(refresh_tokens::Column::RevokedAt.is_null())
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        Ok(result.rows_affected)
    }

    /// The families (login sessions) with a token revoked at or after `since`.
    pub async fn families_revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<String>> {
        refresh_tokens::Entity::find()
            .select_only()
            .column(refresh_tokens::Column::FamilyId)
            .distinct()
            .filter(refresh_tokens::Column::RevokedAt.gte(since))
            .into_tuple::<String>()
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// Appends one row to the audit log.
    pub async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        audit_log::Entity::insert(audit_log::ActiveModel {
            actor: Set(entry.actor),
            role: Set(entry.role),
            action: Set(entry.action),
            target: Set(entry.target),
            client_ip: Set(entry.client_ip),
            request_id: Set(entry.request_id),
            details: Set(entry.details),
            occurred_at: Set(entry.occurred_at),
            ..Default::default()
        })
        .exec(self.connection())
        .await
        .map_err(database_error)?;
        Ok(())
    }

    /// The latest `limit` audit rows, newest first.
    pub async fn recent_audit_entries(&self, limit: u64) -> Result<Vec<audit_log::Model>> {
        audit_log::Entity::find()
            .order_by_desc(audit_log::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await
            .map_err(database_error)
    }
}

fn refresh_token_row(token: NewRefreshToken) -> refresh_tokens::ActiveModel {
    refresh_tokens::ActiveModel {
        account_id: Set(token.account_id),
        token_hash: Set(token.token_hash),
        family_id: Set(token.family_id),
        issued_at: Set(token.issued_at),
        expires_at: Set(token.expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
        replaced_by_id: Set(None),
        ..Default::default()
    }
}
