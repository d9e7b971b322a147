//! The one access check: a tower layer around the tonic routes (the whole router, not each
//! route, so a call clones no boxed service) that gRPC, grpc-web and REST all pass through.
//! It verifies the access token against [`rule_for`], puts the [`Principal`] into the
//! request extensions, and writes the audit row of every call that changes state.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;
use crmbet_core::Error;
use crmbet_store::{AuditEntry, Store};
use futures::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::BodyExt;
use rand::Rng;
use serde_json::json;
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use crate::auth::caller::{AuditNote, ClientAddress, Principal};
use crate::auth::permissions::{Access, Effect, Load, MethodRule, rule_for};
use crate::auth::revoked_sessions::RevokedSessions;
use crate::auth::tokens::{TokenKeys, VerifiedToken};
use crate::heavy_reads::HeavyReads;
use crate::refusal_body::discard_before_refusal;
use crate::rest::code_name;
use crate::status::{GRPC_STATUS, invalid_argument_for_undecodable_message, status_from_error};

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";
/// Longest caller-chosen request id kept; longer ones are replaced.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// Wraps the tonic routes with the access check and the audit log.
#[derive(Debug, Clone)]
pub struct AccessLayer {
    guard: AccessGuard,
}

impl AccessLayer {
    /// A layer verifying tokens with `keys` and auditing into `store`; `X-Forwarded-For`
    /// is believed only from `trusted_proxies`; tokens of the sessions in
    /// `revoked_sessions` are refused.
    pub fn new(
        keys: Arc<TokenKeys>,
        store: Store,
        trusted_proxies: Vec<IpAddr>,
        revoked_sessions: Arc<RevokedSessions>,
    ) -> Self {
        Self {
            guard: AccessGuard {
                keys,
                store,
                trusted_proxies,
                revoked_sessions,
                heavy_reads: None,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            },
        }
    }

    /// Calls whose rule says [`Load::Heavy`] first take a turn from `heavy_reads`.
    pub fn with_heavy_reads(mut self, heavy_reads: Arc<HeavyReads>) -> Self {
        self.guard.heavy_reads = Some(heavy_reads);
        self
    }

    /// The largest request body of a state-changing call (`CRMBET_MAX_BODY_BYTES`), which
    /// the layer reads whole before the call runs.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.guard.max_body_bytes = max_body_bytes;
        self
    }
}

/// [`AccessLayer::with_max_body_bytes`] unless set: tonic's own default message limit.
const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The compression flag and length before each gRPC message.
const GRPC_FRAME_PREFIX_BYTES: usize = 5;

impl<Inner> Layer<Inner> for AccessLayer {
    type Service = AccessService<Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        AccessService {
            inner,
            guard: Arc::new(self.guard.clone()),
        }
    }
}

/// The service [`AccessLayer`] makes.
#[derive(Debug, Clone)]
pub struct AccessService<Inner> {
    inner: Inner,
    guard: Arc<AccessGuard>,
}

impl<Inner, RequestBody> Service<Request<RequestBody>> for AccessService<Inner>
where
    Inner: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    Inner::Future: Send,
    RequestBody: http_body::Body<Data = Bytes> + Send + 'static,
    RequestBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        // One body type below; no new box when it already is one (axum checks).
        let request = request.map(Body::new);
        // The ready service goes into the future; a clone stays for the next call.
        let fresh_inner = self.inner.clone();
        let ready_inner = std::mem::replace(&mut self.inner, fresh_inner);
        let guard = Arc::clone(&self.guard);
        let rule = rule_for(request.uri().path());
        if rule.effect == Effect::Read {
            // Nothing to audit or ingest: a read may simply stop when its caller hangs up.
            return Box::pin(async move { Ok(guard.handle(ready_inner, rule, request).await) });
        }
        // A task of its own: a client that hangs up must not cancel a call between its
        // commit and its audit row.
        let handled = tokio::spawn(
            async move { guard.handle(ready_inner, rule, request).await }.in_current_span(),
        );
        Box::pin(async move {
            Ok(handled.await.unwrap_or_else(|error| {
                status_from_error(Error::Internal(format!("a call's task failed: {error}")))
                    .into_http::<Body>()
            }))
        })
    }
}

