//! TLS on the real listener, on a free port: REST over HTTP/1.1 and gRPC over HTTP/2 both
//! through TLS with a certificate made at test time, HSTS only when TLS is on, plain HTTP
//! refused on the TLS port without harm to the server, and a half-configured TLS refused at
//! startup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crmbet_app::create_account;
use crmbet_core::Config;
use crmbet_server::auth::Role;
use crmbet_server::listener::HEADER_READ_TIMEOUT;
use crmbet_server::{AppState, Transport, application, serve};
use crmbet_store::Store;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const HSTS_MAX_AGE_SECONDS: u64 = 600;
const PASSWORD: &str = "correct horse battery staple";
/// How long a test waits for the server to do what it should.
const DEADLINE: Duration = Duration::from_secs(10);

/// A self-signed certificate for `localhost`, its key, and where both are written.
struct TestCertificate {
    certificate_pem: String,
    certificate_file: PathBuf,
    key_file: PathBuf,
}

impl TestCertificate {
    fn new(directory: &std::path::Path) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let certificate_pem = certified.cert.pem();
        let certificate_file = directory.join("chain.pem");
        let key_file = directory.join("key.pem");
        std::fs::write(&certificate_file, &certificate_pem).unwrap();
        std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
        Self {
            certificate_pem,
            certificate_file,
            key_file,
        }
    }
}

/// `serve` on a free port of 127.0.0.1, in this process.
struct RunningServer {
    address: SocketAddr,
    /// The certificate when the server speaks TLS.
    certificate: Option<TestCertificate>,
    store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    _directory: tempfile::TempDir,
}

/// Whether the test server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Tls,
}

fn config_for(directory: &std::path::Path, certificate: Option<&TestCertificate>) -> Config {
    Config {
        database_url: format!(
            "sqlite://{}?mode=rwc",
            directory.join("crmbet.db").display()
        ),
        jwt_secret: Some("a test secret of at least thirty-two bytes".to_owned()),
        tls_cert_file: certificate.map(|certificate| certificate.certificate_file.clone()),
        tls_key_file: certificate.map(|certificate| certificate.key_file.clone()),
        hsts_max_age_seconds: HSTS_MAX_AGE_SECONDS,
        ..Config::default()
    }
}

impl RunningServer {
    async fn start(mode: Mode) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let certificate = (mode == Mode::Tls).then(|| TestCertificate::new(directory.path()));
        let config = config_for(directory.path(), certificate.as_ref());
        let store = Store::connect(&config.database_url).await.unwrap();
        store.migrate_up().await.unwrap();
        create_account(&store, "mia", Role::Marketer, PASSWORD, "test")
            .await
            .unwrap();
        let transport = Transport::from_config(&config).unwrap();
        let router = application(AppState::new(store.clone(), config).unwrap())
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, shutdown_requested) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            transport,
            router,
            async move {
                let _ = shutdown_requested.await;
            },
            Duration::from_secs(5),
        ));
        Self {
            address,
            certificate,
            store,
            shutdown: Some(shutdown),
            task,
            _directory: directory,
        }
    }

    /// A TLS connection that trusts only the test certificate, offering `alpn`.
    async fn connect_tls(&self, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
        let certificate = self.certificate.as_ref().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(certificate.certificate_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let stream = TcpStream::connect(self.address).await.unwrap();
        connector
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .unwrap()
    }

    /// `request` over HTTPS/1.1; also returns the protocol ALPN settled on.
    async fn https_send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, HeaderMap, Bytes, Option<Vec<u8>>) {
        let stream = self.connect_tls(b"http/1.1").await;
        let negotiated = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let (status, headers, body) = http1_send(stream, request).await.unwrap();
        (status, headers, body, negotiated)
    }

    /// `GET path` over HTTPS/1.1.
    async fn https_get(&self, path: &str) -> (StatusCode, HeaderMap, Bytes, Option<Vec<u8>>) {
        self.https_send(get(path)).await
    }

    /// `GET path` over plain HTTP/1.1.
    async fn http_get(&self, path: &str) -> Result<(StatusCode, HeaderMap, Bytes), hyper::Error> {
        http1_send(TcpStream::connect(self.address).await.unwrap(), get(path)).await
    }

    /// Asks the server to stop and waits until `serve` has returned.
    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(DEADLINE, &mut self.task)
            .await
            .expect("serve did not return after the shutdown signal")
            .unwrap();
    }
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::default())
        .unwrap()
}

