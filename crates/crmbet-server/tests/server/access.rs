//! The access layer through the real application router, in process: forged and misaddressed
//! tokens, the role matrix over gRPC and REST against the one table, refresh-token rotation
//! and reuse, login backoff (parallel guesses, unknown names locked like known ones), and
//! the audit log. Account flows run on SQLite and PostgreSQL.

use crate::support::grpc_call::grpc_call;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use crmbet_app::create_account;
use crmbet_core::Config;
use crmbet_proto::v1::{
    LoginRequest, LoginResponse, LogoutRequest, RefreshRequest, RefreshResponse, WhoAmIResponse,
};
use crmbet_server::Gateway;
use crmbet_server::auth::permissions::{Access, METHOD_RULES, MethodRule};
use crmbet_server::auth::{
    ACCOUNT_BACKOFF, AUDIENCE, Claims, ISSUER, KeySource, RevokedSessions, Role, TokenKeys,
    refresh_token_digest,
};
use crmbet_server::rest::RestRoutes;
use crmbet_server::{AppState, application};
use crmbet_store::Store;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use tonic::Code;
use tower::ServiceExt;

const SECRET: &str = "the access-token secret of these tests, over 32 bytes";
const LIST_CLUSTERS: &str = "/crmbet.v1.ClusterService/ListClusters";
const LOGIN: &str = "/crmbet.v1.AuthService/Login";
const REFRESH: &str = "/crmbet.v1.AuthService/Refresh";
const LOGOUT: &str = "/crmbet.v1.AuthService/Logout";
const WHO_AM_I: &str = "/crmbet.v1.AuthService/WhoAmI";
const START_TRAINING: &str = "/crmbet.v1.TrainingService/StartTraining";
const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40000);

/// The application over a migrated store, called in process.
struct TestServer {
    router: Gateway,
    store: Store,
    keys: Arc<TokenKeys>,
    _directory: tempfile::TempDir,
}

/// The end of a gRPC call: its code and message, and the first response message.
#[derive(Debug)]
struct GrpcAnswer {
    code: Code,
    message: String,
    body: Bytes,
}

fn secret_config() -> Config {
    Config {
        jwt_secret: Some(SECRET.to_owned()),
        // The tests' peer plays the reverse proxy, so X-Forwarded-For names the client.
        trusted_proxies: vec![SocketAddr::from(PEER).ip()],
        ..Config::default()
    }
}

impl TestServer {
    async fn sqlite(config: Config) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("crmbet.db").display()
        );
        Self::over(&url, config, directory).await
    }

    async fn over(database_url: &str, mut config: Config, directory: tempfile::TempDir) -> Self {
        config.database_url = database_url.to_owned();
        let store = Store::connect(database_url).await.unwrap();
        store.migrate_up().await.unwrap();
        let state = AppState::new(store.clone(), config).unwrap();
        let keys = Arc::clone(&state.token_keys);
        let router = application(state).await.unwrap();
        Self {
            router,
            store,
            keys,
            _directory: directory,
        }
    }

    fn token(&self, username: &str, role: Role) -> String {
        self.keys.issue(username, role).unwrap().token
    }

    async fn grpc(&self, path: &str, message: &[u8], headers: &[(&str, String)]) -> GrpcAnswer {
        let (status, body) =
            grpc_call(&self.router, path, message, headers, SocketAddr::from(PEER)).await;
        GrpcAnswer {
            code: status.code(),
            message: status.message().to_owned(),
            body,
        }
    }

    async fn rest(
        &self,
        method: &Method,
        uri: &str,
        json: Option<&str>,
        headers: &[(&str, String)],
    ) -> (StatusCode, serde_json::Value) {
        let mut builder = Request::builder().method(method.clone()).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let body = match json {
            Some(json) => {
                builder = builder.header("content-type", "application/json");
                Body::from(json.to_owned())
            }
            None => Body::empty(),
        };
        let mut request = builder.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(PEER)));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        // A stream of NDJSON lines may never end: its status is the answer.
        if response
            .headers()
            .get("content-type")
            .is_some_and(|value| value == "application/x-ndjson")
        {
            return (status, serde_json::Value::Null);
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    async fn login(
        &self,
        username: &str,
        password: &str,
        headers: &[(&str, String)],
    ) -> Result<LoginResponse, GrpcAnswer> {
        let request = LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        let answer = self.grpc(LOGIN, &request.encode_to_vec(), headers).await;
        if answer.code != Code::Ok {
            return Err(answer);
        }
        Ok(LoginResponse::decode(answer.body).unwrap())
    }

    async fn refresh(&self, refresh_token: &str) -> Result<RefreshResponse, GrpcAnswer> {
        let request = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let answer = self.grpc(REFRESH, &request.encode_to_vec(), &[]).await;
        if answer.code != Code::Ok {
            return Err(answer);
        }
        Ok(RefreshResponse::decode(answer.body).unwrap())
    }

    async fn who_am_i(&self, access_token: &str) -> WhoAmIResponse {
        let answer = self.grpc(WHO_AM_I, &[], &bearer(access_token)).await;
        assert_eq!(answer.code, Code::Ok, "{answer:?}");
        WhoAmIResponse::decode(answer.body).unwrap()
    }
}