#[derive(Debug, Clone)]
struct AccessGuard {
    keys: Arc<TokenKeys>,
    store: Store,
    trusted_proxies: Vec<IpAddr>,
    revoked_sessions: Arc<RevokedSessions>,
    heavy_reads: Option<Arc<HeavyReads>>,
    max_body_bytes: usize,
}

/// Why a call was turned away before reaching its service.
struct Refusal {
    status: Status,
    /// The caller, when the token was valid but its role not allowed.
    principal: Option<Principal>,
}

impl AccessGuard {
    async fn handle<Inner>(
        &self,
        inner: Inner,
        rule: MethodRule,
        mut request: Request<Body>,
    ) -> Response
    where
        Inner: Service<Request<Body>, Response = Response, Error = Infallible>,
    {
        let writes = rule.effect == Effect::Write;
        let client_address = client_address(&request, &self.trusted_proxies);
        let request_id = request_id(request.headers());
        crate::request_span::record_request_id(&request_id);
        // The address and the note serve state-changing calls (throttles, webhook
        // allow-lists, the audit row); a read skips them, it is the hot path.
        let note = writes.then(AuditNote::default);
        if let Some(note) = &note {
            let extensions = request.extensions_mut();
            if let Some(address) = client_address {
                extensions.insert(ClientAddress(address));
            }
            extensions.insert(note.clone());
        }

        let call = AuditedCall {
            rule,
            client_address,
            request_id: &request_id,
            note: note.as_ref(),
        };
        let mut admitted = self.admit(rule, &mut request);
        // A token of an ended session proves no one, whatever its role may call.
        let caller = match &admitted {
            Ok(principal) => principal.as_ref(),
            Err(refusal) => refusal.principal.as_ref(),
        };
        let revoked = match caller {
            Some(principal) if self.session_revoked(principal).await => Some(principal.clone()),
            _ => None,
        };
        if let Some(principal) = revoked {
            admitted = Err(Refusal {
                status: unauthenticated(
                    "this login session was ended (logout, or a refresh token used twice); \
                     log in again"
                        .to_owned(),
                ),
                // Kept for the audit row of a refused write.
                principal: Some(principal),
            });
        }
        let principal = match admitted {
            Ok(principal) => principal,
            Err(refusal) => {
                // Denied writes by a known caller are worth a row; anonymous noise is not.
                if let Some(principal) = &refusal.principal {
                    self.audit(&call, Some(principal), refusal.status.code())
                        .await;
                }
                return refuse(request, refusal.status, &request_id).await;
            }
        };
        // The audit row needs the caller after the call; a read hands it over.
        let audited_principal = if writes { principal.clone() } else { None };
        if let Some(principal) = principal {
            request.extensions_mut().insert(principal);
        }
        // Held until the answer is ready: the database work of a unary call is done then.
        let _turn = match (&self.heavy_reads, rule.load) {
            (Some(heavy_reads), Load::Heavy) => match heavy_reads.take_turn().await {
                Ok(turn) => Some(turn),
                Err(status) => return refuse(request, status, &request_id).await,
            },
            _ => None,
        };
        if rule.effect == Effect::Write {
            request = match read_whole_body(request, self.max_body_bytes).await {
                Ok(request) => request,
                // The body never arrived (the client hung up, or it was too slow): the
                // call did not run, so there is nothing to audit.
                Err(BodyFailure::NeverArrived(status)) => {
                    return answer(status, &request_id);
                }
                Err(BodyFailure::TooLarge(status)) => {
                    self.audit(&call, audited_principal.as_ref(), status.code())
                        .await;
                    return answer(status, &request_id);
                }
            };
        }
        let Ok(mut response) = inner.oneshot(request).await;
        invalid_argument_for_undecodable_message(response.headers_mut());
        self.audit(
            &call,
            audited_principal.as_ref(),
            response_code(response.headers()),
        )
        .await;
        add_request_id(response.headers_mut(), &request_id);
        response
    }

