//! AuthService: login with a password, rotating refresh tokens, logout, and who the
//! caller's access token says they are.
//!
//! Login answers the same UNAUTHENTICATED for an unknown user, a wrong password and a
//! disabled account, after the same argon2 work. Repeated failures lock the username
//! (whether an account has it or not, so the lock does not reveal which names exist), the
//! account and the client address for a while, all answered alike: RESOURCE_EXHAUSTED
//! with `retry-after`, before any password check. Each attempt is counted against the
//! username before its password is checked, so parallel guesses stop at the allowance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crmbet_app::{MAX_PASSWORD_CHARS, check_username, verify_password};
use crmbet_core::Error;
use crmbet_proto::v1::auth_service_server::AuthService;
use crmbet_proto::v1::{
    LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, RefreshRequest, RefreshResponse,
    WhoAmIRequest, WhoAmIResponse,
};
use crmbet_store::entity::{accounts, refresh_tokens};
use crmbet_store::{NewRefreshToken, Rotation, Store};
use tonic::{Request, Response, Status};

use crate::auth::{
    ACCESS_TOKEN_LIFETIME, ACCOUNT_BACKOFF, AddressThrottle, AuditNote, ClientAddress,
    MAX_REFRESH_TOKEN_CHARS, Principal, REFRESH_TOKEN_LIFETIME, RevokedSessions, Role, TokenKeys,
    UsernameThrottle, new_refresh_token, random_id, refresh_token_digest,
};
use crate::convert::{self, timestamp};
use crate::status::status_from_error;

const TOKEN_TYPE: &str = "Bearer";
/// Password checks running at once, per CPU: each argon2 check holds ~19 MiB and a core,
/// so a burst of logins queues here instead of exhausting memory and the blocking pool.
const PASSWORD_CHECKS_PER_CPU: usize = 2;
/// How long a login waits for a password-check slot before the server says it is busy.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(10);
const BAD_CREDENTIALS: &str = "invalid username or password";

/// Serves AuthService.
#[derive(Debug, Clone)]
pub struct AuthApi {
    store: Store,
    keys: Arc<TokenKeys>,
    throttle: Arc<AddressThrottle>,
    usernames: Arc<UsernameThrottle>,
    password_checks: Arc<tokio::sync::Semaphore>,
    /// Where revoking a session is recorded at once, for the access layer.
    revoked_sessions: Arc<RevokedSessions>,
}

/// Tokens handed out by Login and Refresh.
struct SessionTokens {
    access_token: String,
    refresh_token: String,
    role: Role,
}