/// Request headers: names and values.
type Headers = Vec<(&'static str, String)>;

fn bearer(token: &str) -> Headers {
    vec![("authorization", format!("Bearer {token}"))]
}

fn claims_with(edit: impl FnOnce(&mut Claims)) -> Claims {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Claims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: "mallory".to_owned(),
        role: "admin".to_owned(),
        exp: now + 600,
        iat: now,
        jti: "forged".to_owned(),
        sid: String::new(),
    };
    edit(&mut claims);
    claims
}

/// A token with `alg: none` and no signature.
fn unsigned_token(claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}

/// `token` with its role claim raised to admin and its signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = "admin".into();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// The DER bytes of a PEM block.
fn pem_der(pem: &str) -> Vec<u8> {
    let base64: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(base64).unwrap()
}

/// Calls ListClusters with `token` over gRPC and REST; both must be UNAUTHENTICATED.
async fn assert_unauthenticated(server: &TestServer, case: &str, token: &str) {
    let answer = server.grpc(LIST_CLUSTERS, &[], &bearer(token)).await;
    assert_eq!(answer.code, Code::Unauthenticated, "{case}: {answer:?}");
    let (status, body) = server
        .rest(&Method::GET, "/api/v1/clusters", None, &bearer(token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    assert_eq!(body["code"], "UNAUTHENTICATED", "{case}: {body}");
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_unauthenticated() {
    let server = TestServer::sqlite(secret_config()).await;
    let valid = server.token("ana", Role::Analyst);
    let control = server.grpc(LIST_CLUSTERS, &[], &bearer(&valid)).await;
    assert_eq!(control.code, Code::Ok, "a valid token passes: {control:?}");

    let other_keys = TokenKeys::from_secret(
        b"another secret, just as long as the real one",
        KeySource::Secret,
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            "wrong signature",
            other_keys.sign(&claims_with(|_| {})).unwrap(),
        ),
        (
            "expired",
            server
                .keys
                .sign(&claims_with(|claims| {
                    claims.exp = now - 3600;
                    claims.iat = now - 4500;
                }))
                .unwrap(),
        ),
        ("alg none", unsigned_token(&claims_with(|_| {}))),
        ("tampered claims", tampered(&valid)),
        (
            "wrong audience",
            server
                .keys
                .sign(&claims_with(|claims| claims.aud = "another-api".to_owned()))
                .unwrap(),
        ),
        (
            "wrong issuer",
            server
                .keys
                .sign(&claims_with(|claims| {
                    claims.iss = "someone-else".to_owned()
                }))
                .unwrap(),
        ),
        (
            "unknown role",
            server
                .keys
                .sign(&claims_with(|claims| claims.role = "root".to_owned()))
                .unwrap(),
        ),
        ("not a token", "not-a-jwt".to_owned()),
    ];
    for (case, token) in &cases {
        assert_unauthenticated(&server, case, token).await;
    }
    let missing = server.grpc(LIST_CLUSTERS, &[], &[]).await;
    assert_eq!(missing.code, Code::Unauthenticated);
    assert!(missing.message.contains("Bearer"), "{missing:?}");
}

#[tokio::test]
async fn hs256_tokens_signed_with_the_servers_public_key_are_unauthenticated() {
    let key_pairs = [
        (
            include_str!("keys/ed25519-private.pem"),
            include_str!("keys/ed25519-public.pem"),
        ),
        (
            include_str!("keys/p256-private.pem"),
            include_str!("keys/p256-public.pem"),
        ),
    ];
    for (private_pem, public_pem) in key_pairs {
        let key_directory = tempfile::tempdir().unwrap();
        let key_file = key_directory.path().join("jwt.pem");
        std::fs::write(&key_file, private_pem).unwrap();
        let server = TestServer::sqlite(Config {
            jwt_key_file: Some(key_file),
            ..Config::default()
        })
        .await;
        let valid = server.token("ana", Role::Analyst);
        let control = server.grpc(LIST_CLUSTERS, &[], &bearer(&valid)).await;
        assert_eq!(control.code, Code::Ok, "{:?}: {control:?}", server.keys);

        for secret in [public_pem.as_bytes().to_vec(), pem_der(public_pem)] {
            let public_as_secret = TokenKeys::from_secret(&secret, KeySource::Secret).unwrap();
            let forged = public_as_secret.sign(&claims_with(|_| {})).unwrap();
            assert_unauthenticated(&server, "HS256 with the public key", &forged).await;
        }
    }
}

/// What the table says a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Allowed,
    Unauthenticated,
    PermissionDenied,
}

fn expected(access: Access, role: Option<Role>) -> Expected {
    match (access, role) {
        (Access::Public, _) => Expected::Allowed,
        (_, None) => Expected::Unauthenticated,
        (access, Some(role)) if access.allows(role) => Expected::Allowed,
        _ => Expected::PermissionDenied,
    }
}

/// What the table says, except for the Smartico webhook: it needs no token but carries
/// credentials of its own (`x-webhook-secret` or a signature), and these calls send none.
fn expected_for(rule: &MethodRule, role: Option<Role>) -> Expected {
    if rule.path == "/crmbet.v1.SmarticoWebhookService/ReceiveEvent" {
        return Expected::Unauthenticated;
    }
    expected(rule.access, role)
}

/// A REST path from a template, every variable set to `1`.
fn filled_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_rpc_answers_each_role_as_the_table_says_over_grpc_and_rest() {
    let server = TestServer::sqlite(secret_config()).await;
    let mut callers: Vec<(Option<Role>, Headers)> = vec![(None, Vec::new())];
    for role in Role::ALL {
        callers.push((Some(role), bearer(&server.token("caller", role))));
    }
    // A server stream that follows what happens from now on (WatchSegmentChanges) stays
    // open once it is past the access check: still open after a while means allowed.
    let pool = prost_reflect::DescriptorPool::decode(crmbet_proto::FILE_DESCRIPTOR_SET).unwrap();
    let server_streams: BTreeSet<String> = pool
        .services()
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .filter(|method| method.is_server_streaming())
        .map(|method| format!("/{}/{}", method.parent_service().full_name(), method.name()))
        .collect();
    let mut failures = Vec::new();
    let mut allowed_calls = 0;
    for rule in METHOD_RULES {
        for (role, headers) in &callers {
            let want = expected_for(rule, *role);
            let call = server.grpc(rule.path, &[], headers);
            let answer = if server_streams.contains(rule.path) {
                tokio::time::timeout(std::time::Duration::from_secs(3), call)
                    .await
                    .unwrap_or_else(|_| GrpcAnswer {
                        code: Code::Ok,
                        message: "the stream stayed open".to_owned(),
                        body: Default::default(),
                    })
            } else {
                call.await
            };
            let got = match answer.code {
                Code::Unauthenticated => Expected::Unauthenticated,
                Code::PermissionDenied => Expected::PermissionDenied,
                _ => Expected::Allowed,
            };
            allowed_calls += usize::from(got == Expected::Allowed);
            if got != want {
                failures.push(format!(
                    "gRPC {} as {role:?}: want {want:?}, got {answer:?}",
                    rule.path
                ));
            }
        }
    }

    let routes = RestRoutes::from_descriptor_set(crmbet_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut transcoded = BTreeSet::new();
    for route in routes.routes() {
        let rule = METHOD_RULES
            .iter()
            .find(|rule| rule.path == route.grpc_path())
            .unwrap_or_else(|| panic!("no rule for {}", route.grpc_path()));
        transcoded.insert(rule.path);
        let path = filled_path(route.path_template());
        let body = route.body().map(|_| "{}");
        for (role, headers) in &callers {
            let want = expected_for(rule, *role);
            let call = server.rest(route.http_method(), &path, body, headers);
            let (status, answer) = if route.is_server_streaming() {
                tokio::time::timeout(std::time::Duration::from_secs(3), call)
                    .await
                    .unwrap_or((StatusCode::OK, serde_json::json!("the stream stayed open")))
            } else {
                call.await
            };
            let got = match status {
                StatusCode::UNAUTHORIZED => Expected::Unauthenticated,
                StatusCode::FORBIDDEN => Expected::PermissionDenied,
                _ => Expected::Allowed,
            };
            if got != want {
                failures.push(format!(
                    "REST {} {path} as {role:?}: want {want:?}, got {status} {answer}",
                    route.http_method()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "answers that differ from the table:\n{}",
        failures.join("\n")
    );
    // A client stream (EventService.Ingest) has no REST form; its unary twin has.
    let client_streams = pool
        .services()
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .filter(|method| method.is_client_streaming())
        .count();
    assert_eq!(client_streams, 1);
    assert_eq!(
        transcoded.len(),
        METHOD_RULES.len() - client_streams,
        "every RPC but the client stream has a REST route"
    );
    assert!(
        allowed_calls > METHOD_RULES.len(),
        "the matrix let calls through"
    );
}

#[tokio::test]
async fn state_changing_calls_are_audited_with_who_what_and_where() {
    let server = TestServer::sqlite(secret_config()).await;
    let analyst = server.token("ana", Role::Analyst);
    let marketer = server.token("mark", Role::Marketer);
    let mut headers = bearer(&analyst);
    headers.push(("x-forwarded-for", "198.51.100.1, 203.0.113.5".to_owned()));
    headers.push(("x-request-id", "req-42".to_owned()));
    let started = server.grpc(START_TRAINING, &[], &headers).await;
    assert_eq!(started.code, Code::FailedPrecondition, "{started:?}");
    let denied = server.grpc(START_TRAINING, &[], &bearer(&marketer)).await;
    assert_eq!(denied.code, Code::PermissionDenied, "{denied:?}");
    assert!(denied.message.contains("analyst"), "{denied:?}");
    let anonymous = server.grpc(START_TRAINING, &[], &[]).await;
    assert_eq!(anonymous.code, Code::Unauthenticated);
    let read = server.grpc(LIST_CLUSTERS, &[], &bearer(&analyst)).await;
    assert_eq!(read.code, Code::Ok);
    let (status, body) = server
        .rest(
            &Method::POST,
            "/api/v1/models/3/activate",
            Some("{}"),
            &bearer(&analyst),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let rows = server.store.recent_audit_entries(10).await.unwrap();
    let summary: Vec<String> = rows
        .iter()
        .map(|row| format!("{} {} {:?}", row.actor, row.action, row.details))
        .collect();
    assert_eq!(
        rows.len(),
        3,
        "reads and anonymous refusals are not rows: {summary:?}"
    );
    let activation = &rows[0];
    assert_eq!(
        activation.action,
        "/crmbet.v1.TrainingService/ActivateModel"
    );
    assert_eq!(activation.target.as_deref(), Some("model 3"));
    assert_eq!(activation.details.as_ref().unwrap()["outcome"], "NOT_FOUND");
    let refusal = &rows[1];
    assert_eq!(refusal.actor, "mark");
    assert_eq!(
        refusal.details.as_ref().unwrap()["outcome"],
        "PERMISSION_DENIED"
    );
    let start = &rows[2];
    assert_eq!(start.actor, "ana");
    assert_eq!(start.role.as_deref(), Some("analyst"));
    assert_eq!(start.action, START_TRAINING);
    assert_eq!(start.client_ip.as_deref(), Some("203.0.113.5"));
    assert_eq!(start.request_id.as_deref(), Some("req-42"));
    assert_eq!(
        start.details.as_ref().unwrap()["outcome"],
        "FAILED_PRECONDITION"
    );
}

async fn check_login_refresh_and_reuse(server: &TestServer) {
    let password = "ana's long password";
    create_account(&server.store, "ana", Role::Analyst, password, "test")
        .await
        .unwrap();
    let login = server.login("ana", password, &[]).await.unwrap();
    assert_eq!(login.role, crmbet_proto::v1::Role::Analyst as i32);
    assert_eq!(login.token_type, "Bearer");
    assert_eq!(login.expires_in, 900);
    let me = server.who_am_i(&login.access_token).await;
    assert_eq!(me.username, "ana");
    assert_eq!(me.role, crmbet_proto::v1::Role::Analyst as i32);

    let first = login.refresh_token;
    let rotated = server.refresh(&first).await.unwrap();
    assert_ne!(rotated.refresh_token, first);
    assert_eq!(server.who_am_i(&rotated.access_token).await.username, "ana");

    let reused = server.refresh(&first).await.unwrap_err();
    assert_eq!(reused.code, Code::Unauthenticated, "{reused:?}");
    assert!(reused.message.contains("already used"), "{reused:?}");
    let sibling = server.refresh(&rotated.refresh_token).await.unwrap_err();
    assert_eq!(sibling.code, Code::Unauthenticated, "{sibling:?}");
    let revoked_access = server
        .grpc(WHO_AM_I, &[], &bearer(&rotated.access_token))
        .await;
    assert_eq!(
        revoked_access.code,
        Code::Unauthenticated,
        "the access token of a revoked session: {revoked_access:?}"
    );

    let stored_first = server
        .store
        .refresh_token_by_hash(&refresh_token_digest(&first))
        .await
        .unwrap()
        .unwrap();
    let stored_second = server
        .store
        .refresh_token_by_hash(&refresh_token_digest(&rotated.refresh_token))
        .await
        .unwrap()
        .unwrap();
    assert!(stored_first.used_at.is_some());
    assert_eq!(stored_first.replaced_by_id, Some(stored_second.id));
    assert_eq!(stored_first.family_id, stored_second.family_id);
    assert!(stored_first.revoked_at.is_some() && stored_second.revoked_at.is_some());

    let again = server.login("ana", password, &[]).await.unwrap();
    let logout = LogoutRequest {
        refresh_token: again.refresh_token.clone(),
    };
    let logged_out = server.grpc(LOGOUT, &logout.encode_to_vec(), &[]).await;
    assert_eq!(logged_out.code, Code::Ok, "{logged_out:?}");
    let after_logout = server.refresh(&again.refresh_token).await.unwrap_err();
    assert_eq!(after_logout.code, Code::Unauthenticated);

    let wrong_password = server.login("ana", "not ana's password", &[]).await;
    let unknown_user = server.login("nobody", "not anyone's password", &[]).await;
    let wrong_password = wrong_password.unwrap_err();
    let unknown_user = unknown_user.unwrap_err();
    assert_eq!(wrong_password.code, Code::Unauthenticated);
    assert_eq!(
        (wrong_password.code, wrong_password.message),
        (unknown_user.code, unknown_user.message),
        "an unknown user looks like a wrong password"
    );

    let rows = server.store.recent_audit_entries(20).await.unwrap();
    let seen: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.actor.clone(),
                row.action.clone(),
                row.details.as_ref().unwrap()["outcome"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    for expected_row in [
        ("ana", LOGIN, "OK"),
        ("ana", REFRESH, "OK"),
        ("ana", REFRESH, "UNAUTHENTICATED"),
        ("ana", LOGOUT, "OK"),
        ("ana", LOGIN, "UNAUTHENTICATED"),
        ("nobody", LOGIN, "UNAUTHENTICATED"),
        ("test", "account.create", ""),
    ] {
        let found = seen.iter().any(|(actor, action, outcome)| {
            actor == expected_row.0
                && action == expected_row.1
                && (expected_row.2.is_empty() || outcome == expected_row.2)
        });
        assert!(found, "no audit row {expected_row:?} in {seen:?}");
    }
}

#[tokio::test]
async fn logout_stops_the_sessions_access_tokens_here_at_once_and_elsewhere_within_a_second() {
    let first = TestServer::sqlite(secret_config()).await;
    let url = format!(
        "sqlite://{}?mode=rwc",
        first._directory.path().join("crmbet.db").display()
    );
    let second = TestServer::over(&url, secret_config(), tempfile::tempdir().unwrap()).await;
    let password = "ana's long password";
    create_account(&first.store, "ana", Role::Analyst, password, "test")
        .await
        .unwrap();
    let ended = first.login("ana", password, &[]).await.unwrap();
    let kept = first.login("ana", password, &[]).await.unwrap();
    for server in [&first, &second] {
        for session in [&ended, &kept] {
            assert_eq!(server.who_am_i(&session.access_token).await.username, "ana");
        }
    }

    let logout = LogoutRequest {
        refresh_token: ended.refresh_token.clone(),
    };
    let logged_out = first.grpc(LOGOUT, &logout.encode_to_vec(), &[]).await;
    assert_eq!(logged_out.code, Code::Ok, "{logged_out:?}");
    let refused = first
        .grpc(WHO_AM_I, &[], &bearer(&ended.access_token))
        .await;
    assert_eq!(refused.code, Code::Unauthenticated, "{refused:?}");
    assert!(refused.message.contains("log in again"), "{refused:?}");
    assert_eq!(first.who_am_i(&kept.access_token).await.username, "ana");
    // An ended session proves no one: not a denied role either.
    let create_campaign = "/crmbet.v1.CampaignService/CreateCampaign";
    let ended_denied = first
        .grpc(create_campaign, &[], &bearer(&ended.access_token))
        .await;
    assert_eq!(ended_denied.code, Code::Unauthenticated, "{ended_denied:?}");
    let kept_denied = first
        .grpc(create_campaign, &[], &bearer(&kept.access_token))
        .await;
    assert_eq!(kept_denied.code, Code::PermissionDenied, "{kept_denied:?}");

    // The other instance read the revoked sessions before the logout; it reads them again
    // once its set is older than the maximum age.
    tokio::time::sleep(RevokedSessions::MAX_AGE + Duration::from_millis(100)).await;
    let refused = second
        .grpc(WHO_AM_I, &[], &bearer(&ended.access_token))
        .await;
    assert_eq!(refused.code, Code::Unauthenticated, "{refused:?}");
    assert_eq!(second.who_am_i(&kept.access_token).await.username, "ana");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family_on_sqlite() {
    let server = TestServer::sqlite(secret_config()).await;
    check_login_refresh_and_reuse(&server).await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family_on_postgres() {
    let database = ThrowawayPostgres::create("crmbet_access").await;
    let server =
        TestServer::over(&database.url, secret_config(), tempfile::tempdir().unwrap()).await;
    check_login_refresh_and_reuse(&server).await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_and_then_the_address() {
    let server = TestServer::sqlite(secret_config()).await;
    let password = "bob's long password";
    create_account(&server.store, "bob", Role::Marketer, password, "test")
        .await
        .unwrap();
    create_account(&server.store, "carol", Role::Marketer, password, "test")
        .await
        .unwrap();
    let from = |address: String| vec![("x-forwarded-for", address)];

    for attempt in 0..5 {
        let refused = server
            .login(
                "bob",
                "a wrong password",
                &from(format!("198.51.100.{attempt}")),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code, Code::Unauthenticated, "{refused:?}");
    }
    let locked = server
        .login("bob", password, &from("198.51.100.99".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(locked.code, Code::ResourceExhausted, "{locked:?}");
    assert!(locked.message.contains("retry in"), "{locked:?}");
    let bob = server
        .store
        .account_by_username("bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.failed_logins, 5);
    assert!(bob.locked_until.is_some());

    let attacker = from("203.0.113.7".to_owned());
    for attempt in 0..20 {
        let refused = server
            .login(&format!("guess{attempt}"), "a wrong password", &attacker)
            .await
            .unwrap_err();
        assert_eq!(refused.code, Code::Unauthenticated, "{refused:?}");
    }
    let throttled = server
        .login("carol", password, &attacker)
        .await
        .unwrap_err();
    assert_eq!(throttled.code, Code::ResourceExhausted, "{throttled:?}");
    let elsewhere = server
        .login("carol", password, &from("192.0.2.1".to_owned()))
        .await;
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
}

/// Fires `guesses` wrong logins for `username` at once, each from its own address; returns
/// the codes and messages of the answers.
async fn parallel_wrong_logins(
    server: &TestServer,
    username: &str,
    guesses: u8,
) -> Vec<(Code, String)> {
    futures::future::join_all((0..guesses).map(|guess| async move {
        let from = vec![("x-forwarded-for", format!("198.18.7.{guess}"))];
        let answer = server
            .login(username, "a wrong password", &from)
            .await
            .unwrap_err();
        (answer.code, answer.message)
    }))
    .await
}

#[tokio::test]
async fn parallel_guesses_stop_at_the_allowance_and_unknown_names_lock_alike() {
    let server = TestServer::sqlite(secret_config()).await;
    let password = "dave's long password";
    create_account(&server.store, "dave", Role::Marketer, password, "test")
        .await
        .unwrap();
    let allowance = usize::try_from(ACCOUNT_BACKOFF.free_failures).unwrap();
    let guesses = 12;

    let mut outcomes = Vec::new();
    for username in ["dave", "nobody"] {
        let answers = parallel_wrong_logins(&server, username, guesses).await;
        let verified = answers
            .iter()
            .filter(|(code, _)| *code == Code::Unauthenticated)
            .count();
        assert_eq!(verified, allowance, "{username}: {answers:?}");
        for (code, message) in &answers {
            assert!(
                *code == Code::Unauthenticated
                    || (*code == Code::ResourceExhausted && message.contains("retry in")),
                "{username}: {code:?} {message}"
            );
        }
        let mut codes: Vec<i32> = answers.iter().map(|(code, _)| *code as i32).collect();
        codes.sort_unstable();
        outcomes.push(codes);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "a lockout must not tell names apart"
    );
    let dave = server
        .store
        .account_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        usize::try_from(dave.failed_logins).unwrap(),
        allowance,
        "only the reserved attempts were checked and counted"
    );

    // Locked, the right password and an unknown name get the same answer.
    let from = vec![("x-forwarded-for", "192.0.2.50".to_owned())];
    let known = server.login("dave", password, &from).await.unwrap_err();
    let unknown = server
        .login("nobody", "a wrong password", &from)
        .await
        .unwrap_err();
    assert_eq!(known.code, Code::ResourceExhausted, "{known:?}");
    assert_eq!(unknown.code, Code::ResourceExhausted, "{unknown:?}");
    let without_seconds = |message: &str| message.split(';').next().unwrap_or_default().to_owned();
    assert_eq!(
        without_seconds(&known.message),
        without_seconds(&unknown.message)
    );
}