    /// The caller, if the rule lets the call through; a refusal otherwise.
    fn admit(
        &self,
        rule: MethodRule,
        request: &mut Request<Body>,
    ) -> Result<Option<Principal>, Refusal> {
        if rule.access == Access::Public {
            return Ok(None);
        }
        let unauthenticated = |message: String| Refusal {
            status: unauthenticated(message),
            principal: None,
        };
        // The rate limit verified this token already: take its claims over, no copy.
        let verified = request.extensions_mut().remove::<VerifiedToken>();
        let token = bearer_token(request.headers()).map_err(unauthenticated)?;
        let (claims, role) = match verified.filter(|verified| verified.token == token) {
            Some(verified) => (verified.claims, verified.role),
            None => self
                .keys
                .verify(token)
                .map_err(|rejection| unauthenticated(rejection.to_string()))?,
        };
        let principal = Principal {
            username: claims.sub,
            role,
            jti: claims.jti,
            expires_at: chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_default(),
            session: claims.sid,
        };
        if !rule.access.allows(role) {
            let allowed: Vec<&str> = rule
                .access
                .allowed_roles()
                .into_iter()
                .map(|role| role.as_str())
                .collect();
            return Err(Refusal {
                status: Status::permission_denied(format!(
                    "role {role} may not call {}; it needs one of: {}",
                    rule.path,
                    allowed.join(", ")
                )),
                principal: Some(principal),
            });
        }
        Ok(Some(principal))
    }

    /// Whether the principal's token belongs to a login session that was ended since.
    async fn session_revoked(&self, principal: &Principal) -> bool {
        !principal.session.is_empty() && self.revoked_sessions.is_revoked(&principal.session).await
    }

    /// Writes the audit row of a state-changing call; a failure to write is logged, since
    /// the call itself has happened.
    async fn audit(&self, call: &AuditedCall<'_>, principal: Option<&Principal>, outcome: Code) {
        if call.rule.effect != Effect::Write {
            return;
        }
        let facts = call.note.map(AuditNote::facts).unwrap_or_default();
        let (actor, role) = match principal {
            Some(principal) => (principal.username.clone(), Some(principal.role)),
            None => (
                facts.actor.unwrap_or_else(|| "anonymous".to_owned()),
                facts.role,
            ),
        };
        let entry = AuditEntry {
            actor,
            role: role.map(|role| role.as_str().to_owned()),
            action: call.rule.path.to_owned(),
            target: facts.target,
            client_ip: call.client_address.map(|address| address.to_string()),
            request_id: Some(call.request_id.to_owned()),
            details: Some(json!({ "outcome": code_name(outcome) })),
            occurred_at: Utc::now(),
        };
        if let Err(error) = self.store.record_audit(entry).await {
            tracing::error!(%error, path = call.rule.path, request_id = call.request_id,
                "cannot write the audit log row of a state-changing call");
        }
    }
}

/// The answer to a call refused before its service ran, sent after the rest of its body
/// (see [`crate::refusal_body`]).
async fn refuse(request: Request<Body>, status: Status, request_id: &str) -> Response {
    let mut response = answer(status, request_id);
    let (parts, body) = request.into_parts();
    discard_before_refusal(parts.version, &parts.headers, body, &mut response).await;
    response
}

fn answer(status: Status, request_id: &str) -> Response {
    let mut response = status.into_http::<Body>();
    add_request_id(response.headers_mut(), request_id);
    response
}

/// Why the body of a state-changing call could not be read.
enum BodyFailure {
    NeverArrived(Status),
    TooLarge(Status),
}

/// The request with its body read whole, so a call runs (and is audited) only once the
/// client has sent all of it.
async fn read_whole_body(
    request: Request<Body>,
    max_body_bytes: usize,
) -> Result<Request<Body>, BodyFailure> {
    let (parts, body) = request.into_parts();
    // One message and its gRPC frame prefix; tonic checks the message itself afterwards.
    let limit = max_body_bytes.saturating_add(GRPC_FRAME_PREFIX_BYTES);
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(Request::from_parts(parts, Body::from(collected.to_bytes()))),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(BodyFailure::TooLarge(Status::out_of_range(format!(
                "the request message is too large: the limit is {max_body_bytes} bytes \
                 (CRMBET_MAX_BODY_BYTES)"
            ))))
        }
        Err(error) => Err(BodyFailure::NeverArrived(
            crate::request_body::timed_out(error.as_ref())
                .cloned()
                .unwrap_or_else(|| Status::cancelled("the request body did not arrive")),
        )),
    }
}