async fn http1_send<Io>(
    io: Io,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, HeaderMap, Bytes), hyper::Error>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn rest_over_tls_answers_with_hsts() {
    let server = RunningServer::start(Mode::Tls).await;
    let (status, headers, body, negotiated) = server.https_get("/health").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(negotiated.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        header(&headers, "strict-transport-security"),
        Some("max-age=600; includeSubDomains")
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    server.stop().await;
}

#[tokio::test]
async fn a_login_over_tls_is_audited_with_the_client_address() {
    let server = RunningServer::start(Mode::Tls).await;
    let login = Request::post("/api/v1/auth/login")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::from(format!(
            r#"{{"username": "mia", "password": "{PASSWORD}"}}"#
        )))
        .unwrap();
    let (status, headers, body, _) = server.https_send(login).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    // Counted against this client's address, as on a plain connection.
    assert!(
        header(&headers, "ratelimit-remaining").is_some(),
        "{headers:?}"
    );
    let entries = server.store.recent_audit_entries(10).await.unwrap();
    let login_entry = entries
        .iter()
        .find(|entry| entry.action.ends_with("/Login"))
        .unwrap_or_else(|| panic!("no login in the audit log: {entries:?}"));
    assert_eq!(login_entry.client_ip.as_deref(), Some("127.0.0.1"));
    server.stop().await;
}

#[tokio::test]
async fn grpc_over_tls_negotiates_h2_and_answers() {
    let server = RunningServer::start(Mode::Tls).await;
    let certificate = server.certificate.as_ref().unwrap();
    // tonic insists on h2 from ALPN, so this call also proves the server offers it.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&certificate.certificate_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", server.address))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "crmbet.v1.ClusterService".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);

    // The same call without TLS fails: the port speaks nothing else.
    let plain = tokio::time::timeout(DEADLINE, async {
        let channel = Channel::from_shared(format!("http://{}", server.address))
            .unwrap()
            .connect()
            .await
            .map_err(|error| error.to_string())?;
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map_err(|status| status.to_string())
    })
    .await
    .expect("a plain gRPC call to the TLS port hung");
    assert!(plain.is_err(), "plain gRPC was served on the TLS port");
    server.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_fails_and_the_server_keeps_serving() {
    let server = RunningServer::start(Mode::Tls).await;
    let plain = server.http_get("/health").await;
    assert!(
        plain.is_err(),
        "plain HTTP was answered on the TLS port: {plain:?}"
    );
    // A client that connects and never speaks holds only its own connection.
    let silent = TcpStream::connect(server.address).await.unwrap();
    let (status, _, _, _) = tokio::time::timeout(DEADLINE, server.https_get("/health"))
        .await
        .expect("a silent client blocked the next one");
    assert_eq!(status, StatusCode::OK);
    drop(silent);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_dropped() {
    let server = RunningServer::start(Mode::Plain).await;
    let mut slow = TcpStream::connect(server.address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let mut buffer = [0_u8; 256];
    let ended = tokio::time::timeout(
        HEADER_READ_TIMEOUT + Duration::from_secs(5),
        slow.read(&mut buffer),
    )
    .await
    .expect("the connection was still open after the header timeout");
    // Closed (end of stream), reset, or answered with an error status: never served.
    if let Ok(read) = ended {
        let answer = String::from_utf8_lossy(&buffer[..read]);
        assert!(read == 0 || !answer.contains(" 200 "), "{answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn plain_server_sends_no_hsts() {
    let server = RunningServer::start(Mode::Plain).await;
    let (status, headers, _) = server.http_get("/health").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    // The other security headers are there, so the absence is HSTS's alone.
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&headers, "strict-transport-security"), None);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_tls_connections_and_stops_accepting() {
    let server = RunningServer::start(Mode::Tls).await;
    let address = server.address;
    // An open keep-alive connection must not hold the server past its shutdown.
    let stream = server.connect_tls(b"http/1.1").await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let response = sender.send_request(get("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();

    server.stop().await;
    // Closed, cleanly or not: what matters is that the server let go of it.
    let _closed = tokio::time::timeout(DEADLINE, connection)
        .await
        .expect("the idle connection stayed open after shutdown")
        .unwrap();
    assert!(
        TcpStream::connect(address).await.is_err(),
        "the listener still accepts after shutdown"
    );
}

#[tokio::test]
async fn a_certificate_without_a_key_refuses_to_start() {
    let directory = tempfile::tempdir().unwrap();
    let certificate = TestCertificate::new(directory.path());
    let mut config = config_for(directory.path(), Some(&certificate));
    config.tls_key_file = None;

    let error = Transport::from_config(&config).unwrap_err().to_string();
    assert!(
        error.contains("CRMBET_TLS_KEY_FILE") && error.contains("CRMBET_TLS_CERT_FILE"),
        "{error}"
    );

    let store = Store::connect(&config.database_url).await.unwrap();
    store.migrate_up().await.unwrap();
    let state = AppState::new(store, config).unwrap();
    let error = application(state).await.unwrap_err().to_string();
    assert!(error.contains("CRMBET_TLS_KEY_FILE"), "{error}");
}
