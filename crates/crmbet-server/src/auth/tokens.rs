//! Access tokens: short-lived JWTs signed with a key and an algorithm the server pins from
//! its configuration. A token's own `alg` header is never trusted: verification accepts
//! only the pinned algorithm, with issuer, audience and expiry required.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crmbet_core::{Config, Error, Result};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::auth::verified_tokens::VerifiedTokens;
use crmbet_core::Role;

/// The `iss` of every access token.
pub const ISSUER: &str = "crmbet";
/// The `aud` of every access token.
pub const AUDIENCE: &str = "crmbet-api";
/// How long an access token lives.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Clock skew tolerated on `exp`.
pub(crate) const LEEWAY_SECONDS: u64 = 30;
/// Shortest HMAC secret accepted: 256 bits, the size of the HS256 output.
const MIN_SECRET_BYTES: usize = 32;

/// An access token verified earlier in the same request (by the rate limiter), kept in
/// the request's extensions so the access layer does not verify it again. Clients cannot
/// set extensions; the access layer still checks that it is the token of the header.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedToken {
    pub(crate) token: String,
    pub(crate) claims: Claims,
    pub(crate) role: Role,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The username.
    pub sub: String,
    /// `admin`, `analyst`, `marketer` or `service`.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// A unique id of this token.
    pub jti: String,
    /// The login session (refresh-token family) the token was issued in; revoking the
    /// session revokes the token. Empty for a token issued outside a session.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
}

/// A signed access token and when it expires.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a token was refused; each becomes UNAUTHENTICATED with its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the access token has expired; get a new one with AuthService/Refresh")]
    Expired,
    #[error("the access token is not signed by this server or was altered")]
    BadSignature,
    #[error("the access token uses an algorithm this server does not accept")]
    WrongAlgorithm,
    #[error("the access token was issued for another audience")]
    WrongAudience,
    #[error("the access token was issued by another issuer")]
    WrongIssuer,
    #[error("the access token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the access token names an unknown role")]
    UnknownRole,
    #[error("the access token is malformed")]
    Malformed,
}

/// Where the signing key came from, for the startup log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `CRMBET_JWT_SECRET`.
    Secret,
    /// The PEM file of `CRMBET_JWT_KEY_FILE`.
    KeyFile,
    /// Neither was set: a random secret of this process; tokens die with it.
    Ephemeral,
}

/// The pinned algorithm with its signing and verifying keys.
#[derive(Clone)]
pub struct TokenKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    source: KeySource,
    /// Tokens that passed [`TokenKeys::verify`], shared by clones of these keys.
    verified: Arc<VerifiedTokens>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TokenKeys")
            .field("algorithm", &self.algorithm)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// The keys the configuration names: HS256 with `jwt_secret`, EdDSA or ES256 with the
    /// PKCS#8 PEM private key in `jwt_key_file`, or a random HS256 secret when neither is set.
    pub fn from_config(config: &Config) -> Result<Self> {
        match (&config.jwt_secret, &config.jwt_key_file) {
            (Some(_), Some(_)) => Err(Error::invalid_argument(
                "CRMBET_JWT_SECRET",
                "set either CRMBET_JWT_SECRET or CRMBET_JWT_KEY_FILE, not both",
            )),
            (Some(secret), None) => Self::from_secret(secret.as_bytes(), KeySource::Secret),
            (None, Some(path)) => Self::from_key_file(path),
            (None, None) => {
                let secret: [u8; 32] = rand::rng().random();
                Self::from_secret(&secret, KeySource::Ephemeral)
            }
        }
    }

    /// HS256 with `secret` (at least 32 bytes).
    pub fn from_secret(secret: &[u8], source: KeySource) -> Result<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::invalid_argument(
                "CRMBET_JWT_SECRET",
                format!(
                    "must be at least {MIN_SECRET_BYTES} bytes, got {}; generate one with \
                     `openssl rand -base64 48`",
                    secret.len()
                ),
            ));
        }
        let invalid = |error: jsonwebtoken::errors::Error| {
            Error::invalid_argument("CRMBET_JWT_SECRET", error.to_string())
        };
        let encoding = EncodingKey::from_secret(secret).map_err(invalid)?;
        let decoding = DecodingKey::from_secret(secret).map_err(invalid)?;
        Ok(Self::new(Algorithm::HS256, encoding, decoding, source))
    }

    /// EdDSA (Ed25519) or ES256 (P-256) with the PKCS#8 PEM private key at `path`; the
    /// algorithm follows the key.
    pub fn from_key_file(path: &Path) -> Result<Self> {
        let invalid = |reason: String| {
            Error::invalid_argument(
                "CRMBET_JWT_KEY_FILE",
                format!("{}: {reason}", path.display()),
            )
        };
        let pem = std::fs::read(path).map_err(|error| invalid(format!("cannot read: {error}")))?;
        Self::from_private_key_pem(&pem).map_err(|reason| invalid(reason.to_string()))
    }

    /// [`TokenKeys::from_key_file`] on the PEM text itself.
    pub fn from_private_key_pem(pem: &[u8]) -> std::result::Result<Self, &'static str> {
        const UNSUPPORTED: &str = "expected a PKCS#8 PEM private key for Ed25519 (EdDSA) or \
            P-256 (ES256); create one with `openssl genpkey -algorithm ed25519`";
        let (algorithm, encoding) = if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, key)
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, key)
        } else {
            return Err(UNSUPPORTED);
        };
        // The verifying key is the public half, derived from the private key.
        let public = Jwk::from_encoding_key(&encoding, algorithm).map_err(|_| UNSUPPORTED)?;
        if let AlgorithmParameters::EllipticCurve(parameters) = &public.algorithm
            && parameters.curve != EllipticCurve::P256
        {
            return Err(UNSUPPORTED);
        }
        let decoding = DecodingKey::from_jwk(&public).map_err(|_| UNSUPPORTED)?;
        Ok(Self::new(algorithm, encoding, decoding, KeySource::KeyFile))
    }

    fn new(
        algorithm: Algorithm,
        encoding: EncodingKey,
        decoding: DecodingKey,
        source: KeySource,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Self {
            algorithm,
            encoding,
            decoding,
            validation,
            source,
            verified: Arc::default(),
        }
    }

    /// The pinned algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Where the key came from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// Signs an access token for `username` with `role`, valid for
    /// [`ACCESS_TOKEN_LIFETIME`], outside any login session.
    pub fn issue(&self, username: &str, role: Role) -> Result<IssuedToken> {
        self.issue_in_session(username, role, "")
    }

    /// [`TokenKeys::issue`] for the login session (refresh-token family) `session`: the
    /// token stops working when the session is revoked.
    pub fn issue_in_session(
        &self,
        username: &str,
        role: Role,
        session: &str,
    ) -> Result<IssuedToken> {
        let issued_at = Utc::now();
        let lifetime = chrono::Duration::from_std(ACCESS_TOKEN_LIFETIME)
            .map_err(|error| Error::Internal(format!("access token lifetime: {error}")))?;
        let expires_at = issued_at + lifetime;
        let jti = random_id();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: username.to_owned(),
            role: role.as_str().to_owned(),
            exp: expires_at.timestamp(),
            iat: issued_at.timestamp(),
            jti: jti.clone(),
            sid: session.to_owned(),
        };
        let token = self.sign(&claims)?;
        Ok(IssuedToken {
            token,
            jti,
            expires_at,
        })
    }

    /// Signs arbitrary claims with the pinned algorithm (tests forge tokens with it).
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.encoding)
            .map_err(|error| Error::Internal(format!("signing an access token: {error}")))
    }

    /// Verifies `token` with the pinned algorithm and key, and returns its claims and role.
    /// A token verified before is answered from memory until it expires.
    pub fn verify(&self, token: &str) -> std::result::Result<(Claims, Role), TokenRejection> {
        let now = Utc::now().timestamp();
        let leeway = LEEWAY_SECONDS.cast_signed();
        if let Some(verified) = self.verified.get(token, now, leeway) {
            return Ok(verified);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| rejection(error.kind()))?;
        let role = data
            .claims
            .role
            .parse::<Role>()
            .map_err(|_| TokenRejection::UnknownRole)?;
        self.verified
            .remember(token, &data.claims, role, now, leeway);
        Ok((data.claims, role))
    }
}