/// UNAUTHENTICATED with the header that tells an HTTP client which scheme to use.
fn unauthenticated(message: String) -> Status {
    let mut status = Status::unauthenticated(message);
    status.metadata_mut().insert(
        "www-authenticate",
        tonic::metadata::MetadataValue::from_static("Bearer realm=\"crmbet\""),
    );
    status
}

/// The facts of one call the audit row needs.
struct AuditedCall<'a> {
    /// Its path is the audited action: every state-changing call is in the table.
    rule: MethodRule,
    client_address: Option<IpAddr>,
    request_id: &'a str,
    /// Present on state-changing calls.
    note: Option<&'a AuditNote>,
}

/// The token of an `authorization: Bearer <token>` header, or what to tell the caller.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, String> {
    let missing = || {
        "missing access token: send `authorization: Bearer <access_token>`; get one from \
         AuthService/Login (POST /api/v1/auth/login)"
            .to_owned()
    };
    let value = headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| "the authorization header is not readable text".to_owned())?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| "the authorization header must be `Bearer <access_token>`".to_owned())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "the authorization scheme must be Bearer, got {scheme:?}"
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

/// The caller's address: the TCP peer, unless the peer is a trusted proxy; then the
/// rightmost `x-forwarded-for` hop that is not a trusted proxy. Hops further left were
/// written by whoever sent the request and prove nothing.
pub(crate) fn client_address(
    request: &Request<Body>,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = request
        .headers()
        .get_all(FORWARDED_FOR_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(address) if trusted_proxies.contains(&address) => continue,
            Ok(address) => return Some(address),
            // Garbage in the chain: the last trusted hop is all that is known.
            Err(_) => break,
        }
    }
    Some(peer)
}

/// The caller's `x-request-id` when it is short and plain, else a new random one.
fn request_id(headers: &HeaderMap) -> String {
    let usable = |id: &&str| {
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_CHARS
            && id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte))
    };
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(usable)
        .map_or_else(new_request_id, str::to_owned)
}

/// A new request id: 16 hex digits, unique within the process (a bijective mix of a
/// counter) and across processes with near certainty (a random start per process).
/// Cheaper than formatting a fresh random number on every call.
fn new_request_id() -> String {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let counter = NEXT
        .get_or_init(|| std::sync::atomic::AtomicU64::new(rand::rng().random()))
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // splitmix64's finalizer: a bijection, so distinct counters give distinct ids.
    let mut mixed = counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^= mixed >> 31;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0_u8; 16];
    for (position, digit) in digits.iter_mut().enumerate() {
        *digit = HEX[((mixed >> (60 - 4 * position)) & 0xf) as usize];
    }
    String::from_utf8(digits.to_vec()).unwrap_or_default()
}

fn add_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, unique_per_response(value));
    }
}

