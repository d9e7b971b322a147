//! What the access layer learns about a call and hands to the services through the
//! request extensions: who is calling, from where, under which request id, and a slot in
//! which a service names what the audit log should record.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crmbet_core::Role;

/// The caller proven by a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    /// The token's id.
    pub jti: String,
    pub expires_at: DateTime<Utc>,
    /// The login session (refresh-token family) the token was issued in; empty outside one.
    pub session: String,
}

/// The client's address: the peer, or behind a trusted proxy the rightmost `x-forwarded-for`
/// hop that is not one (see the access layer's `client_address`). Put on
/// state-changing calls (the throttles and allow-lists that read it are all on writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// What a service tells the audit log about a call the layer cannot see into: who acted
/// when no token says so (Login, Refresh, Logout) and what was acted on.
#[derive(Debug, Clone, Default)]
pub struct AuditNote(Arc<Mutex<AuditFacts>>);

/// The facts an [`AuditNote`] holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFacts {
    pub actor: Option<String>,
    pub role: Option<Role>,
    pub target: Option<String>,
}

impl AuditNote {
    /// Names the actor (and their role, when known) of a call without a token.
    pub fn set_actor(&self, username: &str, role: Option<Role>) {
        let mut facts = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        facts.actor = Some(username.to_owned());
        facts.role = role;
    }

    /// Names what the call acted on, such as `model 3`.
    pub fn set_target(&self, target: impl Into<String>) {
        let mut facts = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        facts.target = Some(target.into());
    }

    /// What the services wrote.
    pub fn facts(&self) -> AuditFacts {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

/// Notes the target of a call in its audit note, if the access layer attached one.
pub fn note_audit_target(extensions: &http::Extensions, target: impl Into<String>) {
    if let Some(note) = extensions.get::<AuditNote>() {
        note.set_target(target);
    }
}
