//! Who may call what: JWT access tokens with a pinned
//! algorithm, rotating refresh tokens, the one permission table and the access layer that
//! enforces it on gRPC, grpc-web and REST alike.
//!
//! Invariants: the token's `alg` header is never trusted (verification accepts only the
//! algorithm the configuration pins); refresh tokens and passwords are stored only as
//! digests; every RPC of the contracts has a row in [`permissions::METHOD_RULES`].

mod caller;
mod layer;
pub mod permissions;
mod refresh_tokens;
mod revoked_sessions;
mod throttle;
mod tokens;
mod verified_tokens;

pub use caller::{AuditFacts, AuditNote, ClientAddress, Principal, note_audit_target};
pub use crmbet_core::Role;
pub use layer::{AccessLayer, AccessService};
pub(crate) use layer::{bearer_token, client_address, unique_per_response};
pub use refresh_tokens::{
    MAX_REFRESH_TOKEN_CHARS, REFRESH_TOKEN_LIFETIME, new_refresh_token, refresh_token_digest,
};
pub use revoked_sessions::RevokedSessions;
pub use throttle::{
    ACCOUNT_BACKOFF, ADDRESS_BACKOFF, AddressThrottle, BackoffPolicy, UsernameThrottle,
};
pub(crate) use tokens::VerifiedToken;
pub use tokens::{
    ACCESS_TOKEN_LIFETIME, AUDIENCE, Claims, ISSUER, IssuedToken, KeySource, TokenKeys,
    TokenRejection, random_id,
};