impl AuthApi {
    /// A service over the accounts in `store`, signing with `keys`.
    pub fn new(store: Store, keys: Arc<TokenKeys>, revoked_sessions: Arc<RevokedSessions>) -> Self {
        Self {
            store,
            keys,
            revoked_sessions,
            throttle: Arc::new(AddressThrottle::default()),
            usernames: Arc::new(UsernameThrottle::default()),
            password_checks: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from)
                    * PASSWORD_CHECKS_PER_CPU,
            )),
        }
    }

    async fn login(
        &self,
        request: LoginRequest,
        client: Option<ClientAddress>,
        note: &AuditNote,
    ) -> std::result::Result<SessionTokens, Status> {
        check_username(&request.username).map_err(status_from_error)?;
        if request.password.is_empty() || request.password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(status_from_error(Error::invalid_argument(
                "password",
                format!("must be 1 to {MAX_PASSWORD_CHARS} characters"),
            )));
        }
        note.set_actor(&request.username, None);
        if let Some(ClientAddress(address)) = client
            && let Some(wait) = self.throttle.retry_after(address, Instant::now())
        {
            return Err(too_many_failures(wait));
        }
        // Counted before the lookup and the password check: the same for every name, and
        // a burst of parallel guesses cannot all pass before one has failed.
        self.usernames
            .reserve(&request.username, Instant::now())
            .map_err(too_many_failures)?;
        let account = self
            .store
            .account_by_username(&request.username)
            .await
            .map_err(status_from_error)?;
        // Locked by another instance, or before a restart: answered like the lock above.
        if let Some(wait) = account.as_ref().and_then(remaining_lock) {
            return Err(too_many_failures(wait));
        }
        let stored_hash = account
            .as_ref()
            .map(|account| account.password_hash.clone());
        let password = request.password;
        let slot = tokio::time::timeout(
            PASSWORD_CHECK_WAIT,
            Arc::clone(&self.password_checks).acquire_owned(),
        )
        .await
        .map_err(|_| Status::unavailable("too many logins at once; retry in a few seconds"))?
        .map_err(|error| status_from_error(Error::Internal(format!("password check: {error}"))))?;
        let password_matches = tokio::task::spawn_blocking(move || {
            let matches = verify_password(&password, stored_hash.as_deref());
            drop(slot);
            matches
        })
        .await
        .map_err(|error| status_from_error(Error::Internal(format!("password check: {error}"))))?;
        let account = match account {
            Some(account) if password_matches && !account.disabled => account,
            account => {
                self.count_failure(account.as_ref(), client).await?;
                return Err(Status::unauthenticated(BAD_CREDENTIALS));
            }
        };
        self.usernames.succeeded(&request.username);
        let role = stored_role(&account)?;
        note.set_actor(&account.username, Some(role));
        if account.failed_logins > 0 || account.locked_until.is_some() {
            self.store
                .clear_failed_logins(account.id)
                .await
                .map_err(status_from_error)?;
        }
        let refresh_token = new_refresh_token();
        let family = random_id();
        self.store
            .insert_refresh_token(new_refresh_row(&account, &refresh_token, family.clone())?)
            .await
            .map_err(status_from_error)?;
        self.session(&account, role, refresh_token, &family)
    }

    /// Counts a failed login against the client address and the account (if any), and
    /// locks the account when it has failed too often.
    async fn count_failure(
        &self,
        account: Option<&accounts::Model>,
        client: Option<ClientAddress>,
    ) -> std::result::Result<(), Status> {
        if let Some(ClientAddress(address)) = client {
            self.throttle.record_failure(address, Instant::now());
        }
        let Some(account) = account else {
            return Ok(());
        };
        let failures = self
            .store
            .count_failed_login(account.id)
            .await
            .map_err(status_from_error)?;
        let lock = u32::try_from(failures)
            .ok()
            .and_then(|failures| ACCOUNT_BACKOFF.lock_after(failures));
        if let Some(lock) = lock {
            let locked_until = Utc::now() + chrono::Duration::from_std(lock).unwrap_or_default();
            tracing::warn!(username = %account.username, failures, lock_seconds = lock.as_secs(),
                "account locked after repeated failed logins");
            self.store
                .lock_account(account.id, locked_until)
                .await
                .map_err(status_from_error)?;
        }
        Ok(())
    }

    async fn refresh(
        &self,
        request: RefreshRequest,
        note: &AuditNote,
    ) -> std::result::Result<SessionTokens, Status> {
        let (presented, account) = self.presented_refresh_token(&request.refresh_token).await?;
        let role = stored_role(&account)?;
        note.set_actor(&account.username, Some(role));
        note.set_target(format!("refresh token family {}", presented.family_id));
        if presented.revoked_at.is_some() {
            return Err(Status::unauthenticated(
                "this refresh token was revoked; log in again",
            ));
        }
        if presented.used_at.is_some() {
            return Err(self.reused(&presented).await);
        }
        if presented.expires_at <= Utc::now() {
            return Err(Status::unauthenticated(
                "this refresh token has expired; log in again",
            ));
        }
        if account.disabled {
            self.revoke_family(&presented.family_id).await?;
            return Err(Status::unauthenticated(BAD_CREDENTIALS));
        }
        let refresh_token = new_refresh_token();
        let replacement = new_refresh_row(&account, &refresh_token, presented.family_id.clone())?;
        let rotation = self
            .store
            .rotate_refresh_token(presented.id, replacement)
            .await
            .map_err(status_from_error)?;
        match rotation {
            Rotation::Rotated { .. } => {
                self.session(&account, role, refresh_token, &presented.family_id)
            }
            // Someone used the token between our read and the update.
            Rotation::FamilyRevoked => {
                self.revoked_sessions.revoked_here(&presented.family_id);
                Err(reuse_status())
            }
        }
    }

    /// A refresh token presented a second time: someone holds a copy, so every token of
    /// its login stops working.
    async fn reused(&self, presented: &refresh_tokens::Model) -> Status {
        tracing::warn!(family = %presented.family_id, account_id = presented.account_id,
            "a used refresh token was presented again; revoking its family");
        match self.revoke_family(&presented.family_id).await {
            Ok(()) => reuse_status(),
            Err(status) => status,
        }
    }

    async fn logout(
        &self,
        request: LogoutRequest,
        note: &AuditNote,
    ) -> std::result::Result<(), Status> {
        let (presented, account) = self.presented_refresh_token(&request.refresh_token).await?;
        note.set_actor(&account.username, stored_role(&account).ok());
        note.set_target(format!("refresh token family {}", presented.family_id));
        self.revoke_family(&presented.family_id).await
    }

    /// The stored row of a presented refresh token and its account.
    async fn presented_refresh_token(
        &self,
        token: &str,
    ) -> std::result::Result<(refresh_tokens::Model, accounts::Model), Status> {
        if token.is_empty() || token.len() > MAX_REFRESH_TOKEN_CHARS {
            return Err(status_from_error(Error::invalid_argument(
                "refresh_token",
                "must be the refresh_token that Login or Refresh returned",
            )));
        }
        let unknown = || Status::unauthenticated("unknown refresh token; log in again");
        let presented = self
            .store
            .refresh_token_by_hash(&refresh_token_digest(token))
            .await
            .map_err(status_from_error)?
            .ok_or_else(unknown)?;
        let account = self
            .store
            .account(presented.account_id)
            .await
            .map_err(status_from_error)?
            .ok_or_else(unknown)?;
        Ok((presented, account))
    }

    /// Revokes every refresh token of a login session, and with them its access tokens.
    async fn revoke_family(&self, family_id: &str) -> std::result::Result<(), Status> {
        self.store
            .revoke_refresh_family(family_id)
            .await
            .map_err(status_from_error)?;
        self.revoked_sessions.revoked_here(family_id);
        Ok(())
    }

    fn session(
        &self,
        account: &accounts::Model,
        role: Role,
        refresh_token: String,
        family_id: &str,
    ) -> std::result::Result<SessionTokens, Status> {
        let access = self
            .keys
            .issue_in_session(&account.username, role, family_id)
            .map_err(status_from_error)?;
        Ok(SessionTokens {
            access_token: access.token,
            refresh_token,
            role,
        })
    }
}