/// Marks a header value that differs on every response as sensitive: HTTP/2 then sends it
/// as a plain literal and never adds it to the connection's HPACK table, where each new
/// value would push out the headers every response repeats (which would then be sent in
/// full again).
pub(crate) fn unique_per_response(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// The gRPC code of a response: `grpc-status` among the headers (a trailers-only error),
/// else OK (a unary success carries its status in the trailers).
fn response_code(headers: &HeaderMap) -> Code {
    headers
        .get(GRPC_STATUS)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn reads_bearer_tokens_and_explains_bad_headers() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc.def.ghi")])),
            Ok("abc.def.ghi")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer  abc ")])),
            Ok("abc")
        );
        let missing = bearer_token(&HeaderMap::new()).unwrap_err();
        assert!(missing.contains("/api/v1/auth/login"), "{missing}");
        let basic = headers(&[("authorization", "Basic dXNlcjpwdw==")]);
        assert!(bearer_token(&basic).unwrap_err().contains("Bearer"));
        assert!(bearer_token(&headers(&[("authorization", "Bearer ")])).is_err());
    }

    #[test]
    fn forwarded_hops_are_believed_only_from_trusted_proxies() {
        let proxy = IpAddr::from([192, 168, 1, 2]);
        let inner_proxy = IpAddr::from([10, 0, 0, 1]);
        let mut request = Request::new(Body::empty());
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(proxy, 5000)));
        request.headers_mut().insert(
            FORWARDED_FOR_HEADER,
            HeaderValue::from_static("198.51.100.66, 203.0.113.9, 10.0.0.1"),
        );
        // From an untrusted peer the header is anyone's words.
        assert_eq!(client_address(&request, &[]), Some(proxy));
        // One trusted proxy: the hop it saw connect.
        assert_eq!(client_address(&request, &[proxy]), Some(inner_proxy));
        // Two: past both, never the client-written leftmost hop.
        assert_eq!(
            client_address(&request, &[proxy, inner_proxy]),
            Some(IpAddr::from([203, 0, 113, 9]))
        );
        request.headers_mut().insert(
            FORWARDED_FOR_HEADER,
            HeaderValue::from_static("not-an-address"),
        );
        assert_eq!(client_address(&request, &[proxy]), Some(proxy));
    }

    /// A store in a fresh SQLite file, migrated.
    async fn scratch_store(directory: &tempfile::TempDir) -> Store {
        let url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("access.db").display()
        );
        let store = Store::connect(&url).await.unwrap();
        store.migrate_up().await.unwrap();
        store
    }

    #[tokio::test]
    async fn a_write_whose_body_never_arrives_neither_runs_nor_is_audited() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let directory = tempfile::tempdir().unwrap();
        let store = scratch_store(&directory).await;
        let config = crmbet_core::Config {
            jwt_secret: Some("a test secret of at least thirty-two bytes".to_owned()),
            ..crmbet_core::Config::default()
        };
        let keys = Arc::new(TokenKeys::from_config(&config).unwrap());
        let layer = AccessLayer::new(
            keys,
            store.clone(),
            Vec::new(),
            Arc::new(RevokedSessions::new(store.clone())),
        )
        .with_max_body_bytes(64);
        let calls = Arc::new(AtomicUsize::new(0));
        let service = {
            let calls = Arc::clone(&calls);
            tower::service_fn(move |_request: Request<Body>| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, Infallible>(Response::new(Body::empty())) }
            })
        };
        let login = |body: Body| {
            Request::post("/crmbet.v1.AuthService/Login")
                .header("content-type", "application/grpc")
                .body(body)
                .unwrap()
        };
        let audit_rows = || async { store.row_counts().await.unwrap()["audit_log"] };

        // The client hangs up after its headers: the body ends in an error.
        let abandoned = Body::from_stream(futures::stream::iter([Err::<bytes::Bytes, _>(
            std::io::Error::other("stream reset by the client"),
        )]));
        let response = layer
            .layer(service.clone())
            .oneshot(login(abandoned))
            .await
            .unwrap();
        assert_eq!(response_code(response.headers()), Code::Cancelled);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the call never ran");
        assert_eq!(
            audit_rows().await,
            0,
            "nothing happened, nothing is audited"
        );

        // Over the limit: refused as OUT_OF_RANGE without running, and audited.
        let oversized = Body::from(vec![0_u8; 200]);
        let response = layer
            .layer(service.clone())
            .oneshot(login(oversized))
            .await
            .unwrap();
        assert_eq!(response_code(response.headers()), Code::OutOfRange);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(audit_rows().await, 1);

        // A whole body: the call runs and is audited.
        let whole = Body::from(vec![0_u8, 0, 0, 0, 0]);
        let response = layer.layer(service).oneshot(login(whole)).await.unwrap();
        assert_eq!(response_code(response.headers()), Code::Ok);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(audit_rows().await, 2);
    }

    #[test]
    fn request_ids_are_kept_when_plain_and_made_otherwise() {
        assert_eq!(
            request_id(&headers(&[("x-request-id", "abc-123")])),
            "abc-123"
        );
        let made = request_id(&headers(&[("x-request-id", "has spaces")]));
        assert_eq!(made.len(), 16);
        assert_eq!(request_id(&HeaderMap::new()).len(), 16);
        let made: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(made.len(), 10_000, "made ids never repeat");
        assert!(
            made.iter()
                .all(|id| id.bytes().all(|byte| byte.is_ascii_hexdigit()))
        );
    }
}
