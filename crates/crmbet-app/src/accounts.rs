//! Creating accounts, for `crmbet account create` and `crmbet demo`.

use chrono::Utc;
use crmbet_core::{Error, Result, Role};
use crmbet_store::entity::accounts;
use crmbet_store::{AuditEntry, NewAccount, Store};
use serde_json::json;

use crate::passwords::{check_new_password, hash_password};

/// Longest username accepted.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Checks a username: 1 to [`MAX_USERNAME_CHARS`] letters, digits or `.`, `_`, `-`, `@`.
pub fn check_username(username: &str) -> Result<()> {
    let plain = username
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"._-@".contains(&byte));
    if username.is_empty() || username.len() > MAX_USERNAME_CHARS || !plain {
        return Err(Error::invalid_argument(
            "username",
            format!(
                "must be 1 to {MAX_USERNAME_CHARS} letters, digits or . _ - @, got {username:?}"
            ),
        ));
    }
    Ok(())
}

/// Creates an account with `password` (checked against the password rule, stored as an
/// argon2id hash) and writes the audit row, with `created_by` as the actor (such as `cli`).
/// A taken username is [`Error::AlreadyExists`].
pub async fn create_account(
    store: &Store,
    username: &str,
    role: Role,
    password: &str,
    created_by: &str,
) -> Result<accounts::Model> {
    check_username(username)?;
    check_new_password(password)?;
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| Error::Internal(format!("hashing the password: {error}")))??;
    let account = store
        .create_account(NewAccount {
            username: username.to_owned(),
            password_hash,
            role: role.as_str().to_owned(),
        })
        .await?;
    store
        .record_audit(AuditEntry {
            actor: created_by.to_owned(),
            role: None,
            action: "account.create".to_owned(),
            target: Some(format!("account {username}")),
            client_ip: None,
            request_id: None,
            details: Some(json!({ "role": role.as_str() })),
            occurred_at: Utc::now(),
        })
        .await?;
    Ok(account)
}