fn stored_role(account: &accounts::Model) -> std::result::Result<Role, Status> {
    account.role.parse::<Role>().map_err(|_| {
        status_from_error(Error::Internal(format!(
            "account {} has the unknown role {:?}",
            account.id, account.role
        )))
    })
}

/// How long a locked account must still wait, if it is locked.
fn remaining_lock(account: &accounts::Model) -> Option<Duration> {
    let remaining = account.locked_until? - Utc::now();
    remaining.to_std().ok().filter(|wait| !wait.is_zero())
}

fn too_many_failures(wait: Duration) -> Status {
    let seconds = wait.as_secs().max(1);
    let mut status = Status::resource_exhausted(format!(
        "too many failed logins for this account or address; retry in {seconds} s"
    ));
    if let Ok(value) = seconds.to_string().parse() {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}

fn reuse_status() -> Status {
    Status::unauthenticated(
        "this refresh token was already used, so every token of its login is now revoked; \
         log in again",
    )
}

fn new_refresh_row(
    account: &accounts::Model,
    refresh_token: &str,
    family_id: String,
) -> std::result::Result<NewRefreshToken, Status> {
    let issued_at = Utc::now();
    let lifetime = chrono::Duration::from_std(REFRESH_TOKEN_LIFETIME).map_err(|error| {
        status_from_error(Error::Internal(format!("refresh token lifetime: {error}")))
    })?;
    Ok(NewRefreshToken {
        account_id: account.id,
        token_hash: refresh_token_digest(refresh_token),
        family_id,
        issued_at,
        expires_at: issued_at + lifetime,
    })
}

fn access_token_seconds() -> i64 {
    i64::try_from(ACCESS_TOKEN_LIFETIME.as_secs()).unwrap_or(i64::MAX)
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> std::result::Result<Response<LoginResponse>, Status> {
        let client = request.extensions().get::<ClientAddress>().copied();
        let note = request
            .extensions()
            .get::<AuditNote>()
            .cloned()
            .unwrap_or_default();
        let tokens = self.login(request.into_inner(), client, &note).await?;
        Ok(Response::new(LoginResponse {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_in: access_token_seconds(),
            token_type: TOKEN_TYPE.to_owned(),
            role: convert::role(tokens.role).into(),
        }))
    }

    async fn refresh(
        &self,
        request: Request<RefreshRequest>,
    ) -> std::result::Result<Response<RefreshResponse>, Status> {
        let note = request
            .extensions()
            .get::<AuditNote>()
            .cloned()
            .unwrap_or_default();
        let tokens = self.refresh(request.into_inner(), &note).await?;
        Ok(Response::new(RefreshResponse {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_in: access_token_seconds(),
            token_type: TOKEN_TYPE.to_owned(),
            role: convert::role(tokens.role).into(),
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> std::result::Result<Response<LogoutResponse>, Status> {
        let note = request
            .extensions()
            .get::<AuditNote>()
            .cloned()
            .unwrap_or_default();
        self.logout(request.into_inner(), &note).await?;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> std::result::Result<Response<WhoAmIResponse>, Status> {
        let principal = request
            .extensions()
            .get::<Principal>()
            .ok_or_else(|| Status::unauthenticated("missing access token"))?;
        Ok(Response::new(WhoAmIResponse {
            username: principal.username.clone(),
            role: convert::role(principal.role).into(),
            expires_at: Some(timestamp(principal.expires_at)),
        }))
    }
}