fn rejection(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenRejection::WrongAlgorithm,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) => TokenRejection::MissingClaim(claim.clone()),
        _ => TokenRejection::Malformed,
    }
}

/// 128 random bits as base64url, for token ids and refresh-token families.
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a test secret that is long enough for HS256!";

    #[test]
    fn issued_tokens_verify_and_carry_the_role() {
        let keys = TokenKeys::from_secret(SECRET, KeySource::Secret).unwrap();
        let issued = keys.issue("ana", Role::Analyst).unwrap();
        let (claims, role) = keys.verify(&issued.token).unwrap();
        assert_eq!(role, Role::Analyst);
        assert_eq!(claims.sub, "ana");
        assert_eq!(claims.jti, issued.jti);
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
    }

    #[test]
    fn short_secrets_and_two_key_settings_are_refused() {
        assert!(TokenKeys::from_secret(b"short", KeySource::Secret).is_err());
        let config = Config {
            jwt_secret: Some("x".repeat(40)),
            jwt_key_file: Some("/nonexistent.pem".into()),
            ..Config::default()
        };
        let error = TokenKeys::from_config(&config).unwrap_err();
        assert!(error.to_string().contains("not both"), "{error}");
    }

    #[test]
    fn without_configuration_a_random_secret_is_used() {
        let first = TokenKeys::from_config(&Config::default()).unwrap();
        let second = TokenKeys::from_config(&Config::default()).unwrap();
        assert_eq!(first.source(), KeySource::Ephemeral);
        let token = first.issue("a", Role::Admin).unwrap().token;
        assert_eq!(
            second.verify(&token).unwrap_err(),
            TokenRejection::BadSignature
        );
    }

    #[test]
    fn key_files_pin_eddsa_or_es256() {
        let eddsa = TokenKeys::from_private_key_pem(include_bytes!(
            "../../tests/server/keys/ed25519-private.pem"
        ))
        .unwrap();
        assert_eq!(eddsa.algorithm(), Algorithm::EdDSA);
        let es256 = TokenKeys::from_private_key_pem(include_bytes!(
            "../../tests/server/keys/p256-private.pem"
        ))
        .unwrap();
        assert_eq!(es256.algorithm(), Algorithm::ES256);
        for keys in [eddsa, es256] {
            let token = keys.issue("svc", Role::Service).unwrap().token;
            assert_eq!(keys.verify(&token).unwrap().1, Role::Service);
        }
        assert!(TokenKeys::from_private_key_pem(b"not a key").is_err());
        assert!(
            TokenKeys::from_private_key_pem(include_bytes!(
                "../../tests/server/keys/ed25519-public.pem"
            ))
            .is_err()
        );
    }
}
